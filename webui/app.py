"""The Gradio front end: Predict, Label, Jobs, Datasets. Every call goes to the HTTP API through
:class:`webui.client.ApiClient`; API errors are shown as readable messages."""

from __future__ import annotations

import io
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from webui import overlay  # noqa: E402
from webui.client import ApiClient, ApiError  # noqa: E402

MODES = {"Student": "student", "Student → SAM": "refine"}
PROMPT_KINDS = ["model default", "points+box", "points", "box", "points+box+mask", "per-component"]
FINISHED = ("succeeded", "failed", "cancelled")

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
        return overlay.render(result["image"], layers, result["prompts"] if s2 else None)

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
                fraction = gr.Number(None, label="Labelled fraction (blank: the split's)", minimum=0.01, maximum=1)
                teacher = gr.Dropdown(["mobilesam", "litemedsam"], value="mobilesam", label="Teacher")
            kinds = gr.Dropdown(PROMPT_KINDS[1:], value="points+box", label="Prompt kinds")
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
        loss = gr.LinePlot(x="epoch", y="value", color="series", title="Loss", height=240, elem_id="plot-loss")
        quality = gr.LinePlot(x="epoch", y="value", color="series", title="Validation Dice / IoU", height=240,
                              elem_id="plot-val")
        pseudo = gr.LinePlot(x="epoch", y="value", color="series", title="Pseudo-label quality (Dice vs truth)",
                             height=240, elem_id="plot-pseudo")
    gr.Markdown("### Finished runs (Table 1: best validation Dice / IoU by method and labelled fraction)")
    table1 = gr.Dataframe(interactive=False, elem_id="jobs-table1", wrap=True)
    timer = gr.Timer(2.0)

    def splits_for(dataset_id):
        choices = split_choices(api, dataset_id)
        return gr.update(choices=choices, value=choices[-1][1] if choices else None)

    def do_launch(split_id, schedule_, fraction_, teacher_, kinds_, epochs_, seed_, size_):
        if not split_id:
            return error_md("Choose a dataset and a split (make one in Datasets)."), gr.update()
        config = {"schedule": schedule_, "teacher": teacher_, "max_epochs": int(epochs_ or 10), "seed": int(seed_ or 0),
                  "size": int(size_ or 224), "prompts": {"kinds": kinds_}}
        if fraction_:
            config["labelled_fraction"] = float(fraction_)
        try:
            job = api.submit("train", int(split_id), config)
        except ApiError as err:
            return error_md(err), gr.update()
        return f"Queued job **#{job['id']}** ({schedule_}, {teacher_}, {kinds_}).", job["id"]

    def refresh(job_id):
        try:
            jobs = api.jobs()
        except ApiError as err:
            return gr.update(), error_md(err), gr.update(), gr.update(), gr.update(), gr.update()
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
        loss_rows, val_rows, pl_rows = [], [], []
        for i, m in enumerate(job.get("metrics") or [], 1):
            for key, name in (("train_loss", "train loss"), ("val_loss", "val loss")):
                if m.get(key) is not None:
                    loss_rows.append({"epoch": i, "value": m[key], "series": name})
            for key, name in (("val_dice", "val Dice"), ("val_iou", "val IoU")):
                if m.get(key) is not None:
                    val_rows.append({"epoch": i, "value": m[key], "series": name})
        for i, q in enumerate(job.get("pseudo_label_quality") or [], 1):
            for key, name in (("student_dice", "student"), ("teacher_dice", "SAM pseudo-label")):
                if q.get(key) is not None:
                    pl_rows.append({"epoch": i, "value": q[key], "series": name})
        empty = pd.DataFrame({"epoch": [], "value": [], "series": []})
        return tuple(pd.DataFrame(r) if r else empty for r in (loss_rows, val_rows, pl_rows))

    def table1_df(finished):
        rows = {}
        for j in finished:
            c, best = j["config"] or {}, ((j.get("result") or {}).get("best") or {})
            prompts = c.get("prompts") or {}
            kinds_ = prompts.get("kinds", "") if isinstance(prompts, dict) else str(prompts)
            method = c.get("schedule", "?") if c.get("schedule") == "supervised" else \
                f"{c.get('schedule')} · {c.get('teacher', 'mobilesam')} · {kinds_ or 'points+box'}"
            frac = c.get("labelled_fraction")
            col = f"{100 * frac:.0f}% labelled" if frac else "split's labelled"
            dice, iou = best.get("val_dice"), best.get("val_iou")
            rows.setdefault(method, {"method": method})[col] = f"{_fmt(dice)} / {_fmt(iou)}  (#{j['id']})"
        return pd.DataFrame(list(rows.values())) if rows else pd.DataFrame({"method": ["no finished training yet"]})

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
    timer.tick(refresh, selected, outputs)
    return ds, refresh, selected, outputs


