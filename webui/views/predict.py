"""Predict: an uploaded (or picked) image through the student alone or student → SAM, drawn as
toggleable layers over the image, with Dice / IoU when a ground truth is given, and timings.
A new image (uploaded, picked or cleared) forgets the last one's ground truth, overlay and
metrics: a ground truth is scored only against the image it belongs to."""

from __future__ import annotations

import io

import gradio as gr
from PIL import Image

from webui import overlay
from webui.client import ApiClient, ApiError
from webui.views.common import choice_id, error_md, fmt, png_bytes, preferred, rgb, safe

# How the view names the server's modes; one it does not know shows by its own name.
MODE_LABELS = {"student": "Student", "refine": "Student → SAM (vote)", "sam": "Student → SAM's own mask"}
MODEL_DEFAULT = "model default"  # no prompt kinds sent: the model's own settings

LEGEND = ("<div class='kmine-legend'>"
          f"<span style='background:rgb{overlay.STUDENT}'>student</span>"
          f"<span style='background:rgb{overlay.SAM}'>SAM</span>"
          f"<span style='background:rgb{overlay.TRUTH}'>ground truth</span>"
          f"<span style='background:rgb{overlay.POINT}'>● point</span>"
          "<span style='background:#eee'>□ box</span></div>")


def mode_choices(options: dict) -> list[tuple[str, str]]:
    return [(MODE_LABELS.get(m, m), m) for m in options.get("modes", [])]


def kinds_choices(options: dict) -> list[str]:
    return [MODEL_DEFAULT, *options.get("prompt_kinds", [])]


class PredictView:
    def __init__(self, api: ApiClient, options: dict):
        self.api = api
        self._layout(options)
        self._wire()

    def _layout(self, options: dict):
        self.state = gr.State({})
        self.picked = gr.State(None)  # (filename, bytes) when the image came from a dataset
        modes = [m for _, m in mode_choices(options)]
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                self.image = gr.Image(label="Image (upload, or pick one from a dataset below)", type="numpy",
                                      sources=["upload", "clipboard"], elem_id="predict-image", height=260)
                self.truth = gr.Image(label="Ground-truth mask (optional: adds Dice and IoU)", type="pil",
                                      image_mode="L", sources=["upload"], elem_id="predict-truth", height=160)
                with gr.Accordion("Pick from a dataset", open=False):
                    self.dataset = gr.Dropdown(label="Dataset", choices=[], elem_id="predict-dataset")
                    self.pick = gr.Dropdown(label="Image", choices=[], elem_id="predict-pick")
                self.model = gr.Dropdown(label="Model", choices=[("active model", "active")], value="active",
                                         elem_id="predict-model")
                self.mode = gr.Radio(mode_choices(options), value=preferred(modes, "refine"), label="Mode",
                                     elem_id="predict-mode")
                self.kinds = gr.Dropdown(kinds_choices(options), value=MODEL_DEFAULT, label="Prompt kinds (SAM)")
                self.run = gr.Button("Predict", variant="primary", elem_id="predict-run")
                self.message = gr.Markdown(elem_id="predict-message")
            with gr.Column(scale=3, min_width=420):
                with gr.Row():
                    self.toggles = [gr.Checkbox(True, label="Student mask", elem_id="show-student"),
                                    gr.Checkbox(True, label="Prompts (points, box)", elem_id="show-prompts"),
                                    gr.Checkbox(True, label="SAM mask", elem_id="show-sam"),
                                    gr.Checkbox(False, label="Ground truth", elem_id="show-truth")]
                gr.HTML(LEGEND)
                self.shown = gr.Image(label="Overlay", type="pil", interactive=False, elem_id="predict-overlay",
                                      height=520)
                self.metrics = gr.Markdown(elem_id="predict-metrics")

    def _wire(self):
        show_truth = self.toggles[3]
        self.dataset.change(safe(self.images_of), self.dataset, self.pick)
        forgotten = [self.truth, self.state, self.shown, self.metrics]  # what belongs to the last image
        self.pick.change(safe(self.load_picked, 6), [self.dataset, self.pick], [self.image, self.picked, *forgotten])
        for event in (self.image.upload, self.image.clear):  # an upload replaces a picked image
            event(forget, None, [self.pick, self.picked, *forgotten, show_truth])
        self.truth.change(lambda t: gr.update(value=t is not None), self.truth, show_truth)
        self.run.click(self.predict, [self.image, self.truth, self.picked, self.model, self.mode, self.kinds,
                                      *self.toggles], [self.state, self.shown, self.metrics, self.message])
        for t in self.toggles:
            t.change(draw, [self.state, *self.toggles], self.shown)

    # the server's options, when they could only be read after the UI was built
    def option_fields(self) -> list:
        return [self.mode, self.kinds]

    def option_updates(self, options: dict) -> list:
        modes = [m for _, m in mode_choices(options)]
        return [gr.update(choices=mode_choices(options), value=preferred(modes, "refine")),
                gr.update(choices=kinds_choices(options), value=MODEL_DEFAULT)]

    # ---- handlers ----
    def images_of(self, dataset_id):
        if not dataset_id:
            return gr.update(choices=[], value=None)
        items = self.api.images(int(dataset_id))["items"]
        return gr.update(choices=[(f"{i['stem']}{'' if i['annotated'] else ' (no mask)'}", i["id"]) for i in items],
                         value=None)

    def load_picked(self, dataset_id, image_id):
        """A dataset image into the inputs, with its own ground truth (when it has one) in place
        of the last image's, and no overlay or metrics of the last image. Answers (image,
        picked, ground truth, result, overlay, metrics)."""
        if not dataset_id or not image_id:
            return gr.update(), None, *(gr.update(),) * 4
        data = self.api.image_png(int(dataset_id), int(image_id))
        gt = self.api.mask_png(int(dataset_id), int(image_id), "mask")
        truth = Image.open(io.BytesIO(gt)).convert("L") if gt else None
        return rgb(data), (f"image-{image_id}.png", data), truth, {}, None, ""

    def predict(self, image, truth, picked, model, mode, kinds, *toggles):
        """(result, overlay, metrics, the note under the button: an error, else nothing)."""
        if image is None:
            return {}, None, "", error_md("Upload an image (or pick one from a dataset) first.")
        try:
            result = self.ask(image, truth, picked, choice_id(model), mode, None if kinds == MODEL_DEFAULT else kinds)
        except ApiError as err:
            return {}, None, "", error_md(err)
        return result, draw(result, *toggles), metrics_md(result), ""

    def ask(self, image, truth, picked, model_id, mode, prompts) -> dict:
        """The student's answer, and the one with SAM prompted by it in the other modes, as the view keeps them.
        A picked image is sent as the dataset's bytes, not re-encoded from the display."""
        name, data = picked if picked else ("upload.png", png_bytes(image))
        h, w = image.shape[:2]
        truth_mask = overlay.as_mask(truth, (w, h))
        truth_png = overlay.mask_to_png(truth_mask) if truth_mask is not None else None
        student = self.api.predict(name, data, "student", model_id, None, truth_png)
        result = {"image": image, "truth": truth_mask, "student": student["mask_png"], "prompts": [],
                  "answers": {"student": student}}
        if mode != "student":  # the same model as the student's answer, even if the active one changed
            refined = self.api.predict(name, data, mode, model_id or student["model_id"], prompts, truth_png)
            result.update(sam=refined["mask_png"], prompts=refined["prompts"])
            result["answers"][mode] = refined
        return result


