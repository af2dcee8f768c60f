"""Datasets: the list with its counts, a zip upload, making a split of one, and exporting its labels."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr

from webui.client import ApiClient, ApiError
from webui.views.common import dataset_choices, error_md, model_label, preferred, table

UPLOAD_HELP = ("### Upload a dataset\nA zip with `images/` and `masks/` whose files share stems "
               "(PNG, JPEG, TIFF, BMP; mask foreground ≥ 128). Images with a mask are *annotated*; images "
               "without one are *unannotated*, and a split can put them only in its unlabelled part.")
EXPORT_HELP = ("### Export labels\nEach annotated image's current label: `masks` is a zip of `masks/<stem>.png` "
               "(0/255) with `labels.json` (kind, origin, version, who saved it); `coco` is one COCO JSON file.")
EXPORTS = Path(tempfile.gettempdir()) / "kmine-ui-exports"  # one folder per download, below this
KEEP_EXPORTS_S = 3600  # a download's folder outlives the page's fetch of it, then goes


class DatasetsView:
    def __init__(self, api: ApiClient, options: dict):
        self.api = api
        self._layout(options)
        self._wire()

    def _layout(self, options: dict):
        with gr.Row():
            with gr.Column(scale=3):
                self.table = gr.Dataframe(label="Datasets", interactive=False, elem_id="datasets-table", wrap=True)
                with gr.Row():
                    self.refresh = gr.Button("Refresh", size="sm", elem_id="datasets-refresh", scale=0)
                    self.refresh_message = gr.Markdown(elem_id="datasets-refresh-message")
                self.chosen = gr.Dropdown(label="Dataset", choices=[], elem_id="datasets-choice")
                with gr.Row(equal_height=True):
                    self.model = gr.Dropdown(label="Its models (prediction and labelling use the active one)",
                                             choices=[], elem_id="datasets-model", scale=3)
                    self.activate = gr.Button("Make active", elem_id="model-activate", scale=1)
                self.model_message = gr.Markdown(elem_id="model-message")
                self.splits = gr.Dataframe(label="Splits of this dataset (train = labelled + unlabelled: "
                                                 "training uses the masks of the labelled part only)",
                                           interactive=False, elem_id="splits-table")
            with gr.Column(scale=2):
                gr.Markdown(UPLOAD_HELP)
                self.name = gr.Textbox(label="Name", elem_id="upload-name")
                self.archive = gr.File(label="Zip", file_types=[".zip"], type="filepath", elem_id="upload-zip")
                self.upload = gr.Button("Upload", variant="primary", elem_id="upload-run")
                self.upload_message = gr.Markdown(elem_id="upload-message")
                gr.Markdown("### Make a split")
                with gr.Row():
                    val = gr.Number(0.1, label="Validation fraction", minimum=0, maximum=0.9, step=0.05)
                    test = gr.Number(0.1, label="Test fraction", minimum=0, maximum=0.9, step=0.05)
                with gr.Row():
                    labelled = gr.Number(0.5, label="Labelled fraction of train (masks used)", minimum=0.01,
                                         maximum=1, step=0.05)
                    seed = gr.Number(0, label="Seed", precision=0, minimum=0)
                self.split_inputs = [val, test, labelled, seed]
                self.make = gr.Button("Make split", elem_id="split-run")
                self.split_message = gr.Markdown(elem_id="split-message")
                gr.Markdown(EXPORT_HELP)
                with gr.Row():
                    self.export_format = gr.Radio(label="Format", elem_id="export-format",
                                                  **format_choices(options))
                    self.export_images = gr.Checkbox(False, label="Include the images (masks zip)",
                                                     elem_id="export-images")
                self.export = gr.Button("Export labels", elem_id="export-run")
                self.exported = gr.File(label="Exported labels", interactive=False, elem_id="export-file")
                self.message = gr.Markdown(elem_id="datasets-message")

    def _wire(self):
        """``changes``: the events after which the app reads the server's lists again."""
        refreshed = self.refresh.click(lambda: "", None, self.refresh_message)
        self.chosen.change(self.show_dataset, self.chosen, [self.splits, self.model, self.model_message])
        uploaded = self.upload.click(self.do_upload, [self.name, self.archive], [self.chosen, self.upload_message])
        split = self.make.click(self.do_split, [self.chosen, *self.split_inputs], [self.splits, self.split_message])
        activated = self.activate.click(self.do_activate, [self.chosen, self.model], [self.model, self.model_message])
        self.changes = [refreshed, uploaded, split, activated]
        self.export.click(self.do_export, [self.chosen, self.export_format, self.export_images],
                          [self.exported, self.message])

    def option_fields(self) -> list:
        return [self.export_format]

    def option_updates(self, options: dict) -> list:
        return [gr.update(**format_choices(options))]

    # ---- handlers ----
    def show_dataset(self, dataset_id):
        """The chosen dataset's splits and models (its active one chosen); an error beside them."""
        try:
            return self.show_splits(dataset_id), self.models_of(dataset_id), ""
        except ApiError as err:
            return gr.update(), gr.update(), error_md(err)

    def models_of(self, dataset_id):
        """The model dropdown: the dataset's models, newest first, its active one chosen."""
        models = self.api.models(int(dataset_id)) if dataset_id else []
        active = next((m["id"] for m in models if m["active"]), None)
        return gr.update(choices=[(model_label(m), m["id"]) for m in reversed(models)], value=active)

    def do_activate(self, dataset_id, model_id):
        """Make the chosen model its dataset's active one; say so beside the button."""
        if not dataset_id or not model_id:
            return gr.update(), error_md("Choose a dataset and one of its models first.")
        try:
            model = self.api.activate_model(int(model_id))
            models = self.models_of(dataset_id)
        except ApiError as err:
            return gr.update(), error_md(err)
        return models, f"Model {model_label(model)} is now the active model of its dataset."

    def show_splits(self, dataset_id):
        if not dataset_id:
            return table([])
        rows = []
        for s in self.api.splits(int(dataset_id)):
            counts = self.api.split(s["id"])["counts"]
            fractions = {f"{part} fraction": v for part, v in (s["fractions"] or {}).items()}
            rows.append({"split": s["id"], "seed": s["seed"], **fractions, **counts,  # images per part
                         "created": str(s["created_at"])[:19]})
        return table(rows)

    def do_upload(self, name, path):
        """Import the zip; the new dataset is chosen (the app then refreshes every list)."""
        if not path:
            return gr.update(), error_md("Choose a zip file first.")
        try:
            d = self.api.upload_dataset(name or Path(path).stem, Path(path).name, Path(path).read_bytes())
            choices = dataset_choices(self.api)
        except ApiError as err:
            return gr.update(), error_md(err)
        return gr.update(choices=choices, value=d["id"]), upload_md(d)

    def do_split(self, dataset_id, val, test, labelled, seed):
        if not dataset_id:
            return gr.update(), error_md("Choose a dataset first.")
        try:
            sp = self.api.create_split(int(dataset_id), val_fraction=val, test_fraction=test,
                                       labelled_fraction=labelled, seed=int(seed or 0))
            splits = self.show_splits(dataset_id)
        except ApiError as err:
            return gr.update(), error_md(err)
        return splits, f"Made split #{sp['id']}: " + counts_text(sp["counts"])

    def do_export(self, dataset_id, fmt, include_images):
        """The chosen dataset's labels as a file to download, and what it holds."""
        if not dataset_id or not fmt:
            return None, error_md("Choose a dataset and a format first.")
        try:
            path = self.api.export_labels(int(dataset_id), fmt, export_folder(), bool(include_images))
            counts = self.api.dataset(int(dataset_id))["counts"]
        except ApiError as err:
            return None, error_md(err)
        return str(path), (f"Exported the labels of {counts['annotated']} of {counts['images']} images as {fmt}: "
                           f"{path.name} ({path.stat().st_size / 1e6:.1f} MB).")