# ------------------------------------------------------------------ Label

def label_view(api: ApiClient):
    state = gr.State({"queue": [], "pos": -1})
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            ds = gr.Dropdown(label="Dataset", choices=[], elem_id="label-dataset")
            split = gr.Dropdown(label="Split", choices=[], elem_id="label-split")
            start = gr.Radio(["SAM mask (student → SAM)", "student prediction", "stored pseudo-label"],
                             value="SAM mask (student → SAM)", label="Start from")
            find = gr.Button("Find candidates (student and SAM disagree most first)", variant="primary",
                             elem_id="label-find")
            candidates = gr.Dataframe(label="Unlabelled images, best candidates first", interactive=False,
                                      elem_id="label-queue")
            gr.Markdown("Paint the mask with the **brush**, remove with the **eraser**.  \n"
                        "Keys: **S** save as ground truth · **N** next image.")
        with gr.Column(scale=3, min_width=480):
            info = gr.Markdown(elem_id="label-info")
            editor = gr.ImageEditor(label="Mask (red) over the image", type="numpy", elem_id="label-editor",
                                    brush=gr.Brush(colors=["#ff3b30"], color_mode="fixed", default_size=12),
                                    eraser=gr.Eraser(default_size=16), sources=(), layers=False,
                                    transforms=(), height=560)
            with gr.Row():
                save = gr.Button("Save as ground truth (S)", variant="primary", elem_id="label-save")
                nxt = gr.Button("Next (N)", elem_id="label-next")

    def splits_for(dataset_id):
        choices = split_choices(api, dataset_id)
        return gr.update(choices=choices, value=choices[-1][1] if choices else None)

    def disagreement(dataset_id, image_id):
        """1 - Dice(student, SAM) from the stored prediction and pseudo-label, else by predicting."""
        data = api.image_png(dataset_id, image_id)
        a = api.predict(f"image-{image_id}.png", data, "student")
        b = api.predict(f"image-{image_id}.png", data, "refine", a["model_id"])
        ma, mb = overlay.decode_png_mask(a["mask_png"]), overlay.decode_png_mask(b["mask_png"])
        return 1 - overlay.dice_iou(ma, mb)[0], {"student": a["mask_png"], "refine": b["mask_png"]}

    def do_find(dataset_id, split_id, start_):
        if not dataset_id or not split_id:
            return {"queue": [], "pos": -1}, gr.update(), error_md("Choose a dataset and a split."), None
        try:
            unlabelled = api.split(int(split_id))["parts"].get("unlabelled", [])
            queue = []
            for item in unlabelled:
                score, masks = disagreement(int(dataset_id), item["id"])
                queue.append({"id": item["id"], "stem": item["stem"], "disagreement": score, "masks": masks})
        except ApiError as err:
            return {"queue": [], "pos": -1}, gr.update(), error_md(err), None
        queue.sort(key=lambda q: -q["disagreement"])
        st = {"queue": queue, "pos": -1, "dataset": int(dataset_id), "split": int(split_id)}
        table = pd.DataFrame([{"image": q["stem"], "1 − Dice(student, SAM)": round(q["disagreement"], 3)}
                              for q in queue])
        if not queue:
            return st, table, "No unlabelled image left in this split.", None
        st, text, value = advance(st, start_)
        return st, table, text, value

    def advance(st, start_):
        queue = st["queue"]
        pos = st["pos"] + 1
        while pos < len(queue) and queue[pos].get("done"):
            pos += 1
        if pos >= len(queue):
            st = {**st, "pos": len(queue)}
            return st, "All candidates of this split are labelled. Find candidates again to refresh.", None
        st = {**st, "pos": pos}
        q = queue[pos]
        rgb = _rgb(api.image_png(st["dataset"], q["id"]))
        if start_.startswith("SAM"):
            mask = overlay.decode_png_mask(q["masks"]["refine"])
        elif start_.startswith("student"):
            mask = overlay.decode_png_mask(q["masks"]["student"])
        else:
            mask = overlay.decode_png_mask(api.mask_png(st["dataset"], q["id"], "pseudo-label"))
        layer = np.zeros((*rgb.shape[:2], 4), np.uint8)
        if mask is not None:
            layer[mask] = (255, 59, 48, 110)
        text = (f"**{q['stem']}** (image #{q['id']}) · candidate {pos + 1} of {len(queue)} · "
                f"1 − Dice(student, SAM) = {q['disagreement']:.3f} · started from {start_}"
                + ("" if mask is not None else " (none stored: empty mask)"))
        return st, text, {"background": rgb, "layers": [layer], "composite": None}

    def do_next(st, start_):
        if not st.get("queue"):
            return st, error_md("Find candidates first."), gr.update()
        try:
            return advance(st, start_)
        except ApiError as err:
            return st, error_md(err), gr.update()

    def do_save(st, value, start_):
        queue, pos = st.get("queue") or [], st.get("pos", -1)
        if not (0 <= pos < len(queue)) or not value:
            return st, error_md("Nothing to save: find candidates first."), gr.update()
        layers = value.get("layers") or []
        bg = np.asarray(value["background"])
        mask = np.zeros(bg.shape[:2], bool)
        for layer in layers:
            layer = np.asarray(layer)
            if layer.ndim == 3 and layer.shape[2] == 4:
                mask |= layer[..., 3] > 0
        q = queue[pos]
        try:
            api.put_mask(st["dataset"], q["id"], overlay.mask_to_png(mask))
            api.move(st["split"], [q["id"]], "labelled")
        except ApiError as err:
            return st, error_md(err), gr.update()
        q["done"] = True
        gr.Info(f"Saved {q['stem']} as ground truth ({int(mask.sum())} px) and moved it to the labelled set.")
        try:
            st, text, value = advance(st, start_)
        except ApiError as err:
            return st, error_md(err), gr.update()
        return st, f"✔ saved **{q['stem']}**.  \n" + text, value

    ds.change(_safe(splits_for), ds, split)
    find.click(do_find, [ds, split, start], [state, candidates, info, editor])
    nxt.click(do_next, [state, start], [state, info, editor])
    save.click(do_save, [state, editor, start], [state, info, editor])
    return ds


