"""No label lost, in the UI, against the real API (the server app in-process, the COVID-QU-Ex
sample): the Label view refuses an empty mask unless confirmed, says when a save replaces the
imported ground truth, and Undo save restores the earlier label; the Predict view forgets the
last image's ground truth, overlay and metrics when a new image comes."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio")
from service_fixtures import covid_zip  # noqa: E402
from webui.views.predict import NEW_IMAGE_HINT  # noqa: E402

START = "stored pseudo-label"  # opens each image without a model: no pseudo-label yet, so an empty mask


def by_id(ui, elem_id: str):
    return next(b for b in ui.blocks.values() if getattr(b, "elem_id", None) == elem_id)


def fire(ui, elem_id: str, event: str, *args) -> dict:
    """Run the handler ``event`` of the component ``elem_id`` is wired to; its answer by the
    outputs' elem_id (a State, which has none, by its position)."""
    block = by_id(ui, elem_id)
    fn = next(f for f in ui.fns.values() if (block._id, event) in f.targets)
    answer = fn.fn(*args)
    answer = answer if isinstance(answer, tuple) else (answer,)
    assert len(answer) == len(fn.outputs), (elem_id, event)
    return {getattr(o, "elem_id", None) or i: v for i, (o, v) in enumerate(zip(fn.outputs, answer))}


def canvas_payload(image_id: int, mask: np.ndarray) -> str:
    """What the canvas sends on save: the mask on screen as a PNG data URL (white on black, RGBA)."""
    buf = io.BytesIO()
    Image.fromarray(np.where(mask[..., None], 255, 0).astype(np.uint8).repeat(4, 2)).save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return json.dumps({"image_id": image_id, "mask_png": url, "origin": "brush"})


def gt_of(api, ds: int, image_id: int) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(api.mask_png(ds, image_id, "ground-truth"))).convert("L")) >= 128


@pytest.fixture(scope="module")
def dataset(api):
    d = api.upload_dataset("no label lost", "c.zip", covid_zip("lost"))
    split = api.create_split(d["id"], val_fraction=0.2, test_fraction=0.2, labelled_fraction=0.5, seed=0)
    return d["id"], split


def test_predict_forgets_the_last_images_ground_truth(api, dataset):
    from webui.app import compose

    ds, split = dataset
    first, second = (i["id"] for i in split["parts"]["unlabelled"][:2])
    ui = compose(api)
    picked = fire(ui, "predict-pick", "change", ds, first)
    assert (np.asarray(picked["predict-truth"]) >= 128).tolist() == gt_of(api, ds, first).tolist()
    assert (picked["predict-overlay"], picked["predict-metrics"]) == (None, "")  # the last image's are gone
    for event in ("upload", "clear"):  # a new image of the user's: no ground truth until one is given
        forgotten = fire(ui, "predict-image", event)
        assert forgotten["predict-truth"] is None and forgotten["predict-pick"] is None
        assert (forgotten["predict-overlay"], forgotten["predict-metrics"]) == (None, NEW_IMAGE_HINT)
        assert {} in forgotten.values()  # the last result, which the layer toggles redraw
    picked = fire(ui, "predict-pick", "change", ds, second)  # another dataset image: its own truth
    assert (np.asarray(picked["predict-truth"]) >= 128).tolist() == gt_of(api, ds, second).tolist()
    assert gt_of(api, ds, first).tolist() != gt_of(api, ds, second).tolist()
    assert by_id(ui, "label-confirm-empty").value is False
    # the Label view's Save and Undo save answer every output they are wired to
    assert "Nothing to save" in fire(ui, "label-save", "click", {}, None, START, False)["label-save-note"]
    assert "Nothing to undo" in fire(ui, "label-undo-save", "click", {})["label-save-note"]


