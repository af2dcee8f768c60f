"""Label: the split's unlabelled images (its train images whose masks training does not use,
whether they have one or not), most student/SAM disagreement first; each opens on a canvas
drawn in the browser (:mod:`webui.views.label_canvas`) with a start mask; boxes and points
re-prompt SAM, brushes correct the mask, and saving stores the mask on the canvas as the image's
label (a new human version: earlier ones stay) and moves the image to the split's labelled
part. An empty mask is saved only when confirmed; Undo save takes the last save back (the
earlier label, e.g. the imported ground truth, is the label again) and reopens the image."""

from __future__ import annotations

import json

import gradio as gr
import numpy as np

from webui import overlay
from webui.client import ApiClient, ApiError
from webui.views.common import error_md, rgb, safe, splits_update, table
from webui.views.label_canvas import MARKUP, open_payload, read_json, sam_request, saved_mask

# What each image starts from (a prediction mode of the server's, or the pseudo-label a mining
# job stored): the view's own choice.
START = {"SAM mask (student → SAM)": "refine", "student prediction": "student", "stored pseudo-label": "pseudo"}
# What a saved mask was made from, as the server records it (its ``origin``): the start mask,
# SAM's answer to clicks, or brush strokes.
ORIGIN = {"refine": "sam", "student": "student", "pseudo": "pseudo_label"}
EMPTY = ("The mask is empty: nothing was saved. Tick <b>save an empty label</b> to save it as this image's "
         "label (it has no object).")  # HTML: the error's own markup keeps markdown from being read

HOW_TO = ("**How to**: on the image, drag a box around the object (several boxes: several objects), "
          "click object points (+) and background points (×) to correct SAM, or paint with the brush "
          "(adds) and the eraser (removes). Ctrl+Z undoes the last click or stroke. Then save: the mask "
          "on the canvas becomes the image's label and the image moves to the split's labelled part. "
          "**Undo save** takes the last save back. The keys are listed under the canvas.")

# The page's side of the hidden channels: the prompts to ask SAM for, the canvas's answer, the
# mask to save (each event's ``js`` runs first and hands the canvas's value to Python).
ASK_JS = "(st, req) => [st, window.kmineLabel.request()]"
ANSWER_JS = "(a) => { window.kmineLabel.answer(a); }"
LOAD_JS = "(v) => { window.kmineLabel.load(v); }"
SAVE_JS = "(st, mask, start, confirm) => [st, window.kmineLabel.maskPayload(), start, confirm]"


def queue_table(st: dict) -> dict:
    """The candidates, each marked: ▶ open now, ✔ saved, ↷ skipped (opened, left unsaved)."""
    queue, pos = st.get("queue") or [], st.get("pos", -1)
    return table([{"": "▶" if i == pos else "✔" if q.get("done") else "↷" if q.get("skipped") else "",
                   "image": q["stem"], "disagreement": round(q["disagreement"], 3)} for i, q in enumerate(queue)])


def open_at(st: dict, pos: int) -> None:
    """Move the queue's cursor to ``pos``, marking the image left unsaved as skipped."""
    queue, here = st["queue"], st.get("pos", -1)
    if 0 <= here < len(queue) and here != pos and not queue[here].get("done"):
        queue[here]["skipped"] = True
    st["pos"] = pos


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


def sam_note(answer: dict, body: dict) -> str:
    """SAM's answer in one line: from what, how big, its own IoU estimate, and its timings."""
    t = answer["timings_ms"]
    asked = (f"{len(body['boxes'])} box(es), {sum(body['point_labels'])} object and "
             f"{len(body['point_labels']) - sum(body['point_labels'])} background point(s)")
    reused = " · from the previous answer" if answer["reused_logits"] else ""
    return (f"SAM ({answer['teacher']}) from {asked}: {answer['pixels']} px, its own IoU estimate "
            f"{answer['iou_pred']:.2f} · {t['teacher_decode']:.0f} ms decode"
            + (" (encoding cached)" if not answer["teacher_encodes"] else f" + {t['teacher_encode']:.0f} ms encode")
            + reused)


