"""Export of a dataset's current labels, on real services and the COVID-QU-Ex sample: the zip
holds each annotated image's label exactly as GET …/mask serves it, and labels.json says
which version it is and where it came from, after a human save and after an undo; the COCO
file's RLE decodes (with a decoder of this test's own) to the same masks, with the right areas
and boxes; an unknown dataset is a 404 and a dataset without labels a valid empty export; ``kmine export``
writes what the API serves."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from service_fixtures import ROOT, assert_error, covid_entries, covid_zip, pixels, png


def rle_decode(segmentation: dict) -> np.ndarray:
    """COCO's uncompressed RLE, decoded independently of the server: runs alternate background
    and foreground from background, over the pixels column by column (Fortran order)."""
    height, width = segmentation["size"]
    flat = np.zeros(height * width, dtype=bool)
    at, value = 0, False
    for run in segmentation["counts"]:
        flat[at:at + run] = value
        at, value = at + run, not value
    assert at == height * width, (at, height, width)
    columns = [flat[c * height:(c + 1) * height] for c in range(width)]  # column c holds pixels (0..h-1, c)
    return np.stack(columns, axis=1)


@pytest.fixture(scope="module")
def dataset(client):
    r = client.post("/api/v1/datasets", data={"name": "export"}, files={"archive": ("c.zip", covid_zip())})
    assert r.status_code == 201, r.text
    ds = r.json()["id"]
    items = client.get(f"/api/v1/datasets/{ds}/images", params={"limit": 500}).json()["items"]
    return ds, items


def export(client, ds: int, fmt: str, **params):
    r = client.get(f"/api/v1/datasets/{ds}/export", params={"format": fmt, **params})
    assert r.status_code == 200, r.text
    return r


def zipped(client, ds: int, **params) -> tuple[zipfile.ZipFile, dict]:
    r = export(client, ds, "masks", **params)
    assert r.headers["content-type"] == "application/zip"
    assert f"kmine-dataset-{ds}-masks.zip" in r.headers["content-disposition"]
    z = zipfile.ZipFile(io.BytesIO(r.content))
    return z, json.loads(z.read("labels.json"))


def test_a_non_symmetric_mask_decodes_in_the_right_order():
    """The test's decoder and the server's encoder agree on a mask that a row-major mix-up breaks."""
    from server.services.export import bbox, rle_counts

    mask = np.zeros((3, 5), dtype=bool)
    mask[0, 1:4] = True  # a horizontal bar along the top row
    mask[2, 4] = True
    counts = rle_counts(mask)
    assert counts == [3, 1, 2, 1, 2, 1, 4, 1]  # column-major: column 0 empty, then (0,1), (0,2), (0,3), (2,4)
    assert (rle_decode({"size": [3, 5], "counts": counts}) == mask).all()
    assert rle_counts(np.ones((2, 2), dtype=bool)) == [0, 4] and rle_counts(np.zeros((2, 2), dtype=bool)) == [4]
    assert bbox(mask) == [1, 0, 4, 3] and bbox(np.zeros((2, 2), dtype=bool)) == [0, 0, 0, 0]


def test_masks_zip_holds_each_label_as_served_and_says_its_version(client, dataset):
    ds, items = dataset
    first = items[0]
    url = f"/api/v1/datasets/{ds}/images/{first['id']}"
    z, labels = zipped(client, ds)
    annotated = [i for i in items if i["annotated"]]
    assert annotated and sorted(n for n in z.namelist() if n.startswith("masks/")) == sorted(
        f"masks/{i['stem']}.png" for i in annotated)
    assert labels["unannotated"] == [i["stem"] for i in items if not i["annotated"]]
    for item in annotated:  # one PNG per annotated image, pixel for pixel the served label
        served = client.get(f"/api/v1/datasets/{ds}/images/{item['id']}/mask")
        exported = np.asarray(Image.open(io.BytesIO(z.read(f"masks/{item['stem']}.png"))))
        assert exported.shape == (item["height"], item["width"]) and set(np.unique(exported)) <= {0, 255}
        assert (exported == np.asarray(Image.open(io.BytesIO(served.content)))).all()
    record = next(r for r in labels["labels"] if r["stem"] == first["stem"])
    assert (record["kind"], record["origin"], record["version"], record["saved_by"]) == (
        "ground_truth", "imported", 1, None)

    truth = pixels(client.get(f"{url}/ground-truth").content)
    drawn = np.zeros_like(truth)
    drawn[10:60, 20:90] = True
    saved = client.put(f"{url}/mask", files={"mask": ("a.png", png(drawn))}, data={"origin": "sam"}).json()
    drawn2 = drawn.copy()
    drawn2[100:110, 5:200] = True
    client.put(f"{url}/mask", files={"mask": ("b.png", png(drawn2))}, data={"origin": "brush"})
    assert client.post(f"{url}/mask/undo").status_code == 200  # the brush save undone: the sam save is the label
    z, labels = zipped(client, ds)
    record = next(r for r in labels["labels"] if r["stem"] == first["stem"])
    assert (record["mask_id"], record["kind"], record["origin"], record["version"], record["saved_by"]) == (
        saved["id"], "human", "sam", 2, "admin")
    assert record["created_at"] == saved["created_at"]
    assert (pixels(z.read(f"masks/{first['stem']}.png")) == drawn).all()
    assert not any(n.startswith("images/") for n in z.namelist())

    z, _ = zipped(client, ds, include_images="true")
    assert sorted(n for n in z.namelist() if n.startswith("images/")) == sorted(f"images/{i['filename']}" for i in items)
    original = client.get(url).content  # the PNG sample is served as uploaded
    assert z.read(f"images/{first['filename']}") == original


def test_coco_rle_decodes_to_the_labels_with_areas_and_boxes(client, dataset):
    ds, items = dataset
    r = export(client, ds, "coco")
    assert r.headers["content-type"] == "application/json"
    coco = json.loads(r.content)
    from server.api.schemas.datasets import CocoExport

    CocoExport.model_validate(coco)  # what the OpenAPI document says it is
    assert [c["id"] for c in coco["categories"]] == [1]
    assert {i["id"]: (i["file_name"], i["width"], i["height"]) for i in coco["images"]} == {
        i["id"]: (i["filename"], i["width"], i["height"]) for i in items}  # unannotated ones too
    by_image = {a["image_id"]: a for a in coco["annotations"]}
    assert len(by_image) == len(coco["annotations"]) == sum(i["annotated"] for i in items)
    for item in items:
        if not item["annotated"]:
            assert item["id"] not in by_image
            continue
        a = by_image[item["id"]]
        served = client.get(f"/api/v1/datasets/{ds}/images/{item['id']}/mask")
        truth = pixels(served.content)
        assert a["segmentation"]["size"] == [item["height"], item["width"]] and a["iscrowd"] == 1
        assert (rle_decode(a["segmentation"]) == truth).all()
        assert a["area"] == int(truth.sum())
        ys, xs = np.nonzero(truth)
        assert a["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        assert a["id"] == a["kmine"]["mask_id"] == int(served.headers["x-mask-id"])
        assert a["kmine"]["kind"] == served.headers["x-mask-kind"]
        assert set(a["kmine"]) == {"mask_id", "kind", "origin", "version", "saved_by", "created_at"}


def test_a_dataset_without_labels_exports_empty_and_an_unknown_one_is_404(client):
    images_only = [(name, data) for name, data in covid_entries(2) if name.startswith("images/")]
    r = client.post("/api/v1/datasets", data={"name": "bare"},
                    files=[("images", (name.split("/")[1], data)) for name, data in images_only])
    assert r.status_code == 201, r.text
    ds = r.json()["id"]
    z, labels = zipped(client, ds)
    assert z.namelist() == ["labels.json"] and labels["labels"] == [] and len(labels["unannotated"]) == 2
    coco = json.loads(export(client, ds, "coco").content)
    assert coco["annotations"] == [] and len(coco["images"]) == 2
    assert_error(client.get("/api/v1/datasets/999999/export", params={"format": "coco"}), 404)
    assert client.get(f"/api/v1/datasets/{ds}/export", params={"format": "tiff"}).status_code == 422


def test_kmine_export_command_writes_what_the_api_serves(client, dataset, prod_env, tmp_path):
    """``kmine export`` on the same database and store (its KMINE_* settings): the same labels."""
    ds, _ = dataset

    def kmine(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "server.cli", "export", *args], cwd=ROOT, capture_output=True,
                              text=True, env={**os.environ, **prod_env}, timeout=300)

    proc = kmine(str(ds), "--format", "coco", "--out", str(tmp_path / "c.json"))
    assert proc.returncode == 0, proc.stderr
    served = json.loads(export(client, ds, "coco").content)
    written = json.loads((tmp_path / "c.json").read_text())
    assert written["images"] == served["images"] and written["annotations"] == served["annotations"]
    proc = kmine(str(ds), "--out", str(tmp_path / "m.zip"))
    assert proc.returncode == 0, proc.stderr
    z, labels = zipped(client, ds)
    mine = zipfile.ZipFile(tmp_path / "m.zip")
    assert json.loads(mine.read("labels.json"))["labels"] == labels["labels"]
    assert {n: mine.read(n) for n in mine.namelist() if n != "labels.json"} == {
        n: z.read(n) for n in z.namelist() if n != "labels.json"}
    proc = kmine("999999", "--out", str(tmp_path / "none.zip"))
    assert proc.returncode == 1 and "dataset 999999 not found" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("*none*")) and not list(tmp_path.glob(".*part"))
