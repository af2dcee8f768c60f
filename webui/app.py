"""The Gradio front end: Predict, Label, Jobs, Datasets. Every call goes to the HTTP API through
:class:`webui.client.ApiClient`; API errors are shown as readable messages."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from webui import overlay, plots  # noqa: E402
from webui.client import ApiClient, ApiError  # noqa: E402

MODES = {"Student": "student", "Student → SAM": "refine"}
PROMPT_KINDS = ["model default", "per-component", "points+box", "points", "box", "points+box+mask"]


def _prompt_settings(kinds: str) -> dict:
    """The engine's PromptConfig settings for a choice: per-component, or one set around everything."""
    if kinds == "per-component":
        return {"kinds": "points+box", "per_component": True}
    return {"kinds": kinds, "per_component": False}
FINISHED = ("succeeded", "failed", "cancelled")


def _prompt_label(prompts) -> str:
    """A job's prompt settings as the Jobs view names them (the engine's defaults when unset:
    points+box per component)."""
    if not isinstance(prompts, dict):
        return str(prompts or "per-component")
    kinds = prompts.get("kinds", "points+box")
    if prompts.get("per_component", True):
        return "per-component" if kinds == "points+box" else f"{kinds} per component"
    return kinds

CSS = """
.kmine-legend span {display:inline-block; padding:2px 10px; border-radius:4px; margin-right:6px; color:#111; font-weight:600}
.kmine-error {color:#b42318; font-weight:600}
#predict-metrics table, #jobs-table table {font-variant-numeric: tabular-nums}
footer {display:none !important}
"""

# N: next image, S: save (Label view), unless typing in a field.
SHORTCUTS = """
<script>
document.addEventListener('keydown', (e) => {
  const t = e.target; const tag = (t && t.tagName || '').toLowerCase();
  if (tag === 'input' || tag === 'textarea' || (t && t.isContentEditable)) return;
  const id = {'n': 'label-next', 's': 'label-save'}[e.key.toLowerCase()];
  if (!id || e.ctrlKey || e.metaKey || e.altKey) return;
  const button = document.getElementById(id);
  if (button && button.offsetParent !== null) { e.preventDefault(); button.click(); }
});
</script>
"""


def error_md(err: Exception) -> str:
    return f"<div class='kmine-error'>⚠ {err}</div>"


