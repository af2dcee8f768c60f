"""Export labels from the Datasets tab, against the real API (the server app in-process, the
COVID-QU-Ex sample): the format choice is the server's list, the download is the file the API
serves (a zip of the labels, or COCO JSON), and a missing choice or an unknown dataset is a
plain message."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio")
from test_webui_label import by_id, fire  # noqa: E402

from service_fixtures import covid_zip  # noqa: E402


@pytest.fixture(scope="module")
def ui_and_dataset(api):
    from webui.app import compose

    d = api.upload_dataset("to export", "c.zip", covid_zip("export"))
    return compose(api), d


def test_export_downloads_the_labels_in_the_chosen_format(api, ui_and_dataset):
    ui, d = ui_and_dataset
    ds, images = d["id"], api.images(d["id"])["items"]
    radio = by_id(ui, "export-format")
    assert list(radio.choices) == [("masks", "masks"), ("coco", "coco")] and radio.value == "masks"

    out = fire(ui, "export-run", "click", ds, "masks", False)
    path = Path(out["export-file"])
    assert path.name == f"kmine-dataset-{ds}-masks.zip"
    assert f"{d['counts']['annotated']} of {d['counts']['images']} images as masks" in out["datasets-message"]
    z = zipfile.ZipFile(path)
    labels = json.loads(z.read("labels.json"))["labels"]
    assert len(labels) == d["counts"]["annotated"]
    first = images[0]
    served = np.asarray(Image.open(io.BytesIO(api.mask_png(ds, first["id"]))))
    assert (np.asarray(Image.open(io.BytesIO(z.read(f"masks/{first['stem']}.png")))) == served).all()

    out = fire(ui, "export-run", "click", ds, "coco", True)  # the images box means nothing for COCO
    coco = json.loads(Path(out["export-file"]).read_text())
    assert len(coco["images"]) == len(images) and len(coco["annotations"]) == d["counts"]["annotated"]
    assert "as coco" in out["datasets-message"]


def test_export_without_a_dataset_or_of_an_unknown_one_says_so(ui_and_dataset):
    ui, _ = ui_and_dataset
    out = fire(ui, "export-run", "click", None, "masks", False)
    assert out["export-file"] is None and "Choose a dataset" in out["datasets-message"]
    out = fire(ui, "export-run", "click", 999999, "coco", False)
    assert out["export-file"] is None and "not found" in out["datasets-message"]
    assert "(HTTP 404)" in out["datasets-message"] and "\n" not in out["datasets-message"]
