"""Label: the split's unlabelled images (its train images whose masks training does not use,
whether they have one or not), most student/SAM disagreement first; each opens with a start
mask, clicks re-prompt SAM, brushes correct the mask, and saving stores it as the image's label
(a new human version: earlier ones stay) and moves the image to the split's labelled part. An
empty mask is saved only when confirmed; Undo save takes the last save back (the earlier label,
e.g. the imported ground truth, is the label again) and reopens the image."""

from __future__ import annotations

import gradio as gr
import numpy as np

from webui import overlay
from webui.client import ApiClient, ApiError
from webui.views.common import error_md, rgb, safe, splits_update, table
from webui.views.label_edit import (
    ADD,
    CANVAS,
    REMOVE,
    add_click,
    edited_mask,
    editor_value,
    no_prompts,
    render_prompts,
    undo_click,
)

# What a click on the image adds, and what each image starts from (a prediction mode of the
# server's, or the pseudo-label a mining job stored): the view's own interaction choices.
CLICKS = {"+ object point": "fg", "− background point": "bg", "□ box: click two corners": "box"}
START = {"SAM mask (student → SAM)": "refine", "student prediction": "student", "stored pseudo-label": "pseudo"}
# What a saved mask was made from, as the server records it (its ``origin``): the start mask,
# SAM's answer to clicks, or brush strokes.
ORIGIN = {"refine": "sam", "student": "student", "pseudo": "pseudo_label"}
EMPTY = ("The mask is empty: nothing was saved. Tick **save an empty label** to save it as this image's "
         "label (it has no object).")

HOW_TO = ("**How to**: click on the left image to ask SAM again (object points, background "
          "points, or a box by two corners), and/or paint on the right: the **brush** in green adds "
          "to the mask, in red removes from it; the **eraser** takes strokes back. Then save: the "
          "mask becomes the image's label and the image moves to the split's labelled part.  \n"
          "Keys: **S** save · **N** skip to the next image. **Undo save** takes the last save back.")


def queue_table(queue: list[dict]) -> dict:
    return table([{"": "✔" if q.get("done") else "", "image": q["stem"],
                   "disagreement": round(q["disagreement"], 3)} for q in queue])


def end_text(queue: list[dict]) -> str:
    """What the end of the list says: all saved, or how many were skipped."""
    done = sum(1 for x in queue if x.get("done"))
    if done == len(queue):
        return "✔ Every candidate is saved and in the split's labelled part. Train a model on them in **Jobs**."
    return (f"End of the list: {done} of {len(queue)} saved. **Find unlabelled images** again for the "
            "skipped ones, or train on the new labels in **Jobs**.")


def replaced_text(replaced: dict | None) -> str:
    """What a save replaced, as the save message says it."""
    if not replaced:
        return ""
    if replaced["kind"] == "ground_truth":
        return f", replacing the imported ground truth (mask #{replaced['id']}; kept: **Undo save** restores it)"
    return f", replacing the label saved before (mask #{replaced['id']}, kept)"


def restored_text(label: dict | None) -> str:
    """What an image's label is after an undo."""
    if label is None:
        return "it has no label again"
    what = "the imported ground truth" if label["kind"] == "ground_truth" else "the label saved before"
    pixels = "" if label.get("pixels") is None else f", {label['pixels']} px"
    return f"its label is {what} again (mask #{label['id']}{pixels})"


def sam_note(answer: dict, prompts: dict, pixels: int) -> str:
    """SAM's answer in one line: from what, how big, its own IoU estimate, and its timings."""
    t = answer["timings_ms"]
    asked = f"{len(prompts['points'])} point(s)" + (" and a box" if prompts["box"] else "")
    return (f"SAM ({answer['teacher']}) from {asked}: {pixels} px, its own IoU estimate "
            f"{answer['iou_pred']:.2f} · {t['teacher_decode']:.0f} ms decode"
            + (" (encoding cached)" if not answer["teacher_encodes"] else f" + {t['teacher_encode']:.0f} ms encode"))