def _png_bytes(image) -> bytes:
    im = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image).astype(np.uint8))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _rgb(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _id(choice) -> int | None:
    """Dropdown choices are ``(label, id)`` pairs; the value is the id."""
    if choice in (None, "", "active"):
        return None
    return int(choice)


def _fmt(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


# ------------------------------------------------------------------ choices

def dataset_choices(api: ApiClient) -> list[tuple[str, int]]:
    return [(f"{d['name']} (#{d['id']}, {d['counts'].get('images', '?')} images)", d["id"]) for d in api.datasets()]


def split_choices(api: ApiClient, dataset_id) -> list[tuple[str, int]]:
    if not dataset_id:
        return []
    out = []
    for s in api.splits(int(dataset_id)):
        f = s.get("fractions") or {}
        out.append((f"split #{s['id']} · labelled {f.get('labelled', '?')} · seed {s['seed']}", s["id"]))
    return out


def model_choices(api: ApiClient) -> list[tuple[str, int | str]]:
    out: list[tuple[str, int | str]] = [("active model", "active")]
    for m in reversed(api.models()):
        dice = (m.get("metrics") or {}).get("val_dice")
        label = f"#{m['id']} {m['name']}" + (f" · val Dice {dice:.3f}" if dice is not None else "")
        out.append((label + (" ★" if m["active"] else ""), m["id"]))
    return out


# ------------------------------------------------------------------ Predict

def predict_view(api: ApiClient):
    state = gr.State({})
    picked = gr.State(None)  # (filename, bytes) when the image came from a dataset
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            image = gr.Image(label="Image (upload, or pick one from a dataset below)", type="numpy",
                             sources=["upload", "clipboard"], elem_id="predict-image", height=260)
            truth = gr.Image(label="Ground-truth mask (optional: adds Dice and IoU)", type="pil", image_mode="L",
                             sources=["upload"], elem_id="predict-truth", height=160)
            with gr.Accordion("Pick from a dataset", open=False):
                ds = gr.Dropdown(label="Dataset", choices=[], elem_id="predict-dataset")
                img = gr.Dropdown(label="Image", choices=[], elem_id="predict-pick")
            model = gr.Dropdown(label="Model", choices=[("active model", "active")], value="active",
                                elem_id="predict-model")
            mode = gr.Radio(list(MODES), value="Student → SAM", label="Mode", elem_id="predict-mode")
            kinds = gr.Dropdown(PROMPT_KINDS, value="model default", label="Prompt kinds (SAM)")
            run = gr.Button("Predict", variant="primary", elem_id="predict-run")
        with gr.Column(scale=3, min_width=420):
            with gr.Row():
                show_student = gr.Checkbox(True, label="Student mask", elem_id="show-student")
                show_prompts = gr.Checkbox(True, label="Prompts (points, box)", elem_id="show-prompts")
                show_sam = gr.Checkbox(True, label="SAM mask", elem_id="show-sam")
                show_truth = gr.Checkbox(False, label="Ground truth", elem_id="show-truth")
            gr.HTML("<div class='kmine-legend'>"
                    f"<span style='background:rgb{overlay.STUDENT}'>student</span>"
                    f"<span style='background:rgb{overlay.SAM}'>SAM</span>"
                    f"<span style='background:rgb{overlay.TRUTH}'>ground truth</span>"
                    f"<span style='background:rgb{overlay.POINT}'>● point</span>"
                    "<span style='background:#eee'>□ box</span></div>")
            shown = gr.Image(label="Overlay", type="pil", interactive=False, elem_id="predict-overlay", height=520)
            metrics = gr.Markdown(elem_id="predict-metrics")

    def pick(dataset_id):
        if not dataset_id:
            return gr.update(choices=[], value=None)
        items = api.images(int(dataset_id))["items"]
        return gr.update(choices=[(f"{i['stem']}{'' if i['labelled'] else ' (unlabelled)'}", i["id"]) for i in items],
                         value=None)

    def load_picked(dataset_id, image_id):
        if not dataset_id or not image_id:
            return gr.update(), gr.update(), None
        data = api.image_png(int(dataset_id), int(image_id))
        gt = api.mask_png(int(dataset_id), int(image_id), "mask")
        truth_im = Image.open(io.BytesIO(gt)).convert("L") if gt else None
        return _rgb(data), truth_im, (f"image-{image_id}.png", data)

    def predict(image_, truth_, picked_, model_, mode_, kinds_, s1, s2, s3, s4):
        if image_ is None:
            return {}, None, error_md("Upload an image (or pick one from a dataset) first.")
        try:
            name, data = picked_ if picked_ else ("upload.png", _png_bytes(image_))
            h, w = image_.shape[:2]
            truth_mask = overlay.as_mask(truth_, (w, h))
            truth_png = overlay.mask_to_png(truth_mask) if truth_mask is not None else None
            model_id = _id(model_)
            prompts = None if kinds_ == "model default" else kinds_
            student = api.predict(name, data, "student", model_id, None, truth_png)
            result = {"image": image_, "truth": truth_mask, "student": student["mask_png"], "prompts": [],
                      "answers": {"student": student}}
            if MODES[mode_] == "refine":
                refined = api.predict(name, data, "refine", model_id or student["model_id"], prompts, truth_png)
                result.update(sam=refined["mask_png"], prompts=refined["prompts"])
                result["answers"]["refine"] = refined
        except ApiError as err:
            return {}, None, error_md(err)
        return result, draw(result, s1, s2, s3, s4), metrics_md(result)

    def draw(result, s1, s2, s3, s4):
        if not result:
            return None
        layers = [(result["truth"] if s4 else None, overlay.TRUTH, 0.25),
                  (overlay.decode_png_mask(result["student"]) if s1 else None, overlay.STUDENT, 0.35),
                  (overlay.decode_png_mask(result.get("sam")) if s3 else None, overlay.SAM, 0.35)]
        return overlay.render_large(result["image"], layers, result["prompts"] if s2 else None)

    def metrics_md(result):
        answers = result["answers"]
        cols = [("Student", answers.get("student")), ("Student → SAM", answers.get("refine"))]
        cols = [(n, a) for n, a in cols if a]
        head = "| | " + " | ".join(n for n, _ in cols) + " |\n|---|" + "---:|" * len(cols) + "\n"
        rows = ""
        if result["truth"] is not None:
            rows += "| **Dice** | " + " | ".join(_fmt(a.get("dice")) for _, a in cols) + " |\n"
            rows += "| **IoU** | " + " | ".join(_fmt(a.get("iou")) for _, a in cols) + " |\n"
        keys = sorted({k for _, a in cols for k in (a.get("timings_ms") or {})})
        for k in keys:
            unit = "" if k.endswith("_run") else " (ms)"  # teacher_encodes_run is a count
            rows += f"| {k.replace('_', ' ')}{unit} | " + " | ".join(_fmt((a.get("timings_ms") or {}).get(k), 0) for _, a in cols) + " |\n"
        a = cols[-1][1]
        note = (f"Model #{a['model_id']} · {a['width']}×{a['height']} px"
                + (f" · prompts: {a['prompt_kinds']}" if a["mode"] == "refine" else ""))
        if result["truth"] is None:
            note += " · add a ground-truth mask to see Dice and IoU"
        return head + rows + "\n" + note

    toggles = [show_student, show_prompts, show_sam, show_truth]
    ds.change(_safe(pick), ds, img)
    img.change(_safe(load_picked, 3), [ds, img], [image, truth, picked])
    image.upload(lambda: None, None, picked)
    truth.change(lambda t: gr.update(value=t is not None), truth, show_truth)
    run.click(predict, [image, truth, picked, model, mode, kinds, *toggles], [state, shown, metrics])
    for t in toggles:
        t.change(draw, [state, *toggles], shown)
    return ds, model


def _safe(fn, n_out: int = 1):
    """Wrap a handler so an API error becomes a Gradio warning instead of a trace."""

    def wrapped(*args):
        try:
            return fn(*args)
        except ApiError as err:
            gr.Warning(str(err))
            return gr.update() if n_out == 1 else tuple(gr.update() for _ in range(n_out))

    return wrapped


# ------------------------------------------------------------------ Datasets

def datasets_view(api: ApiClient):
    with gr.Row():
        with gr.Column(scale=3):
            table = gr.Dataframe(label="Datasets", interactive=False, elem_id="datasets-table", wrap=True)
            refresh = gr.Button("Refresh", size="sm")
            chosen = gr.Dropdown(label="Dataset", choices=[], elem_id="datasets-choice")
            splits = gr.Dataframe(label="Splits of this dataset (train = labelled + unlabelled)", interactive=False,
                                  elem_id="splits-table")
        with gr.Column(scale=2):
            gr.Markdown("### Upload a dataset\nA zip with `images/` and `masks/` whose files share stems "
                        "(PNG, JPEG, TIFF, BMP; mask foreground ≥ 128). Images without masks are unlabelled.")
            name = gr.Textbox(label="Name", elem_id="upload-name")
            archive = gr.File(label="Zip", file_types=[".zip"], type="filepath", elem_id="upload-zip")
            upload = gr.Button("Upload", variant="primary", elem_id="upload-run")
            gr.Markdown("### Make a split")
            with gr.Row():
                val = gr.Number(0.1, label="Validation fraction", minimum=0, maximum=0.9, step=0.05)
                test = gr.Number(0.1, label="Test fraction", minimum=0, maximum=0.9, step=0.05)
            with gr.Row():
                labelled = gr.Number(0.5, label="Labelled fraction of train", minimum=0.01, maximum=1, step=0.05)
                seed = gr.Number(0, label="Seed", precision=0, minimum=0)
            make = gr.Button("Make split", elem_id="split-run")
            message = gr.Markdown(elem_id="datasets-message")

    def list_all():
        rows = []
        for d in api.datasets():
            c = d["counts"]
            flat = {k: (", ".join(f"{n} {kk}" for kk, n in v.items()) if isinstance(v, dict) else v) for k, v in c.items()}
            rows.append({"id": d["id"], "name": d["name"], **flat,
                         "active model": d["active_model_id"] or "–"})
        return pd.DataFrame(rows), gr.update(choices=dataset_choices(api))

    def show_splits(dataset_id):
        if not dataset_id:
            return pd.DataFrame()
        rows = []
        for s in api.splits(int(dataset_id)):
            full = api.split(s["id"])
            rows.append({"split": s["id"], "seed": s["seed"], **{k: v for k, v in (s["fractions"] or {}).items()},
                         **full["counts"], "created": str(s["created_at"])[:19]})
        return pd.DataFrame(rows)

    def do_upload(name_, path):
        if not path:
            return gr.update(), gr.update(), error_md("Choose a zip file first.")
        try:
            data = Path(path).read_bytes()
            d = api.upload_dataset(name_ or Path(path).stem, Path(path).name, data)
        except ApiError as err:
            return gr.update(), gr.update(), error_md(err)
        ignored = d.get("ignored") or []
        msg = f"Imported **{d['name']}** (#{d['id']}): " + ", ".join(f"{v} {k}" for k, v in d["counts"].items())
        if ignored:
            msg += f"<br>Ignored {len(ignored)} file(s): " + "; ".join(map(str, ignored[:8]))
        table_, choices = list_all()
        return table_, gr.update(choices=choices["choices"], value=d["id"]), msg

    def do_split(dataset_id, v, t, lab, s):
        if not dataset_id:
            return gr.update(), error_md("Choose a dataset first.")
        try:
            sp = api.create_split(int(dataset_id), val_fraction=v, test_fraction=t, labelled_fraction=lab, seed=int(s or 0))
        except ApiError as err:
            return gr.update(), error_md(err)
        return show_splits(dataset_id), f"Made split #{sp['id']}: " + ", ".join(f"{v} {k}" for k, v in sp["counts"].items())

    refresh.click(_safe(list_all, 2), None, [table, chosen])
    chosen.change(_safe(show_splits), chosen, splits)
    upload.click(do_upload, [name, archive], [table, chosen, message])
    make.click(do_split, [chosen, val, test, labelled, seed], [splits, message])
    return list_all, table, chosen


# ------------------------------------------------------------------ Jobs

def jobs_view(api: ApiClient):
    selected = gr.State(None)
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            gr.Markdown("### Launch a training")
            ds = gr.Dropdown(label="Dataset", choices=[], elem_id="jobs-dataset")
            split = gr.Dropdown(label="Split", choices=[], elem_id="jobs-split")
            schedule = gr.Radio(["supervised", "one-time", "continuous"], value="continuous",
                                label="Schedule (one-time / continuous mine SAM for pseudo-labels)", elem_id="jobs-schedule")
            with gr.Row():
                fraction = gr.Number(0, label="Labelled fraction (0: the split's own)", minimum=0, maximum=1, step=0.05)
                teacher = gr.Dropdown(["mobilesam", "litemedsam"], value="mobilesam", label="Teacher")
            kinds = gr.Dropdown(PROMPT_KINDS[1:], value="per-component", label="Prompt kinds")
            with gr.Row():
                epochs = gr.Number(10, label="Max epochs per phase", precision=0, minimum=1, elem_id="jobs-epochs")
                seed = gr.Number(0, label="Seed", precision=0, minimum=0)
                size = gr.Number(224, label="Image size", precision=0, minimum=32, elem_id="jobs-size")
            launch = gr.Button("Launch", variant="primary", elem_id="jobs-launch")
            message = gr.Markdown(elem_id="jobs-message")
        with gr.Column(scale=3, min_width=420):
            gr.Markdown("### Queue (refreshes every 2 s; select a row for its curves)")
            queue = gr.Dataframe(interactive=False, elem_id="jobs-table", wrap=True)
            detail = gr.Markdown(elem_id="jobs-detail")
            with gr.Row():
                cancel = gr.Button("Cancel selected job", size="sm", variant="stop")
    with gr.Row():
        loss, quality, pseudo = (gr.Image(type="pil", show_label=False, interactive=False, elem_id=e, height=250,
                                           show_download_button=False, show_fullscreen_button=False)
                                  for e in ("plot-loss", "plot-val", "plot-pseudo"))
    gr.Markdown("### Finished runs (Table 1: best validation Dice / IoU by method and labelled fraction)")
    table1 = gr.Dataframe(interactive=False, elem_id="jobs-table1", wrap=True)
    timer = gr.Timer(2.0, active=False)  # the Jobs tab turns it on while it is shown

    def splits_for(dataset_id):
        choices = split_choices(api, dataset_id)
        return gr.update(choices=choices, value=choices[-1][1] if choices else None)

    def do_launch(split_id, schedule_, fraction_, teacher_, kinds_, epochs_, seed_, size_):
        if not split_id:
            return error_md("Choose a dataset and a split (make one in Datasets)."), gr.update()
        config = {"schedule": schedule_, "teacher": teacher_, "max_epochs": int(epochs_ or 10), "seed": int(seed_ or 0),
                  "size": int(size_ or 224), "prompts": _prompt_settings(kinds_)}
        if fraction_:
            config["labelled_fraction"] = float(fraction_)
        try:
            job = api.submit("train", int(split_id), config)
        except ApiError as err:
            return error_md(err), gr.update()
        return f"Queued job **#{job['id']}** ({schedule_}, {teacher_}, {kinds_}).", job["id"]

    def refresh(job_id):
        """Redraw now (after a launch or a row selection)."""
        return tick(job_id, None)[:-1]

    def tick(job_id, last):
        """The timer's refresh: nothing is redrawn (no plots rendered or sent) while neither
        the queue nor the selected job changed since this page's last tick."""
        try:
            jobs = api.jobs()
        except ApiError as err:
            return (gr.update(), error_md(err), gr.update(), gr.update(), gr.update(), gr.update(), last)
        seen = fingerprint(jobs, job_id)
        if seen == last:
            return (*(gr.skip() for _ in outputs), last)
        return (*draw_jobs(jobs, job_id), seen)

    def fingerprint(jobs, job_id) -> str:
        return json.dumps([job_id, [(j["id"], j["status"], j["progress"], j["finished_at"]) for j in jobs]],
                          sort_keys=True, default=str)

    def draw_jobs(jobs, job_id):
        rows = []
        for j in jobs:
            p = j["progress"] or {}
            c = j["config"] or {}
            eta = p.get("eta_seconds")
            rows.append({"job": j["id"], "kind": j["kind"], "status": j["status"], "schedule": c.get("schedule", ""),
                         "phase": p.get("phase") or "", "epoch": p.get("epoch") if p.get("epoch") is not None else "",
                         "progress": f"{100 * (p.get('fraction') or 0):.0f}%",
                         "ETA": f"{eta:.0f} s" if eta and j["status"] == "running" else "",
                         "model": j["model_id"] or ""})
        queue_df = pd.DataFrame(rows)
        finished = [j for j in jobs if j["kind"] == "train" and j["status"] == "succeeded"]
        if job_id is None and jobs:
            job_id = jobs[0]["id"]
        if job_id is None:
            return queue_df, "No jobs yet.", None, None, None, table1_df(finished)
        try:
            job = api.job(int(job_id))
        except ApiError as err:
            return queue_df, error_md(err), None, None, None, table1_df(finished)
        return (queue_df, job_md(job), *curves(job), table1_df(finished))

    def job_md(job):
        p = job["progress"] or {}
        bar = int(20 * (p.get("fraction") or 0))
        text = (f"**Job #{job['id']}** · {job['kind']} · **{job['status']}** · phase {p.get('phase') or '–'} · "
                f"epoch {p.get('epoch') if p.get('epoch') is not None else '–'}  \n"
                f"`{'█' * bar}{'░' * (20 - bar)}` {100 * (p.get('fraction') or 0):.0f}%")
        if job.get("error"):
            text += f"\n\n<div class='kmine-error'>{job['error'][-600:]}</div>"
        return text

    def curves(job):
        """Three charts over one x axis: epochs counted across phases, a dashed mark where
        mining starts; pseudo-label quality sits at the epoch it was measured in."""
        metrics = job.get("metrics") or []
        index = {(m["phase"], m["epoch"]): i for i, m in enumerate(metrics, 1)}
        marks = [(i, m["phase"]) for i, m in enumerate(metrics, 1) if i > 1 and m["phase"] != metrics[i - 2]["phase"]]

        def series(records, keys, where):
            out = {}
            for n, r in enumerate(records, 1):
                for key, name in keys:
                    if r.get(key) is not None:
                        out.setdefault(name, []).append((where(n, r), r[key]))
            return out

        def by_position(n, r):
            return n

        def by_epoch(n, r):
            return index.get((r.get("phase"), r.get("epoch")), n)

        loss = series(metrics, (("train_loss", "train"), ("val_loss", "validation")), by_position)
        val = series(metrics, (("val_dice", "Dice"), ("val_iou", "IoU")), by_position)
        pl = series(job.get("pseudo_label_quality") or [], (("student_dice", "student's mask"),
                                                            ("teacher_dice", "SAM's mask"),
                                                            ("pseudo_dice", "pseudo-label")), by_epoch)
        return (plots.line_chart(loss, "Loss (Dice + k·BCE)", marks=marks),
                plots.line_chart(val, "Validation Dice / IoU", marks=marks),
                plots.line_chart(pl, "Pseudo-label Dice vs. truth", marks=marks))

    def table1_df(finished):
        rows = {}
        for j in finished:
            c, best = j["config"] or {}, ((j.get("result") or {}).get("best") or {})
            method = c.get("schedule", "?") if c.get("schedule") == "supervised" else \
                f"{c.get('schedule')} · {c.get('teacher', 'mobilesam')} · {_prompt_label(c.get('prompts'))}"
            frac = c.get("labelled_fraction")
            col = f"{100 * frac:.0f}% labelled" if frac else "split's labelled"
            cell = rows.setdefault(method, {}).setdefault(col, [])
            cell.append((best.get("val_dice") or 0.0, best.get("val_iou"), j["id"]))
        if not rows:
            return pd.DataFrame({"method": ["no finished training yet"]})
        return pd.DataFrame([{"method": method, **{col: table1_cell(runs) for col, runs in cols.items()}}
                             for method, cols in rows.items()])

    def table1_cell(runs):
        """The best run of a cell by validation Dice, and how many runs it was chosen from."""
        dice, iou, job_id = max(runs)
        more = f", best of {len(runs)}" if len(runs) > 1 else ""
        return f"{_fmt(dice)} / {_fmt(iou)}  (#{job_id}{more})"

    def select_row(evt: gr.SelectData, df):
        try:
            return int(df.iloc[evt.index[0]]["job"])
        except Exception:
            return None

    def do_cancel(job_id):
        if not job_id:
            return error_md("Select a job in the queue first.")
        try:
            api.cancel(int(job_id))
        except ApiError as err:
            return error_md(err)
        return f"Asked job #{job_id} to cancel."

    outputs = [queue, detail, loss, quality, pseudo, table1]
    ds.change(_safe(splits_for), ds, split)
    launch.click(do_launch, [split, schedule, fraction, teacher, kinds, epochs, seed, size], [message, selected]) \
        .then(refresh, selected, outputs)
    queue.select(select_row, queue, selected).then(refresh, selected, outputs)
    cancel.click(do_cancel, selected, message)
    last_tick = gr.State(None)
    timer.tick(tick, [selected, last_tick], [*outputs, last_tick])
    return ds, timer, selected, outputs


# ------------------------------------------------------------------ Label

CLICKS = {"+ object point": "fg", "− background point": "bg", "□ box: click two corners": "box"}
START = {"SAM mask (student → SAM)": "refine", "student prediction": "student", "stored pseudo-label": "pseudo"}
# The editor shows the mask burned into its background (green); two brushes mark pixels to add
# (green) or remove (red) and the eraser takes strokes back. Gradio's ImageEditor does not show
# layers handed to it from Python, so the mask cannot be an erasable layer of its own.
ADD, REMOVE = "#00c878", "#ff2d55"
CANVAS = 800  # the editor's canvas; images are shown with their longest side this long


def no_prompts() -> dict:
    return {"points": [], "labels": [], "box": None, "corner": None}


def prompt_list(prompts: dict) -> list[dict]:
    """The user's prompts in the API's shape (a pending box corner shows as a point until the
    second corner is clicked)."""
    points = prompts["points"] + ([prompts["corner"]] if prompts["corner"] else [])
    labels = prompts["labels"] + ([1] if prompts["corner"] else [])
    if not points and not prompts["box"]:
        return []
    return [{"points": points, "point_labels": labels, "box": prompts["box"]}]


def editor_value(current: dict) -> dict:
    shown = np.asarray(overlay.render_large(current["rgb"], [(current["mask"], overlay.TRUTH, 0.4)], longest=CANVAS))
    return {"background": shown, "layers": [], "composite": shown}


def edited_mask(value: dict | None, mask: np.ndarray) -> np.ndarray:
    """``mask`` with the green strokes added and the red ones removed, at the mask's size."""
    strokes = _strokes(value)
    if strokes is None:
        return mask
    h, w = mask.shape
    add, remove = (np.asarray(Image.fromarray(m).resize((w, h), Image.NEAREST)) > 0 for m in strokes)
    return (mask | add) & ~remove


def _strokes(value: dict | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(add, remove) uint8 masks of the brush strokes at display size; green strokes add, red
    ones remove (told apart by hue, which survives the brush's transparency)."""
    if not value:
        return None
    layers = [np.asarray(layer) for layer in value.get("layers") or [] if layer is not None]
    painted = [layer for layer in layers if layer.ndim == 3 and layer.shape[2] == 4]
    if not painted:
        return None
    rgba = np.stack(painted).astype(np.int16)
    touched = rgba[..., 3] > 0
    greener = rgba[..., 1] > rgba[..., 0]
    add = (touched & greener).any(0)
    remove = (touched & ~greener).any(0)
    return add.astype(np.uint8), remove.astype(np.uint8)


def label_view(api: ApiClient):
    state = gr.State({"queue": [], "pos": -1})
    clicked = gr.State(no_prompts())
    with gr.Row():
        with gr.Column(scale=1, min_width=290):
            ds = gr.Dropdown(label="Dataset", choices=[], elem_id="label-dataset")
            split = gr.Dropdown(label="Split", choices=[], elem_id="label-split")
            start = gr.Radio(list(START), value="SAM mask (student → SAM)", label="Start each image from",
                             elem_id="label-start")
            find = gr.Button("Find unlabelled images", variant="primary", elem_id="label-find")
            candidates = gr.Dataframe(label="To label: student and SAM disagree most first", interactive=False,
                                      elem_id="label-queue", wrap=True)
            gr.Markdown("**How to**: click on the left image to ask SAM again (object points, background "
                        "points, or a box by two corners), and/or paint on the right: the **brush** in green adds "
                        "to the mask, in red removes from it; the **eraser** takes strokes back. Then save: the "
                        "image becomes ground truth and moves to the labelled set.  \n"
                        "Keys: **S** save · **N** skip to the next image.", elem_classes="kmine-help")
        with gr.Column(scale=4, min_width=640):
            info = gr.Markdown("Choose a dataset and a split, then **Find unlabelled images**.", elem_id="label-info")
            with gr.Row(equal_height=True):
                with gr.Column(min_width=300):
                    click_mode = gr.Radio(list(CLICKS), value="+ object point", label="A click on this image adds",
                                          elem_id="label-click-mode")
                    prompt_view = gr.Image(label="Mask (green) and your clicks: click to prompt SAM", type="numpy", interactive=False,
                                           elem_id="label-prompt", height=470, show_download_button=False,
                                           show_fullscreen_button=False)
                    with gr.Row():
                        undo = gr.Button("Undo last click", size="sm", elem_id="label-undo")
                        clear = gr.Button("Clear clicks", size="sm", elem_id="label-clear")
                    sam_note = gr.Markdown(elem_id="label-sam-note")
                with gr.Column(min_width=300):
                    gr.Markdown("**Brush**: green adds to the mask, red removes · **eraser** takes strokes back",
                                elem_classes="kmine-tool-hint")
                    editor = gr.ImageEditor(show_label=False, type="numpy",
                                            elem_id="label-editor", sources=(), transforms=(), format="png",
                                            layers=False, canvas_size=(CANVAS, CANVAS),
                                            brush=gr.Brush(colors=[ADD, REMOVE], default_color=ADD,
                                                           color_mode="fixed", default_size=12),
                                            eraser=gr.Eraser(default_size=16), height=560)
            with gr.Row():
                save = gr.Button("Save as ground truth (S)", variant="primary", elem_id="label-save")
                nxt = gr.Button("Skip to next (N)", elem_id="label-next")

    def splits_for(dataset_id):
        choices = split_choices(api, dataset_id)
        return gr.update(choices=choices, value=choices[-1][1] if choices else None)

    def do_find(dataset_id, split_id, start_):
        """Ask the server for the ranking (it predicts in batches and caches per model)."""
        empty = ({"queue": [], "pos": -1}, gr.update(), None, None, no_prompts())
        if not dataset_id or not split_id:
            return *empty[:2], error_md("Choose a dataset and a split (make one in Datasets)."), *empty[2:]
        try:
            ranked = api.candidates(int(split_id))
        except ApiError as err:
            return *empty[:2], error_md(err), *empty[2:]
        queue = ranked["items"]
        st = {"queue": queue, "pos": -1, "dataset": int(dataset_id), "split": int(split_id),
              "model": ranked["model_id"]}
        table = queue_table(queue)
        if not queue:
            return st, table, "No unlabelled image left in this split.", None, None, no_prompts()
        st, text, view, edit, prompts = advance(st, start_)
        return st, table, text, view, edit, prompts

    def queue_table(queue):
        return pd.DataFrame([{"": "✔" if q.get("done") else "", "image": q["stem"],
                              "disagreement": round(q["disagreement"], 3)} for q in queue])

    def advance(st, start_):
        """Open the next image not yet saved; returns (state, info, prompt view, editor, clicks)."""
        queue, pos = st["queue"], st["pos"] + 1
        while pos < len(queue) and queue[pos].get("done"):
            pos += 1
        st["pos"] = min(pos, len(queue))
        if pos >= len(queue):
            st["current"] = None
            done = sum(1 for x in queue if x.get("done"))
            text = ("✔ Every candidate of this split is labelled. Train a model on them in **Jobs**." if done == len(queue)
                    else f"End of the list: {done} of {len(queue)} saved. **Find unlabelled images** again for the "
                         "skipped ones, or train on the new labels in **Jobs**.")
            return st, text, None, None, no_prompts()
        q = queue[pos]
        data = api.image_png(st["dataset"], q["id"])
        rgb = _rgb(data)
        mask, note = start_mask(st, q, data, START[start_])
        if mask is None:
            mask = np.zeros(rgb.shape[:2], bool)
        current = st["current"] = {"id": q["id"], "stem": q["stem"], "mask": mask, "rgb": rgb,
                                   "scale": CANVAS / max(rgb.shape[:2])}
        done = sum(1 for x in queue if x.get("done"))
        text = (f"### {q['stem']}\nimage #{q['id']} · candidate {pos + 1} of {len(queue)} · {done} saved · "
                f"disagreement {q['disagreement']:.3f} · started from {note}")
        return st, text, render_prompts(current, no_prompts()), editor_value(current), no_prompts()

    def start_mask(st, q, data, how):
        if how == "pseudo":
            mask = overlay.decode_png_mask(api.mask_png(st["dataset"], q["id"], "pseudo-label"))
            return mask, "the stored pseudo-label" if mask is not None else "nothing (no pseudo-label stored yet)"
        answer = api.predict(f"image-{q['id']}.png", data, how, st.get("model"))
        who = "SAM prompted by the student" if answer["refined"] else "the student"
        return overlay.decode_png_mask(answer["mask_png"]), f"{who} (model #{answer['model_id']})"

    def render_prompts(current, prompts):
        return overlay.render_large(current["rgb"], [(current["mask"], overlay.TRUTH, 0.4)], prompt_list(prompts),
                                    longest=CANVAS)

    def on_click(evt: gr.SelectData, st, prompts, mode_):
        current = (st or {}).get("current")
        if not current:
            return prompts, gr.update(), gr.update(), error_md("Find unlabelled images first.")
        x, y = (round(float(v) / current["scale"], 1) for v in evt.index[:2])  # back to image pixels
        prompts = {k: (list(v) if isinstance(v, list) else v) for k, v in prompts.items()}
        kind = CLICKS[mode_]
        if kind == "box" and prompts["corner"] is None:
            prompts["corner"] = [x, y]
            return (prompts, render_prompts(current, prompts), gr.update(),
                    "First corner set: click the opposite corner of the box.")
        if kind == "box":
            prompts["box"], prompts["corner"] = [*prompts["corner"], x, y], None
        else:
            prompts["points"].append([x, y])
            prompts["labels"].append(1 if kind == "fg" else 0)
        return ask_sam(st, prompts)

    def ask_sam(st, prompts):
        """SAM's mask for the clicks so far replaces the mask being edited."""
        current = st["current"]
        if not prompts["points"] and not prompts["box"]:
            return prompts, render_prompts(current, prompts), gr.update(), ""
        try:
            answer = api.sam(st["dataset"], current["id"], prompts["points"], prompts["labels"], prompts["box"])
        except ApiError as err:
            return prompts, render_prompts(current, prompts), gr.update(), error_md(err)
        current["mask"] = overlay.decode_png_mask(answer["mask_png"])
        t = answer["timings_ms"]
        asked = f"{len(prompts['points'])} point(s)" + (" and a box" if prompts["box"] else "")
        note = (f"SAM ({answer['teacher']}) from {asked}: {int(current['mask'].sum())} px, its own IoU estimate "
                f"{answer['iou_pred']:.2f} · {t['teacher_decode']:.0f} ms decode"
                + (" (encoding cached)" if not t["teacher_encodes_run"] else f" + {t['teacher_encode']:.0f} ms encode"))
        return prompts, render_prompts(current, prompts), editor_value(current), note

    def do_undo(st, prompts):
        if not (st or {}).get("current"):
            return prompts, gr.update(), gr.update(), ""
        prompts = {k: (list(v) if isinstance(v, list) else v) for k, v in prompts.items()}
        if prompts["corner"]:
            prompts["corner"] = None
        elif prompts["points"]:
            prompts["points"].pop()
            prompts["labels"].pop()
        else:
            prompts["box"] = None
        return ask_sam(st, prompts)

    def do_clear(st):
        current = (st or {}).get("current")
        if not current:
            return no_prompts(), gr.update(), ""
        return no_prompts(), render_prompts(current, no_prompts()), "Clicks cleared; the mask is kept."

    def do_next(st, start_):
        if not st.get("queue"):
            return st, error_md("Find unlabelled images first."), gr.update(), gr.update(), no_prompts()
        try:
            return advance(st, start_)
        except ApiError as err:
            return st, error_md(err), gr.update(), gr.update(), no_prompts()

    def do_save(st, value, start_):
        current = (st or {}).get("current")
        if not current:
            return st, gr.update(), error_md("Nothing to save: find unlabelled images first."), gr.update(), gr.update(), gr.update()
        mask = edited_mask(value, current["mask"])
        try:
            api.put_mask(st["dataset"], current["id"], overlay.mask_to_png(mask))
            api.move(st["split"], [current["id"]], "labelled")
        except ApiError as err:
            return st, gr.update(), error_md(err), gr.update(), gr.update(), gr.update()
        st["queue"][st["pos"]]["done"] = True
        saved = f"✔ Saved **{current['stem']}** ({int(mask.sum())} px) as ground truth; it is now in the labelled set.\n\n"
        try:
            st, text, view, edit, prompts = advance(st, start_)
        except ApiError as err:
            return st, queue_table(st["queue"]), saved + error_md(err), gr.update(), gr.update(), no_prompts()
        return st, queue_table(st["queue"]), saved + text, view, edit, prompts

    ds.change(_safe(splits_for), ds, split)
    # a new image starts without SAM's note about the previous one
    find.click(do_find, [ds, split, start], [state, candidates, info, prompt_view, editor, clicked]) \
        .then(lambda: "", None, sam_note)
    prompt_view.select(on_click, [state, clicked, click_mode], [clicked, prompt_view, editor, sam_note])
    undo.click(do_undo, [state, clicked], [clicked, prompt_view, editor, sam_note])
    clear.click(do_clear, state, [clicked, prompt_view, sam_note])
    nxt.click(do_next, [state, start], [state, info, prompt_view, editor, clicked]).then(lambda: "", None, sam_note)
    save.click(do_save, [state, editor, start], [state, candidates, info, prompt_view, editor, clicked]) \
        .then(lambda: "", None, sam_note)
    return ds


# ------------------------------------------------------------------ the app

def no_model_note(api: ApiClient) -> str:
    """Without a model, say whether one is on its way (the first start queues a demo training)."""
    active = [j for j in api.jobs() if j["kind"] == "train" and j["status"] not in FINISHED]
    if not active:
        return "no model yet: launch a training in **Jobs**"
    job = active[0]
    done = round(100 * ((job.get("progress") or {}).get("fraction") or 0))
    return f"no model yet: training job #{job['id']} is making one ({job['status']}, {done}%); watch it in **Jobs**, then reload"


def _timer_switch(on: bool):
    return lambda: gr.Timer(active=on)


def build_ui(api_url: str, token: str) -> gr.Blocks:
    api = ApiClient(api_url, token)
    theme = gr.themes.Soft(primary_hue="blue", neutral_hue="slate")
    with gr.Blocks(title="kmine", theme=theme, css=CSS, head=SHORTCUTS, analytics_enabled=False) as ui:
        status = gr.Markdown(elem_id="kmine-status")
        with gr.Tabs():
            with gr.Tab("Predict", id="predict") as predict_tab:
                predict_ds, predict_model = predict_view(api)
            with gr.Tab("Label", id="label") as label_tab:
                label_ds = label_view(api)
            with gr.Tab("Jobs", id="jobs") as jobs_tab:
                jobs_ds, timer, _selected, _outputs = jobs_view(api)
            with gr.Tab("Datasets", id="datasets") as datasets_tab:
                list_all, table, chosen = datasets_view(api)
        # The queue polls only while it is on screen.
        for t in (predict_tab, label_tab, jobs_tab, datasets_tab):
            t.select(_timer_switch(t is jobs_tab), None, timer)

        def on_load():
            try:
                datasets = dataset_choices(api)
                models = model_choices(api)
                table_, _ = list_all()
            except ApiError as err:
                none = gr.update()
                return (f"<div class='kmine-error'>⚠ {err}</div>", none, none, none, none, none, none, none)
            first = datasets[0][1] if datasets else None
            n_models = len(models) - 1
            head = (f"## kmine · semi-supervised segmentation by mining SAM\n"
                    f"Server `{api.api_url}` · {len(datasets)} dataset(s) · {n_models} model(s)"
                    + ("" if n_models else " · " + no_model_note(api)))
            # one update per output: Gradio consumes an update dict as it applies it
            return (head, *(gr.update(choices=datasets, value=first) for _ in range(3)),
                    gr.update(choices=models, value="active"),
                    table_, gr.update(choices=datasets, value=first), gr.update())

        ui.load(on_load, None, [status, predict_ds, label_ds, jobs_ds, predict_model, table, chosen, _selected])
    return ui
