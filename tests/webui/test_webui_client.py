"""The API client and the UI's composition against the real API (the server app in embedded
mode, in-process: SQLite in a temporary folder), and against a closed port for a server that
does not answer; plus the UI's pure helpers."""

import io
import socket

import httpx
import numpy as np
import pytest

pytest.importorskip("gradio")
from webui import overlay
from webui.client import ApiClient, ApiError, error_message


def test_error_messages_are_readable():
    r = httpx.Response(409, json={"detail": "no model yet: train one"})
    assert error_message(r) == "no model yet: train one (HTTP 409)"
    r = httpx.Response(422, json={"detail": [{"loc": ["body", "seed"], "msg": "too big"}]})
    assert "body.seed: too big" in error_message(r)
    assert "sign in again" in error_message(httpx.Response(401, json={"detail": "bad token"}))
    assert "(HTTP 500)" in error_message(httpx.Response(500, text="<html>boom</html>"))


def closed_url() -> str:
    """The URL of a port nothing listens on: bound to get a free one, then closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def unreachable() -> ApiClient:
    return ApiClient(closed_url(), "t", timeout=5)


def test_unreachable_server_is_a_message():
    with pytest.raises(ApiError, match="cannot reach the server"):
        unreachable().datasets()


def test_the_real_servers_errors_are_messages(api):
    assert api.datasets() == []
    with pytest.raises(ApiError, match=r"^dataset 424242 not found \(HTTP 404\)$"):
        api.dataset(424242)
    http = api._http
    saved = http.headers["Authorization"]
    http.headers["Authorization"] = "Bearer not-the-token"
    try:
        with pytest.raises(ApiError, match="sign in again"):
            api.datasets()
    finally:
        http.headers["Authorization"] = saved


def test_overlay_draws_masks_and_prompts():
    image = np.zeros((100, 120, 3), np.uint8)
    mask = np.zeros((100, 120), bool)
    mask[20:60, 30:80] = True
    out = np.asarray(overlay.render(image, [(mask, overlay.STUDENT, 0.4)],
                                    [{"points": [[50, 40]], "point_labels": [1], "box": [30, 20, 79, 59]}]))
    assert out.shape == (100, 120, 3) and out[40, 60].any() and not out[5, 5].any()
    assert overlay.dice_iou(mask, mask) == (1.0, 1.0)
    assert (overlay.decode_png_mask(overlay.mask_to_png(mask)) == mask).all()


def test_curves_are_drawn_with_ticks_legend_and_phase_mark():
    from webui import plots

    ticks = plots.nice_ticks(0.13, 0.37)
    assert ticks[0] <= 0.13 and ticks[-1] >= 0.37 and 4 <= len(ticks) <= 8
    chart = np.asarray(plots.line_chart({"train": [(1, 0.9), (2, 0.7), (3, 0.5)], "validation": [(1, 1.0), (3, 0.6)]},
                                        "Loss", marks=[(2, "mining")]))
    for colour in plots.COLOURS[:2]:  # one line (and legend swatch) per series
        assert (np.abs(chart.astype(int) - colour).sum(-1) < 10).sum() > 100
    empty = np.asarray(plots.line_chart({}, "Loss"))
    assert empty.shape == chart.shape and (empty < 200).any()  # says "no data yet"


# ------------------------------------------------------------------ the UI's composition


def by_id(ui, elem_id: str):
    return next(b for b in ui.blocks.values() if getattr(b, "elem_id", None) == elem_id)


def values(component) -> list:
    return [value for _, value in component.choices]


def test_options_are_read_and_their_failure_is_a_message(api, settings):
    from kmine.predict import MODES
    from kmine.prompts import PROMPT_CHOICES
    from kmine.teacher import DEFAULT_TEACHER, TEACHER_NAMES
    from kmine.training.config import MINING_SCHEDULES, SCHEDULES

    options = api.options()
    assert options == api._http.get("/options").json()
    assert options["prompt_kinds"] == list(PROMPT_CHOICES)
    assert options["teachers"] == list(TEACHER_NAMES) and options["default_teacher"] == DEFAULT_TEACHER
    assert options["schedules"] == list(SCHEDULES) and options["mining_schedules"] == list(MINING_SCHEDULES)
    assert options["modes"] == list(MODES)
    from server.services.export_formats import EXPORT_FORMATS

    assert options["export_formats"] == list(EXPORT_FORMATS)
    assert options["limits"]["max_files"] == settings.max_files
    assert options["limits"]["max_waiting_predictions"] == settings.max_waiting_predictions
    from kmine.data import MAX_ASPECT, MAX_WORK_PIXELS, MIN_SIDE

    assert (options["limits"]["min_image_side"], options["limits"]["max_image_aspect"],
            options["limits"]["max_work_pixels"]) == (MIN_SIDE, MAX_ASPECT, MAX_WORK_PIXELS)
    with pytest.raises(ApiError, match="cannot reach the server"):
        unreachable().options()


def test_the_ui_offers_the_servers_choices(api):
    from kmine.predict import MODES
    from kmine.prompts import PROMPT_CHOICES
    from kmine.teacher import DEFAULT_TEACHER, TEACHER_NAMES
    from kmine.training.config import MINING_SCHEDULES, SCHEDULES
    from webui.app import compose

    ui = compose(api)
    schedule = by_id(ui, "jobs-schedule")
    assert values(schedule) == list(SCHEDULES) and schedule.value == "continuous"
    assert " / ".join(MINING_SCHEDULES) in schedule.label
    teacher = next(b for b in ui.blocks.values() if getattr(b, "label", None) == "Teacher")
    assert values(teacher) == list(TEACHER_NAMES) and teacher.value == DEFAULT_TEACHER
    kinds = {b.label: values(b) for b in ui.blocks.values() if getattr(b, "label", "") and "Prompt kinds" in b.label}
    assert kinds == {"Prompt kinds": list(PROMPT_CHOICES), "Prompt kinds (SAM)": ["model default", *PROMPT_CHOICES]}
    assert values(by_id(ui, "predict-mode")) == list(MODES)
    assert "⚠" not in by_id(ui, "kmine-status").value


def test_the_ui_comes_up_without_the_servers_options(api):
    """Built while the server does not answer: empty choices and one line saying why; a page
    load fills them in once the server answers."""
    import gradio as gr

    from kmine.teacher import DEFAULT_TEACHER
    from kmine.training.config import SCHEDULES
    from webui.app import build_ui, late_options
    from webui.views.jobs import JobsView

    ui = build_ui(closed_url(), "t")
    status = by_id(ui, "kmine-status").value
    assert "cannot read the server's choices" in status and "cannot reach the server" in status
    assert status.count("\n") == 0
    assert by_id(ui, "jobs-schedule").choices == [] and by_id(ui, "export-format").choices == []

    with gr.Blocks():
        jobs = JobsView(unreachable(), {})
    updates, problem = late_options(unreachable(), [jobs])
    assert "cannot reach the server" in problem and len(updates) == 3
    assert jobs.default_teacher == ""
    updates, problem = late_options(api, [jobs])  # the server answers now
    assert problem is None and updates[0]["choices"] == list(SCHEDULES)
    assert updates[1]["value"] == DEFAULT_TEACHER and jobs.default_teacher == DEFAULT_TEACHER


def test_prompt_choices_become_job_settings_and_back():
    from kmine.prompts import PROMPT_CHOICES
    from webui.views.jobs import prompt_label, prompt_settings

    for choice in PROMPT_CHOICES:
        assert prompt_label(prompt_settings(choice)) == choice
    assert prompt_label(None) == "per-component"  # the engine's default
    assert prompt_label({"kinds": "box", "per_component": True}) == "box per component"


def test_tables_need_no_pandas():
    from webui.views.common import table

    assert table([{"a": 1}, {"b": 2, "a": 3}]) == {"headers": ["a", "b"], "data": [[1, ""], [3, 2]]}
    assert table([]) == {"headers": [], "data": []}


def test_timings_are_milliseconds_and_sam_encodings_a_count():
    from webui.views.label import sam_note
    from webui.views.predict import metrics_md

    common = {"model_id": 1, "width": 8, "height": 6, "prompt_kinds": "box"}
    student = {**common, "mode": "student", "timings_ms": {"student": 12.0}, "teacher_encodes": None}
    refine = {**common, "mode": "refine", "timings_ms": {"student": 11.0, "teacher_encode": 0.2, "teacher_decode": 30.0},
              "teacher_encodes": 0}
    text = metrics_md({"answers": {"student": student, "refine": refine}, "truth": None})
    assert "| student (ms) | 12 | 11 |" in text and "| teacher decode (ms) | – | 30 |" in text
    assert "| SAM encodings run | – | 0 |" in text
    answer = {"teacher": "mobilesam", "iou_pred": 0.9, "pixels": 40, "reused_logits": 1,
              "timings_ms": {"teacher_encode": 0.1, "teacher_decode": 25.0}}
    body = {"boxes": [[1, 2, 3, 4]], "points": [[1, 2], [3, 3]], "point_labels": [1, 0]}
    note = sam_note({**answer, "teacher_encodes": 0}, body)
    assert "(encoding cached)" in note and "1 box(es), 1 object and 1 background point(s): 40 px" in note
    assert "+ 0 ms encode" in sam_note({**answer, "teacher_encodes": 1}, body)


def test_dataset_and_split_tables_name_masks_and_parts_apart(api):
    """A dataset counts its annotated images (with a mask); a split's table keeps its fractions
    apart from its parts' image counts (both are keyed labelled, val, test)."""
    from service_fixtures import covid_zip
    from webui.views.datasets import DatasetsView, upload_md

    d = api.upload_dataset("tables", "t.zip", covid_zip("tables"))
    assert "12 annotated, 0 unannotated" in upload_md(d)
    api.create_split(d["id"], val_fraction=0.2, test_fraction=0.2, labelled_fraction=0.5, seed=0)
    view = DatasetsView.__new__(DatasetsView)  # the handlers alone, without building the Gradio layout
    view.api = api
    splits = view.show_splits(d["id"])
    headers = splits["headers"]
    assert {"val fraction", "test fraction", "labelled fraction", "labelled", "unlabelled", "val", "test"} <= set(headers)
    row = dict(zip(headers, splits["data"][0]))
    assert row["labelled fraction"] == 0.5 and row["labelled"] + row["unlabelled"] + row["val"] + row["test"] == 12


