"""Labelling help on real services (PostgreSQL, Redis, a ``kmine worker``) with a model trained
there: unlabelled images ranked by student/SAM disagreement (scored by the worker when it
trained the model, stored per model; an image it did not score is scored once), and SAM
re-prompted with clicked points and a dragged box (cached encodings: only the decoder runs)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from service_fixtures import covid_zip, wait_for_job

pytestmark = pytest.mark.slow

TRAIN = {"schedule": "supervised", "max_epochs": 2, "size": 64, "batch_size": 4, "lr": 1e-3, "augment": False}


def decode(answer: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["mask_png"])))) >= 128


@pytest.fixture(scope="module")
def trained(client, worker_process):
    r = client.post("/api/v1/datasets", data={"name": "to label"}, files={"archive": ("c.zip", covid_zip())})
    assert r.status_code == 201, r.text
    dataset = r.json()
    split = client.post(f"/api/v1/datasets/{dataset['id']}/splits", json={
        "val_fraction": 0.17, "test_fraction": 0.17, "labelled_fraction": 0.5, "seed": 3}).json()
    r = client.post("/api/v1/jobs", json={"kind": "train", "split_id": split["id"], "config": TRAIN})
    job = wait_for_job(client, r.json()["id"])
    assert job["status"] == "succeeded", job
    return {"dataset": dataset, "split": split, "model_id": job["model_id"]}


def test_candidates_ranked_by_the_worker_open_at_once(client, trained):
    split = trained["split"]
    teacher = client.app.state.predictions.teacher("mobilesam")
    encodes = teacher.encode_calls
    r = client.get(f"/api/v1/splits/{split['id']}/candidates")
    assert teacher.encode_calls == encodes  # the worker scored them when it trained the model
    assert r.status_code == 200, r.text
    ranked = r.json()
    assert ranked["model_id"] == trained["model_id"]
    unlabelled = {i["id"] for i in split["parts"]["unlabelled"]}
    assert {i["id"] for i in ranked["items"]} == unlabelled and ranked["total"] == len(unlabelled)
    scores = [i["disagreement"] for i in ranked["items"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    for item in ranked["items"]:
        if item["student_sam_dice"] is not None:
            assert item["disagreement"] == pytest.approx(1 - item["student_sam_dice"])
    again = client.get(f"/api/v1/splits/{split['id']}/candidates", params={"limit": 2}).json()
    assert again["items"] == ranked["items"][:2] and again["total"] == len(unlabelled)
    assert teacher.encode_calls == encodes  # stored scores, no prediction


def test_an_image_the_worker_did_not_score_is_scored_once_and_kept(client, settings, trained):
    from sqlalchemy import func, select

    from server.core.db import session_scope
    from server.core.models import Disagreement

    split = trained["split"]
    moved = split["parts"]["labelled"][0]["id"]
    r = client.post(f"/api/v1/splits/{split['id']}/move", json={"image_ids": [moved], "to": "unlabelled"})
    assert r.status_code == 200, r.text
    try:
        with session_scope(settings) as s:
            before = s.scalar(select(func.count()).select_from(Disagreement).where(
                Disagreement.model_id == trained["model_id"]))
        ranked = client.get(f"/api/v1/splits/{split['id']}/candidates").json()
        assert moved in {i["id"] for i in ranked["items"]}
        with session_scope(settings) as s:
            after = s.scalar(select(func.count()).select_from(Disagreement).where(
                Disagreement.model_id == trained["model_id"]))
        assert after == before + 1  # scored now, and stored
        assert client.get(f"/api/v1/splits/{split['id']}/candidates").json()["items"] == ranked["items"]
    finally:
        client.post(f"/api/v1/splits/{split['id']}/move", json={"image_ids": [moved], "to": "labelled"})


def test_reprompt_with_box_and_points(client, trained):
    ds = trained["dataset"]["id"]
    item = trained["split"]["parts"]["unlabelled"][0]
    truth = np.asarray(Image.open(io.BytesIO(client.get(f"/api/v1/datasets/{ds}/images/{item['id']}/ground-truth").content))) >= 128
    h, w = truth.shape
    right = truth.copy()
    right[:, : w // 2] = False  # the lung on the image's right half
    rows, cols = np.nonzero(right)
    box = [int(cols.max()) + 3, int(rows.max()) + 3, int(cols.min()) - 3, int(rows.min()) - 3]  # dragged up-left
    url = f"/api/v1/datasets/{ds}/images/{item['id']}/sam"
    r = client.post(url, json={"box": box})
    assert r.status_code == 200, r.text
    boxed = r.json()
    mask = decode(boxed)
    assert mask.shape == (h, w) and boxed["teacher"] == "mobilesam"
    inter = (mask & right).sum()
    assert 2 * inter / (mask.sum() + right.sum()) > 0.6  # SAM finds that lung from the box alone
    assert boxed["prompts"][0]["box"][0] < boxed["prompts"][0]["box"][2]
    # the ranking (or the first call) encoded this image: now only the decoder runs
    cy, cx = np.argwhere(right).mean(0)
    r = client.post(url, json={"points": [[float(cx), float(cy)], [5, 5]], "point_labels": [1, 0], "box": box})
    assert r.status_code == 200, r.text
    assert r.json()["teacher_encodes"] == 0 and "teacher_encodes_run" not in r.json()["timings_ms"]
    assert decode(r.json()).any()


@pytest.mark.parametrize("body, status, message", [
    ({}, 422, "at least one point or a box"),
    ({"points": [[5000, 5]]}, 422, "inside the"),
    ({"points": [[5, 5]], "point_labels": [0]}, 422, "background points alone"),
    ({"box": [1, 2, 3]}, 422, "invalid request"),
    ({"box": [10, 10, 60, 60], "teacher": "nope"}, 422, "unknown teacher nope"),
    ({"points": [[20, 20]], "teacher": "litemedsam"}, 422, "box prompts only"),
])
def test_bad_prompts_are_readable(client, trained, body, status, message):
    ds = trained["dataset"]["id"]
    image_id = trained["split"]["parts"]["unlabelled"][0]["id"]
    r = client.post(f"/api/v1/datasets/{ds}/images/{image_id}/sam", json=body)
    assert r.status_code == status and message in r.json()["detail"], r.text


def test_unknown_image_split_and_model(client, trained):
    ds = trained["dataset"]["id"]
    assert client.post(f"/api/v1/datasets/{ds}/images/999999/sam", json={"box": [1, 1, 9, 9]}).status_code == 404
    assert client.get("/api/v1/splits/999999/candidates").status_code == 404
    r = client.get(f"/api/v1/splits/{trained['split']['id']}/candidates", params={"model_id": 999999})
    assert r.status_code == 404 and "model 999999 not found" in r.json()["detail"]