class LabelView:
    def __init__(self, api: ApiClient):
        self.api = api
        self._layout()
        self._wire()

    def _layout(self):
        self.state = gr.State({"queue": [], "pos": -1})
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
                gr.HTML(MARKUP, elem_id="label-canvas")
                self.sam_note = gr.Markdown(elem_id="label-sam-note")
                with gr.Row():
                    self.save = gr.Button("Save label (S)", variant="primary", elem_id="label-save")
                    self.confirm_empty = gr.Checkbox(False, label="save an empty label", elem_id="label-confirm-empty")
                    self.prev = gr.Button("← Previous", elem_id="label-prev")
                    self.next = gr.Button("Skip to next (N)", elem_id="label-next")
                    self.undo_save = gr.Button("Undo save", elem_id="label-undo-save")
                self.save_note = gr.Markdown(elem_id="label-save-note")
        self._channels()

    def _channels(self):
        """The hidden fields the canvas and Python talk through (JSON text; not rendered, so an
        image's data URL never sits in the page's DOM). The ask button is rendered but hidden:
        the canvas's script clicks it."""
        hidden = {"visible": False}
        self.load = gr.Textbox(elem_id="label-load", **hidden)
        self.ask_body = gr.Textbox(elem_id="label-ask-body", **hidden)
        self.answer = gr.Textbox(elem_id="label-answer", **hidden)
        self.mask = gr.Textbox(elem_id="label-mask", **hidden)
        self.ask = gr.Button("ask SAM", elem_id="label-ask", elem_classes=["kmine-hidden"])

    def _wire(self):
        opened = [self.state, self.info, self.load]  # what opening an image sets
        fresh = {"fn": None, "inputs": self.load, "outputs": None, "js": LOAD_JS}  # the canvas opens it
        quiet = {"show_progress": "hidden"}
        self.dataset.change(safe(lambda d: splits_update(self.api, d)), self.dataset, self.split)
        self.find.click(self.do_find, [self.dataset, self.split, self.start],
                        [self.state, self.candidates, *opened[1:], self.sam_note, self.save_note]).then(**fresh)
        self.ask.click(self.on_ask, [self.state, self.ask_body], [self.answer, self.sam_note], js=ASK_JS,
                       queue=False, **quiet).then(None, self.answer, None, js=ANSWER_JS, queue=False)
        moved = [*opened, self.sam_note, self.candidates]
        self.next.click(self.do_next, [self.state, self.start], moved).then(**fresh)
        self.prev.click(self.do_prev, [self.state, self.start], moved).then(**fresh)
        self.candidates.select(self.do_pick, [self.state, self.start], moved).then(**fresh)
        saved = [self.state, self.candidates, *opened[1:], self.save_note, self.confirm_empty, self.sam_note]
        self.save.click(self.do_save, [self.state, self.mask, self.start, self.confirm_empty], saved,
                        js=SAVE_JS).then(**fresh)
        self.undo_save.click(self.do_undo_save, self.state, saved).then(**fresh)

    # ---- the queue ----
    def do_find(self, dataset_id, split_id, start):
        """Ask the server for the ranking (it predicts in batches and caches per model). Answers
        (state, queue, info, canvas payload, SAM's note, the note beside Save)."""
        empty = ({"queue": [], "pos": -1}, gr.update())
        if not dataset_id or not split_id:
            return *empty, error_md("Choose a dataset and a split (make one in Datasets)."), "", "", ""
        try:
            ranked = self.api.candidates(int(split_id))
        except ApiError as err:
            return *empty, error_md(err), "", "", ""
        queue = ranked["items"]
        st = {"queue": queue, "pos": -1, "dataset": int(dataset_id), "split": int(split_id),
              "model": ranked["model_id"]}
        if not queue:
            return st, queue_table(st), "No unlabelled image left in this split.", "", "", ""
        st, text, payload = self.advance(st, start)
        return st, queue_table(st), text, payload, "", ""

    def advance(self, st: dict, start: str, step: int = 1):
        """Open the next (``step`` −1: the previous) image not yet saved; returns (state, info,
        canvas payload)."""
        queue, pos = st["queue"], st["pos"] + step
        while 0 <= pos < len(queue) and queue[pos].get("done"):
            pos += step
        if pos < 0:
            return st, error_md("This is the first unsaved candidate."), gr.update()
        open_at(st, min(pos, len(queue)))
        if pos >= len(queue):
            st["current"] = None
            return st, end_text(queue), ""
        return self.open_current(st, start)

    def open_current(self, st: dict, start: str):
        """Open the candidate at ``st["pos"]`` with its start mask; (state, info, canvas payload)."""
        q = st["queue"][st["pos"]]
        data = self.api.image_png(st["dataset"], q["id"])
        mask, note = self.start_mask(st, q, data, START[start])
        return self.show(st, data, mask, note, ORIGIN[START[start]])

    def show(self, st: dict, data: bytes, mask, note: str, origin: str | None):
        """Open the queue's image at ``st["pos"]`` (its PNG ``data``) with ``mask`` (None: empty)."""
        queue, pos = st["queue"], st["pos"]
        q = queue[pos]
        shape = rgb(data).shape[:2]
        if mask is None:
            mask = np.zeros(shape, bool)
        st["current"] = {"id": q["id"], "stem": q["stem"], "mask": mask, "shape": shape, "origin": origin}
        done = sum(1 for x in queue if x.get("done"))
        text = (f"### {q['stem']}\nimage #{q['id']} · candidate {pos + 1} of {len(queue)} · {done} saved · "
                f"disagreement {q['disagreement']:.3f} · started from {note}")
        return st, text, open_payload(q["id"], data, mask)

    def start_mask(self, st: dict, q: dict, data: bytes, how: str):
        """The mask an image opens with, and where it came from."""
        if how == "pseudo":
            mask = overlay.decode_png_mask(self.api.mask_png(st["dataset"], q["id"], "pseudo-label"))
            return mask, "the stored pseudo-label" if mask is not None else "nothing (no pseudo-label stored yet)"
        answer = self.api.predict(f"image-{q['id']}.png", data, how, st.get("model"))
        who = "SAM prompted by the student" if answer["refined"] else "the student"
        return overlay.decode_png_mask(answer["mask_png"]), f"{who} (model #{answer['model_id']})"

    def do_next(self, st, start, step: int = 1):
        """Open the next (``step`` −1: previous) unsaved candidate. Answers (state, info, canvas
        payload, SAM's note, the queue)."""
        if not st.get("queue"):
            return st, error_md("Find unlabelled images first."), gr.update(), "", gr.update()
        try:
            return *self.advance(st, start, step), "", queue_table(st)
        except ApiError as err:
            return st, error_md(err), gr.update(), "", gr.update()

    def do_prev(self, st, start):
        return self.do_next(st, start, -1)

    def do_pick(self, st, start, evt: gr.SelectData):
        """Open the candidate whose row was clicked (a saved one too: to look at it again).
        Answers as :meth:`do_next`."""
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if not st.get("queue") or not isinstance(row, int) or not 0 <= row < len(st["queue"]):
            return st, gr.update(), gr.update(), "", gr.update()
        here = st.get("pos", -1)
        try:
            open_at(st, row)
            st, text, payload = self.open_current(st, start)
        except ApiError as err:
            st["pos"] = here
            return st, error_md(err), gr.update(), "", queue_table(st)
        return st, text, payload, "", queue_table(st)

    def do_save(self, st, canvas, start, confirm_empty=False):
        """Store the mask on the canvas (``canvas``: its JSON payload; none: the start mask) as the
        image's label (a new human version), move the image to the split's labelled part, open
        the next. An empty mask needs ``confirm_empty``. Answers (state, queue, info, canvas
        payload, the note beside Save, the confirm box, SAM's note)."""
        current = (st or {}).get("current")
        unchanged = (gr.update(),) * 3
        if not current:
            return st, *unchanged, error_md("Nothing to save: find unlabelled images first."), gr.update(), gr.update()
        mask, origin = self.canvas_mask(current, read_json(canvas))
        if mask is None:
            return st, *unchanged, error_md("The canvas sent no mask for this image: nothing was saved."), *unchanged[:2]
        if not mask.any() and not confirm_empty:
            return st, *unchanged, error_md(EMPTY), *unchanged[:2]
        try:
            answer = self.api.put_mask(st["dataset"], current["id"], overlay.mask_to_png(mask), origin,
                                       confirm_empty=bool(confirm_empty))
            self.api.move(st["split"], [current["id"]], "labelled")
        except ApiError as err:
            return st, *unchanged, error_md(err), *unchanged[:2]
        st["queue"][st["pos"]]["done"] = True
        st.setdefault("saved", []).append(st["pos"])
        saved = (f"✔ Saved **{current['stem']}** ({int(mask.sum())} px) as its label{replaced_text(answer['replaced'])}; "
                 "it is now in the split's labelled part.\n\n")
        try:
            st, text, payload = self.advance(st, start)
        except ApiError as err:
            return st, queue_table(st), saved + error_md(err), gr.update(), "", False, ""
        return st, queue_table(st), saved + text, payload, "", False, ""

    @staticmethod
    def canvas_mask(current: dict, payload: dict) -> tuple[np.ndarray | None, str | None]:
        """The mask to save and what it was made from: the canvas's, when it sent one for this
        image, else the start mask (no canvas: e.g. a client that never drew)."""
        if not payload:
            return current["mask"], current["origin"]
        if payload.get("image_id") != current["id"]:
            return None, None
        origin = payload.get("origin") if payload.get("origin") in ("brush", "sam") else current["origin"]
        return saved_mask(payload, current["shape"]), origin

    def do_undo_save(self, st):
        """Take the last save of this session back: the image returns to the split's unlabelled
        part, its earlier label is the label again (the server keeps the undone version), and
        the image reopens with that label to edit. Answers as :meth:`do_save`."""
        unchanged = (gr.update(),) * 3
        if not (st or {}).get("saved"):
            return st, *unchanged, error_md("Nothing to undo: no image was saved here yet."), gr.update(), gr.update()
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
            return st, *unchanged, error_md(err), gr.update(), gr.update()
        st["saved"].pop()
        q["done"] = False
        st["pos"] = pos
        undone = f"↶ Undid the save of **{q['stem']}**: {restored_text(label)}; it is back in the split's unlabelled part."
        origin = (label or {}).get("origin")
        st, text, payload = self.show(st, data, mask, "its label as it is now", origin)
        return st, queue_table(st), undone + "\n\n" + text, payload, "", False, ""

    # ---- the canvas's prompts to SAM ----
    def on_ask(self, st, body):
        """SAM's mask for the canvas's prompts (JSON ``body``), as JSON for the canvas (the
        mask as a 1-bit PNG data URL, the token a next click refines from), and SAM's note."""
        current, asked = (st or {}).get("current"), read_json(body)
        seq = asked.get("seq")
        if not current or asked.get("image_id") != current["id"]:
            return json.dumps({"seq": seq, "error": "This image is no longer open."}), gr.update()
        request = sam_request(asked)
        try:
            answer = self.api.sam_mask(st["dataset"], current["id"], request)
        except ApiError as err:
            return json.dumps({"seq": seq, "error": str(err)}), error_md(err)
        note = sam_note(answer, request)
        return json.dumps({"seq": seq, "mask": "data:image/png;base64," + answer["mask_png"],
                           "token": answer["logits_token"], "pixels": answer["pixels"], "note": note}), note
