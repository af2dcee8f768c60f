"""The production path on real services: PostgreSQL + Redis + a separate ``kmine worker``
process. Upload the COVID-QU-Ex sample, split it, train through Celery, watch progress,
predict in both modes, correct a mask."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from service_fixtures import covid_zip, wait_for_job
from shared_data import COVID, require

pytestmark = pytest.mark.slow

TRAIN = {"schedule": "supervised", "max_epochs": 2, "size": 64, "batch_size": 4, "lr": 1e-3, "augment": False}


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_auth_is_required(client):
    headers = {"Authorization": ""}
    assert client.get("/api/v1/datasets", headers=headers).status_code == 401
    r = client.get("/api/v1/datasets", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and "invalid API token" in r.json()["detail"]
    assert client.get("/health/live", headers=headers).status_code == 200
    assert client.get("/docs", headers=headers).status_code == 200
    assert "/api/v1/predict" in client.get("/openapi.json", headers=headers).json()["paths"]


def test_ready_reports_database_broker_weights(client):
    r = client.get("/health/ready")
    assert r.status_code == 200, r.json()
    assert r.json()["checks"] == {"database": "ok", "broker": "ok", "weights": "ok"}


def test_production_refuses_default_secret(settings):
    from server.app import create_app
    from server.core.settings import DEFAULT_SECRET, SettingsError

    with pytest.raises(SettingsError, match="SECRET_KEY"):
        create_app(settings.model_copy(update={"secret_key": DEFAULT_SECRET}))


def test_happy_path_through_worker(client, settings, worker_process):
    # no model yet
    r = client.post("/api/v1/predict", files={"image": ("x.png", png_bytes(np.zeros((40, 50, 3), np.uint8)))})
    assert r.status_code == 409 and "no model" in r.json()["detail"]

    r = client.post("/api/v1/datasets", data={"name": "covid"}, files={"archive": ("covid.zip", covid_zip())})
    assert r.status_code == 201, r.text
    dataset = r.json()
    assert dataset["counts"]["images"] == 12 and dataset["counts"]["annotated"] == 12
    assert dataset["ignored"] == ["covid/README.txt"]
    ds = dataset["id"]
    page = client.get(f"/api/v1/datasets/{ds}/images", params={"limit": 5, "offset": 10}).json()
    assert page["total"] == 12 and len(page["items"]) == 2
    images = client.get(f"/api/v1/datasets/{ds}/images", params={"limit": 100}).json()["items"]
    first = images[0]
    r = client.get(f"/api/v1/datasets/{ds}/images/{first['id']}")
    assert r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size == (first["width"], first["height"])
    gt = client.get(f"/api/v1/datasets/{ds}/images/{first['id']}/ground-truth")
    assert gt.status_code == 200 and set(np.unique(np.asarray(Image.open(io.BytesIO(gt.content))))) <= {0, 255}

    r = client.post(f"/api/v1/datasets/{ds}/splits", json={"val_fraction": 0.17, "test_fraction": 0.17,
                                                            "labelled_fraction": 0.5, "seed": 0})
    assert r.status_code == 201, r.text
    split = r.json()
    assert split["counts"] == {"labelled": 4, "unlabelled": 4, "val": 2, "test": 2}
    moved = split["parts"]["unlabelled"][0]["id"]
    r = client.post(f"/api/v1/splits/{split['id']}/move", json={"image_ids": [moved], "to": "labelled"})
    assert r.status_code == 200 and r.json()["counts"]["labelled"] == 5

    r = client.post("/api/v1/jobs", json={"kind": "train", "split_id": split["id"], "config": TRAIN})
    assert r.status_code == 201, r.text
    job = wait_for_job(client, r.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["progress"]["fraction"] == 1.0 and job["attempts"] == 1
    # every epoch a client sees counts from 1: metrics, their records, progress, the best, the log
    assert [m["epoch"] for m in job["metrics"]] == [1, 2]
    assert [m["record"]["epoch"] for m in job["metrics"]] == [1, 2]
    assert job["progress"]["epoch"] == 2 and job["result"]["best"]["epoch"] in (1, 2)
    assert all(0 <= m["val_dice"] <= 1 for m in job["metrics"])
    assert "supervised epoch 1:" in job["log_tail"] and "supervised epoch 2:" in job["log_tail"]

    # the same facts straight from the database
    from server.core.db import session_scope
    from server.core.models import EpochMetric, Job, Model

    with session_scope(settings) as session:
        assert session.get(Job, job["id"]).status == "succeeded"
        stored = session.scalars(select(EpochMetric).where(EpochMetric.job_id == job["id"]).order_by(EpochMetric.id)).all()
        assert [m.epoch for m in stored] == [0, 1]  # the engine's numbers, from 0
        model_row = session.scalar(select(Model).where(Model.job_id == job["id"]))
        assert model_row is not None and model_row.active

    models = client.get("/api/v1/models", params={"dataset_id": ds}).json()
    assert len(models) == 1 and models[0]["active"] and len(models[0]["sha256"]) == 64
    assert models[0]["metrics"]["epoch"] == job["result"]["best"]["epoch"]
    download = client.get(f"/api/v1/models/{models[0]['id']}/download")
    assert download.status_code == 200 and len(download.content) > 1000

    # predict: student, then refine twice (the second reuses the cached SAM encoding)
    require(COVID)
    image_path = sorted((COVID / "images").iterdir())[0]
    mask_path = COVID / "masks" / image_path.name
    w, h = Image.open(image_path).size
    r = client.post("/api/v1/predict", data={"mode": "student"},
                    files={"image": (image_path.name, image_path.read_bytes()), "mask": (mask_path.name, mask_path.read_bytes())})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["model_id"] == models[0]["id"] and answer["mode"] == "student"
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["mask_png"]))))
    assert mask.shape == (h, w) and set(np.unique(mask)) <= {0, 255}
    assert 0 <= answer["dice"] <= 1 and 0 <= answer["iou"] <= 1 and "student" in answer["timings_ms"]
    assert answer["teacher_encodes"] is None  # SAM did not run
    for kind in ("refine", "refine"):
        r = client.post("/api/v1/predict", data={"mode": kind, "prompts": "box"},
                        files={"image": (image_path.name, image_path.read_bytes())})
        assert r.status_code == 200, r.text
    refined = r.json()
    assert refined["mode"] == "refine"
    if refined["prompts"]:
        box = refined["prompts"][0]["box"]
        assert 0 <= box[0] <= box[2] < w and 0 <= box[1] <= box[3] < h
        assert refined["teacher_encodes"] == 0, refined  # cached encoding
        assert set(refined["timings_ms"]) == {"student", "teacher_encode", "teacher_decode"}  # all milliseconds
    predicted = [i for i in images if i["stem"] == image_path.stem][0]
    r = client.get(f"/api/v1/datasets/{ds}/images/{predicted['id']}/prediction")
    assert r.status_code == 200 and r.headers["x-mask-kind"] == "prediction"

    # correct a mask: the label becomes the human one
    corrected = np.zeros((h, w), np.uint8)
    corrected[10:50, 20:60] = 255
    r = client.put(f"/api/v1/datasets/{ds}/images/{first['id']}/mask", files={"mask": ("m.png", png_bytes(corrected))})
    assert r.status_code == 200, r.text
    label = client.get(f"/api/v1/datasets/{ds}/images/{first['id']}/mask")
    assert label.headers["x-mask-kind"] == "human"
    assert (np.asarray(Image.open(io.BytesIO(label.content))) == corrected).all()

    # evaluate the model through the queue
    r = client.post("/api/v1/jobs", json={"kind": "evaluate", "model_id": models[0]["id"], "config": {"subset": "test"}})
    assert r.status_code == 201, r.text
    job = wait_for_job(client, r.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["summary"]["n"] == 2


def test_cancel_running_job(client, worker_process):
    ds = client.get("/api/v1/datasets").json()[0]["id"]
    split = client.post(f"/api/v1/datasets/{ds}/splits", json={"seed": 1, "val_fraction": 0.2, "test_fraction": 0}).json()
    r = client.post("/api/v1/jobs", json={"kind": "train", "split_id": split["id"],
                                          "config": {**TRAIN, "max_epochs": 200, "early_stop": 200}})
    job_id = r.json()["id"]
    wait_for_job(client, job_id, until=("running",), timeout=120)
    r = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert r.status_code == 200 and r.json()["cancel_requested"]
    job = wait_for_job(client, job_id, timeout=120)
    assert job["status"] == "cancelled"
    assert client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 409