NEW_IMAGE_HINT = "New image: add its ground-truth mask (optional) for Dice and IoU, then press Predict."


def forget():
    """A new image from the user: no picked dataset image, and none of the last image's ground
    truth, result, overlay or metrics; the hint says so (and tells a test the forgetting is done,
    so a mask uploaded next is kept). Answers (pick, picked, ground truth, result, overlay, metrics,
    the ground-truth layer's switch)."""
    return None, None, None, {}, None, NEW_IMAGE_HINT, False


def draw(result: dict, show_student: bool, show_prompts: bool, show_sam: bool, show_truth: bool):
    """The overlay of the layers switched on."""
    if not result:
        return None
    layers = [(result["truth"] if show_truth else None, overlay.TRUTH, 0.25),
              (overlay.decode_png_mask(result["student"]) if show_student else None, overlay.STUDENT, 0.35),
              (overlay.decode_png_mask(result.get("sam")) if show_sam else None, overlay.SAM, 0.35)]
    return overlay.render_large(result["image"], layers, result["prompts"] if show_prompts else None)


def metrics_md(result: dict) -> str:
    """One column per answer: Dice and IoU (with a ground truth), then every timing."""
    answers = result["answers"]
    cols = [(MODE_LABELS.get(mode, mode), answers[mode]) for mode in answers]
    head = "| | " + " | ".join(n for n, _ in cols) + " |\n|---|" + "---:|" * len(cols) + "\n"
    rows = ""
    if result["truth"] is not None:
        rows += "| **Dice** | " + " | ".join(fmt(a.get("dice")) for _, a in cols) + " |\n"
        rows += "| **IoU** | " + " | ".join(fmt(a.get("iou")) for _, a in cols) + " |\n"
    for k in sorted({k for _, a in cols for k in (a.get("timings_ms") or {})}):
        rows += (f"| {k.replace('_', ' ')} (ms) | "
                 + " | ".join(fmt((a.get("timings_ms") or {}).get(k), 0) for _, a in cols) + " |\n")
    if any(a.get("teacher_encodes") is not None for _, a in cols):  # a count, not a time
        rows += "| SAM encodings run | " + " | ".join(fmt(a.get("teacher_encodes"), 0) for _, a in cols) + " |\n"
    a = cols[-1][1]
    note = (f"Model #{a['model_id']} · {a['width']}×{a['height']} px"
            + (f" · prompts: {a['prompt_kinds']}" if a["mode"] != "student" else ""))
    if result["truth"] is None:
        note += " · add a ground-truth mask to see Dice and IoU"
    return head + rows + "\n" + note