def test_label_empty_save_needs_a_confirmation_and_undo_restores(api, dataset):
    from webui.views.label import LabelView

    ds, split = dataset
    view = LabelView.__new__(LabelView)  # the handlers alone, without building the Gradio layout
    view.api = api
    queue = [{**i, "disagreement": 0.0} for i in split["parts"]["unlabelled"]]
    st = {"queue": queue, "pos": -1, "dataset": ds, "split": split["id"], "model": None}
    st, text, *_ = view.advance(st, START)
    assert "nothing (no pseudo-label stored yet)" in text
    first = st["current"]["id"]

    refused = view.do_save(st, None, START, False)  # an empty mask, not confirmed
    assert "The mask is empty: nothing was saved" in refused[4] and refused[0]["current"]["id"] == first
    assert [v["kind"] for v in api.mask_versions(ds, first)["items"]] == ["ground_truth"]

    st, _, info, _, note, confirm, _ = view.do_save(st, None, START, True)
    assert "(0 px) as its label, replacing the imported ground truth" in info and note == "" and confirm is False
    saved = api.mask_versions(ds, first)["items"][0]
    assert (saved["kind"], saved["pixels"], saved["origin"], saved["saved_by"]) == ("human", 0, "pseudo_label", "admin")

    second = st["current"]
    painted = np.zeros(second["shape"], bool)
    painted[10:30, 10:30] = True  # the canvas: a brush stroke added a square
    other = canvas_payload(second["id"] + 1000, painted)
    assert "sent no mask for this image" in view.do_save(st, other, START, False)[4]  # another image's canvas
    st, _, info, *_ = view.do_save(st, canvas_payload(second["id"], painted), START, False)
    assert f"Saved **{second['stem']}**" in info and "replacing the imported ground truth" in info
    brushed = api.mask_versions(ds, second["id"])["items"][0]
    assert brushed["origin"] == "brush" and brushed["pixels"] > 0
    labelled = {i["id"] for i in api.split(split["id"])["parts"]["labelled"]}
    assert {first, second["id"]} <= labelled

    st, table, info, payload, note, _, _ = view.do_undo_save(st)
    assert f"Undid the save of **{second['stem']}**: its label is the imported ground truth again" in info
    assert st["current"]["id"] == second["id"] and json.loads(payload)["image_id"] == second["id"]
    assert (st["current"]["mask"] == gt_of(api, ds, second["id"])).all()  # the restored label, shown to edit
    versions = api.mask_versions(ds, second["id"])
    assert versions["items"][0]["reverted_at"] and versions["label_id"] == versions["items"][1]["id"]
    assert second["id"] in {i["id"] for i in api.split(split["id"])["parts"]["unlabelled"]}
    assert "✔" in str(table)  # the first image is still saved

    st, *_ = view.do_undo_save(st)
    assert st["current"]["id"] == first and api.mask_png(ds, first) == api.mask_png(ds, first, "ground-truth")
    *_, note, _, _ = view.do_undo_save(st)
    assert "Nothing to undo" in note
    assert len(api.mask_versions(ds, first)["items"]) == 2  # the undone save is kept


def test_candidates_mark_the_open_saved_and_skipped_and_a_row_opens(api, dataset):
    from types import SimpleNamespace

    from webui.views.label import LabelView

    ds, split = dataset
    view = LabelView.__new__(LabelView)
    view.api = api
    queue = [{**i, "disagreement": 0.5} for i in split["parts"]["unlabelled"]]
    assert len(queue) >= 3
    st = {"queue": queue, "pos": -1, "dataset": ds, "split": split["id"], "model": None}
    st, *_ = view.advance(st, START)

    def marks(table) -> list[str]:
        return [row[0] for row in table["data"]]

    st, _, _, _, table = view.do_next(st, START)  # the first left unsaved: skipped
    assert marks(table)[:3] == ["↷", "▶", ""]
    row = SimpleNamespace(index=[2, 1])  # a click on the third row's second cell
    st, info, payload, _, table = view.do_pick(st, START, row)
    assert st["current"]["id"] == queue[2]["id"] and json.loads(payload)["image_id"] == queue[2]["id"]
    assert marks(table)[:3] == ["↷", "↷", "▶"] and queue[2]["stem"] in info
    st, _, _, _, table = view.do_pick(st, START, SimpleNamespace(index=[99, 0]))  # no such row: nothing moves
    assert st["current"]["id"] == queue[2]["id"]