def test_canvas_payloads():
    """What Python and the browser's canvas hand each other: an image to open, SAM's prompts,
    the mask to save (anything else the page sends is no mask, never an error)."""
    import json

    from PIL import Image

    from webui.views.label_canvas import open_payload, png_data_url, read_json, sam_request, saved_mask

    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True
    opened = json.loads(open_payload(7, overlay.mask_to_png(mask), mask))
    assert opened["image_id"] == 7 and opened["image"].startswith("data:image/png;base64,")
    again = json.loads(open_payload(7, overlay.mask_to_png(mask), mask))  # each opening its own: the canvas
    assert again["open"] != opened["open"]  # reopens it, but not a field an event left as it was
    assert (saved_mask({"mask_png": opened["mask"]}, (10, 12)) == mask).all()  # a 1-bit PNG reads back
    assert saved_mask({"mask_png": opened["mask"]}, (12, 10)) is None  # not this image's size
    bomb = io.BytesIO()
    Image.new("1", (30000, 30000)).save(bomb, format="PNG")  # a few KB that would decode to 900 Mpx
    assert saved_mask({"mask_png": png_data_url(bomb.getvalue())}, (10, 12)) is None
    for junk in ({}, {"mask_png": 3}, {"mask_png": "data:image/png;base64,AAAA"}, {"mask_png": "file:///etc/passwd"}):
        assert saved_mask(junk, (10, 12)) is None
    assert read_json("not json") == {} and read_json("[1]") == {} and read_json(None) == {}
    body = sam_request({"boxes": [[1, 2, 3, 4]], "points": [[5, 6]], "labels": [0], "seq": 3})
    assert body == {"boxes": [[1, 2, 3, 4]], "points": [[5, 6]], "point_labels": [0], "previous": None}


def test_webui_imports_only_its_own_and_ui_libraries():
    """The web UI is only an HTTP client: no kmine, server or worker import (nor pandas)."""
    import ast
    import sys
    from pathlib import Path

    allowed = set(sys.stdlib_module_names) | {"gradio", "fastapi", "uvicorn", "httpx", "numpy", "PIL", "webui"}
    root = Path(__file__).resolve().parents[2] / "webui"
    found = {}
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for name in names:
                if name.split(".")[0] not in allowed:
                    found.setdefault(str(path.relative_to(root.parent)), []).append(name)
    assert not found, found