class LabelView:
    def __init__(self, api: ApiClient):
        self.api = api
        self._layout()
        self._wire()

    def _layout(self):
        self.state = gr.State({"queue": [], "pos": -1})
        self.clicked = gr.State(no_prompts())
        with gr.Row():
            with gr.Column(scale=1, min_width=290):
                self.dataset = gr.Dropdown(label="Dataset", choices=[], elem_id="label-dataset")
                self.split = gr.Dropdown(label="Split", choices=[], elem_id="label-split")
                self.start = gr.Radio(list(START), value="SAM mask (student → SAM)", label="Start each image from",
                                      elem_id="label-start")
                self.find = gr.Button("Find unlabelled images", variant="primary", elem_id="label-find")
                self.candidates = gr.Dataframe(label="To label: student and SAM disagree most first",
                                               interactive=False, elem_id="label-queue", wrap=True)
                gr.Markdown(HOW_TO, elem_classes="kmine-help")
            with gr.Column(scale=4, min_width=640):
                self.info = gr.Markdown("Choose a dataset and a split, then **Find unlabelled images**.",
                                        elem_id="label-info")
                with gr.Row(equal_height=True):
                    with gr.Column(min_width=300):
                        self._prompt_column()
                    with gr.Column(min_width=300):
                        self._editor_column()
                with gr.Row():
                    self.save = gr.Button("Save as ground truth (S)", variant="primary", elem_id="label-save")
                    self.confirm_empty = gr.Checkbox(False, label="save an empty label", elem_id="label-confirm-empty")
                    self.next = gr.Button("Skip to next (N)", elem_id="label-next")
                    self.undo_save = gr.Button("Undo save", elem_id="label-undo-save")
                self.save_note = gr.Markdown(elem_id="label-save-note")

    def _prompt_column(self):
        self.click_mode = gr.Radio(list(CLICKS), value="+ object point", label="A click on this image adds",
                                   elem_id="label-click-mode")
        self.prompt_view = gr.Image(label="Mask (green) and your clicks: click to prompt SAM", type="numpy",
                                    interactive=False, elem_id="label-prompt", height=470,
                                    show_download_button=False, show_fullscreen_button=False)
        with gr.Row():
            self.undo = gr.Button("Undo last click", size="sm", elem_id="label-undo")
            self.clear = gr.Button("Clear clicks", size="sm", elem_id="label-clear")
        self.sam_note = gr.Markdown(elem_id="label-sam-note")

    def _editor_column(self):
        gr.Markdown("**Brush**: green adds to the mask, red removes · **eraser** takes strokes back",
                    elem_classes="kmine-tool-hint")
        self.editor = gr.ImageEditor(show_label=False, type="numpy", elem_id="label-editor", sources=(),
                                     transforms=(), format="png", layers=False, canvas_size=(CANVAS, CANVAS),
                                     brush=gr.Brush(colors=[ADD, REMOVE], default_color=ADD, color_mode="fixed",
                                                    default_size=12),
                                     eraser=gr.Eraser(default_size=16), height=560)

    def _wire(self):
        opened = [self.state, self.info, self.prompt_view, self.editor, self.clicked]  # what opening an image sets
        clicked = [self.clicked, self.prompt_view, self.editor, self.sam_note]
        forget_note = (lambda: "", None, self.sam_note)  # a new image starts without SAM's note on the last one
        self.dataset.change(safe(lambda d: splits_update(self.api, d)), self.dataset, self.split)
        self.find.click(self.do_find, [self.dataset, self.split, self.start],
                        [self.state, self.candidates, *opened[1:]]).then(*forget_note)
        self.prompt_view.select(self.on_click, [self.state, self.clicked, self.click_mode], clicked)
        self.undo.click(self.do_undo, [self.state, self.clicked], clicked)
        self.clear.click(self.do_clear, self.state, [self.clicked, self.prompt_view, self.sam_note])
        self.next.click(self.do_next, [self.state, self.start], opened).then(*forget_note)
        saved = [self.state, self.candidates, *opened[1:], self.save_note, self.confirm_empty]
        self.save.click(self.do_save, [self.state, self.editor, self.start, self.confirm_empty], saved).then(*forget_note)
        self.undo_save.click(self.do_undo_save, self.state, saved).then(*forget_note)

    # ---- the queue ----
    def do_find(self, dataset_id, split_id, start):
        """Ask the server for the ranking (it predicts in batches and caches per model)."""
        empty = ({"queue": [], "pos": -1}, gr.update())
        if not dataset_id or not split_id:
            return *empty, error_md("Choose a dataset and a split (make one in Datasets)."), None, None, no_prompts()
        try:
            ranked = self.api.candidates(int(split_id))
        except ApiError as err:
            return *empty, error_md(err), None, None, no_prompts()
        queue = ranked["items"]
        st = {"queue": queue, "pos": -1, "dataset": int(dataset_id), "split": int(split_id),
              "model": ranked["model_id"]}
        if not queue:
            return st, queue_table(queue), "No unlabelled image left in this split.", None, None, no_prompts()
        st, text, view, edit, prompts = self.advance(st, start)
        return st, queue_table(queue), text, view, edit, prompts

    def advance(self, st: dict, start: str):
        """Open the next image not yet saved; returns (state, info, prompt view, editor, clicks)."""
        queue, pos = st["queue"], st["pos"] + 1
        while pos < len(queue) and queue[pos].get("done"):
            pos += 1
        st["pos"] = min(pos, len(queue))
        if pos >= len(queue):
            st["current"] = None
            return st, end_text(queue), None, None, no_prompts()
        q = queue[pos]
        data = self.api.image_png(st["dataset"], q["id"])
        mask, note = self.start_mask(st, q, data, START[start])
        return self.show(st, data, mask, note, ORIGIN[START[start]])

    def show(self, st: dict, data: bytes, mask, note: str, origin: str | None):
        """Open the queue's image at ``st["pos"]`` (its PNG ``data``) with ``mask`` (None: empty)."""
        queue, pos = st["queue"], st["pos"]
        q = queue[pos]
        image = rgb(data)
        if mask is None:
            mask = np.zeros(image.shape[:2], bool)
        current = st["current"] = {"id": q["id"], "stem": q["stem"], "mask": mask, "rgb": image,
                                   "scale": CANVAS / max(image.shape[:2]), "origin": origin}
        done = sum(1 for x in queue if x.get("done"))
        text = (f"### {q['stem']}\nimage #{q['id']} · candidate {pos + 1} of {len(queue)} · {done} saved · "
                f"disagreement {q['disagreement']:.3f} · started from {note}")
        return st, text, render_prompts(current, no_prompts()), editor_value(current), no_prompts()

    def start_mask(self, st: dict, q: dict, data: bytes, how: str):
        """The mask an image opens with, and where it came from."""
        if how == "pseudo":
            mask = overlay.decode_png_mask(self.api.mask_png(st["dataset"], q["id"], "pseudo-label"))
            return mask, "the stored pseudo-label" if mask is not None else "nothing (no pseudo-label stored yet)"
        answer = self.api.predict(f"image-{q['id']}.png", data, how, st.get("model"))
        who = "SAM prompted by the student" if answer["refined"] else "the student"
        return overlay.decode_png_mask(answer["mask_png"]), f"{who} (model #{answer['model_id']})"

    def do_next(self, st, start):
        if not st.get("queue"):
            return st, error_md("Find unlabelled images first."), gr.update(), gr.update(), no_prompts()
        try:
            return self.advance(st, start)
        except ApiError as err:
            return st, error_md(err), gr.update(), gr.update(), no_prompts()

    def do_save(self, st, value, start, confirm_empty=False):
        """Store the edited mask as the image's label (a new human version), move the image to the
        split's labelled part, open the next. An empty mask needs ``confirm_empty``. Answers
        (state, queue, info, prompt view, editor, clicks, the note beside Save, the confirm box)."""
        current = (st or {}).get("current")
        unchanged = (gr.update(),) * 4
        if not current:
            return st, gr.update(), *unchanged, error_md("Nothing to save: find unlabelled images first."), gr.update()
        mask = edited_mask(value, current["mask"])
        if not mask.any() and not confirm_empty:
            return st, gr.update(), *unchanged, error_md(EMPTY), gr.update()
        origin = "brush" if (mask != current["mask"]).any() else current["origin"]
        try:
            answer = self.api.put_mask(st["dataset"], current["id"], overlay.mask_to_png(mask), origin,
                                       confirm_empty=bool(confirm_empty))
            self.api.move(st["split"], [current["id"]], "labelled")
        except ApiError as err:
            return st, gr.update(), *unchanged, error_md(err), gr.update()
        st["queue"][st["pos"]]["done"] = True
        st.setdefault("saved", []).append(st["pos"])
        saved = (f"✔ Saved **{current['stem']}** ({int(mask.sum())} px) as its label{replaced_text(answer['replaced'])}; "
                 "it is now in the split's labelled part.\n\n")
        try:
            st, text, view, edit, prompts = self.advance(st, start)
        except ApiError as err:
            return st, queue_table(st["queue"]), saved + error_md(err), gr.update(), gr.update(), no_prompts(), "", False
        return st, queue_table(st["queue"]), saved + text, view, edit, prompts, "", False

    def do_undo_save(self, st):
        """Take the last save of this session back: the image returns to the split's unlabelled
        part, its earlier label is the label again (the server keeps the undone version), and
        the image reopens with that label to edit. Answers as :meth:`do_save`."""
        unchanged = (gr.update(),) * 5
        if not (st or {}).get("saved"):
            return st, *unchanged, error_md("Nothing to undo: no image was saved here yet."), gr.update()
        pos = st["saved"][-1]
        q = st["queue"][pos]
        try:
            self.api.move(st["split"], [q["id"]], "unlabelled")  # where it was: a split keeps no unlabelled image there
            try:
                label = self.api.undo_mask(st["dataset"], q["id"])["label"]
            except ApiError:
                self.api.move(st["split"], [q["id"]], "labelled")
                raise
            data = self.api.image_png(st["dataset"], q["id"])
            mask = overlay.decode_png_mask(self.api.mask_png(st["dataset"], q["id"]) if label else None)
        except ApiError as err:
            return st, *unchanged, error_md(err), gr.update()
        st["saved"].pop()
        q["done"] = False
        st["pos"] = pos
        undone = f"↶ Undid the save of **{q['stem']}**: {restored_text(label)}; it is back in the split's unlabelled part."
        origin = (label or {}).get("origin")
        st, text, view, edit, prompts = self.show(st, data, mask, "its label as it is now", origin)
        return st, queue_table(st["queue"]), undone + "\n\n" + text, view, edit, prompts, "", False

    # ---- clicks to SAM ----
    def on_click(self, evt: gr.SelectData, st, prompts, mode):
        current = (st or {}).get("current")
        if not current:
            return prompts, gr.update(), gr.update(), error_md("Find unlabelled images first.")
        x, y = (round(float(v) / current["scale"], 1) for v in evt.index[:2])  # back to image pixels
        kind = CLICKS[mode]
        prompts = add_click(prompts, kind, x, y)
        if kind == "box" and prompts["corner"]:  # half a box: nothing to ask SAM yet
            return (prompts, render_prompts(current, prompts), gr.update(),
                    "First corner set: click the opposite corner of the box.")
        return self.ask_sam(st, prompts)

    def ask_sam(self, st, prompts):
        """SAM's mask for the clicks so far replaces the mask being edited."""
        current = st["current"]
        if not prompts["points"] and not prompts["box"]:
            return prompts, render_prompts(current, prompts), gr.update(), ""
        try:
            answer = self.api.sam(st["dataset"], current["id"], prompts["points"], prompts["labels"], prompts["box"])
        except ApiError as err:
            return prompts, render_prompts(current, prompts), gr.update(), error_md(err)
        current["mask"], current["origin"] = overlay.decode_png_mask(answer["mask_png"]), "sam"
        note = sam_note(answer, prompts, int(current["mask"].sum()))
        return prompts, render_prompts(current, prompts), editor_value(current), note

    def do_undo(self, st, prompts):
        if not (st or {}).get("current"):
            return prompts, gr.update(), gr.update(), ""
        return self.ask_sam(st, undo_click(prompts))

    def do_clear(self, st):
        current = (st or {}).get("current")
        if not current:
            return no_prompts(), gr.update(), ""
        return no_prompts(), render_prompts(current, no_prompts()), "Clicks cleared; the mask is kept."