def dataset_rows(datasets: list[dict], models: list[dict]) -> dict:
    """The datasets table: counts, and the active model with its Dice."""
    by_id = {m["id"]: m for m in models}
    rows = [{"id": d["id"], "name": d["name"], **flat_counts(d["counts"]),
             "active model": active_text(by_id.get(d["active_model_id"]))} for d in datasets]
    return table(rows)


def active_text(model: dict | None) -> str:
    if model is None:
        return "–"
    dice = (model.get("metrics") or {}).get("val_dice")
    return f"#{model['id']}" + (f" (Dice {dice:.3f})" if dice is not None else "")


def format_choices(options: dict) -> dict:
    """The Format field's choices: the server's export formats (masks first when offered)."""
    formats = options.get("export_formats", [])
    return {"choices": formats, "value": preferred(formats, "masks")}


def export_folder() -> Path:
    """A new folder for one download (two people exporting at once never share a file); the
    folders of downloads over an hour old are removed first."""
    EXPORTS.mkdir(parents=True, exist_ok=True)
    for old in EXPORTS.iterdir():
        if time.time() - old.stat().st_mtime > KEEP_EXPORTS_S:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=EXPORTS))


def flat_counts(counts: dict) -> dict:
    """A dataset's counts as table cells: a nested count (e.g. masks by kind) as one text."""
    return {k: (", ".join(f"{n} {kind}" for kind, n in v.items()) if isinstance(v, dict) else v)
            for k, v in counts.items()}


def counts_text(counts: dict) -> str:
    """Counts in words; a nested count (masks by kind) as "12 ground_truth masks", never a dict."""
    return ", ".join(f"{v} {k}" for k, v in flat_counts(counts).items())


def upload_md(d: dict) -> str:
    """What an upload imported, and the first files it ignored."""
    msg = f"Imported **{d['name']}** (#{d['id']}): " + counts_text(d["counts"])
    ignored = d.get("ignored") or []
    if ignored:
        msg += f"<br>Ignored {len(ignored)} file(s): " + "; ".join(map(str, ignored[:8]))
    return msg