# ------------------------------------------------------------------ the app

def build_ui(api_url: str, token: str) -> gr.Blocks:
    api = ApiClient(api_url, token)
    theme = gr.themes.Soft(primary_hue="blue", neutral_hue="slate")
    with gr.Blocks(title="kmine", theme=theme, css=CSS, head=SHORTCUTS, analytics_enabled=False) as ui:
        status = gr.Markdown(elem_id="kmine-status")
        with gr.Tabs():
            with gr.Tab("Predict", id="predict"):
                predict_ds, predict_model = predict_view(api)
            with gr.Tab("Label", id="label"):
                label_ds = label_view(api)
            with gr.Tab("Jobs", id="jobs"):
                jobs_ds, _refresh, _selected, _outputs = jobs_view(api)
            with gr.Tab("Datasets", id="datasets"):
                list_all, table, chosen = datasets_view(api)

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
                    + ("" if n_models else " · no model yet: launch a training in **Jobs**"))
            ds_update = gr.update(choices=datasets, value=first)
            return (head, ds_update, ds_update, ds_update, gr.update(choices=models, value="active"),
                    table_, gr.update(choices=datasets, value=first), gr.update())

        ui.load(on_load, None, [status, predict_ds, label_ds, jobs_ds, predict_model, table, chosen, _selected])
    return ui
