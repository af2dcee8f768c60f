"""The typed API on real services: job bodies checked at submission (bounds, choices from the
engine, unknown keys, server paths) with a 422 whose ``detail`` is one readable line; ids too
big for the database refused with 422; every error an ErrorBody; answers keep their shapes."""

from __future__ import annotations

import io
import json
from datetime import datetime

import numpy as np
import pytest
from PIL import Image

from service_fixtures import assert_error, covid_zip

BIG = 2**63
TRAIN = {"schedule": "supervised", "max_epochs": 2, "size": 64, "batch_size": 4, "lr": 1e-3, "augment": False,
         "prompts": {"kinds": "points+box", "per_component": True}}


def png(w=32, h=24) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def data(client):
    r = client.post("/api/v1/datasets", data={"name": "typed api"}, files={"archive": ("c.zip", covid_zip())})
    assert r.status_code == 201, r.text
    dataset = r.json()
    split = client.post(f"/api/v1/datasets/{dataset['id']}/splits",
                        json={"val_fraction": 0.17, "test_fraction": 0.17, "labelled_fraction": 0.5}).json()
    image = client.get(f"/api/v1/datasets/{dataset['id']}/images", params={"limit": 1}).json()["items"][0]
    return {"dataset": dataset, "split": split, "image": image}


BAD_TRAIN = [
    ({"nonsense": 1}, "unknown training settings: nonsense"),
    ({"data": "/etc"}, "training settings data are set by the server"),
    ({"weights_dir": "/root"}, "weights_dir are set by the server"),
    ({"cache_dir": "/tmp"}, "cache_dir are set by the server"),
    ({"device": "cuda:0"}, "device are set by the server"),
    ({"encoder_init": "/etc/passwd"}, "encoder_init are set by the server"),
    ({"schedule": "weekly"}, "config.schedule"),
    ({"teacher": "nope"}, "config.teacher"),
    ({"encoder": "vgg"}, "config.encoder"),
    ({"size": 100}, "multiple of 32"),
    ({"size": 2048}, "less than or equal to 1024"),
    ({"size": 0}, "greater than or equal to 32"),
    ({"batch_size": 0}, "config.batch_size"),
    ({"batch_size": 65}, "config.batch_size"),
    ({"max_epochs": 0}, "config.max_epochs"),
    ({"max_epochs": 1001}, "config.max_epochs"),
    ({"lr": 0}, "config.lr"),
    ({"lr": -1e-3}, "config.lr"),
    ({"lr": "fast"}, "config.lr"),
    ({"seed": BIG}, "config.seed"),
    ({"labelled_fraction": 1.5}, "config.labelled_fraction"),
    ({"betas": [0.9]}, "config.betas"),
    ({"prompts": {"kinds": "lasso"}}, "config.prompts.kinds"),
    ({"prompts": {"n_points": 0}}, "config.prompts.n_points"),
    ({"prompts": {"shape": "star"}}, "unknown prompt settings: shape"),
    ({"strategy": {"label": "vote"}}, "config.strategy.label"),
    ({"strategy": {"teacher_weight": 2}}, "config.strategy.teacher_weight"),
    ({"strategy": {"teacher_size": 8}}, "config.strategy.teacher_size"),
    ({"strategy": {"tta_views": 3}}, "config.strategy.tta_views"),
    ({"strategy": {"tta_views": True}}, "config.strategy.tta_views"),
    ([1, 2], "config"),
    ("everything", "config"),
]


@pytest.mark.parametrize("config, words", BAD_TRAIN, ids=[json.dumps(c)[:40] for c, _ in BAD_TRAIN])
def test_bad_train_settings_get_a_one_line_422(client, data, config, words):
    r = client.post("/api/v1/jobs", json={"kind": "train", "split_id": data["split"]["id"], "config": config})
    body = assert_error(r, 422, words)
    assert body["detail"].startswith("invalid request: ") and body["errors"]


SPLIT = "<the split's id>"
BAD_OTHER = [
    ({"kind": "bake", "split_id": SPLIT}, "kind"),
    ({"kind": "train"}, "split_id: Field required"),
    ({"kind": "train", "split_id": BIG}, "split_id"),
    ({"kind": "train", "split_id": 0}, "split_id"),
    ({"kind": "train", "split_id": SPLIT, "model_id": 3}, "model_id: Extra inputs are not permitted"),
    ({"kind": "train", "split_id": SPLIT, "path": "/etc"}, "path: Extra inputs are not permitted"),
    ({"kind": "evaluate"}, "model_id: Field required"),
    ({"kind": "evaluate", "model_id": BIG}, "model_id"),
    ({"kind": "evaluate", "model_id": 1, "config": {"subset": "everything"}}, "config.subset"),
    ({"kind": "evaluate", "model_id": 1, "config": {"mode": "magic"}}, "config.mode"),
    ({"kind": "evaluate", "model_id": 1, "config": {"frame": "oval"}}, "config.frame"),
    ({"kind": "evaluate", "model_id": 1, "config": {"out": "/tmp"}}, "unknown evaluate settings: out"),
    ({"kind": "experiment", "split_id": SPLIT, "config": {"datasets": [{"path": "/etc"}]}},
     "experiment settings datasets are set by the server"),
    ({"kind": "experiment", "split_id": SPLIT, "config": {"pretrain": {"weights_dir": "/root"}}},
     "pretrain settings weights_dir are set by the server"),
    ({"kind": "experiment", "split_id": SPLIT, "config": {"pretrain": {"data": "/root"}}},
     "pretrain settings data are set by the server"),
    ({"kind": "experiment", "split_id": SPLIT, "config": {"pretrain": {"method": "byol"}}}, "config.pretrain.method"),
    ({"kind": "experiment", "split_id": SPLIT, "config": {"schedules": ["weekly"]}}, "config.schedules.0"),
    ({"kind": "experiment", "split_id": SPLIT, "config": {"teachers": ["nope"]}}, "config.teachers.0"),
    ({"kind": "experiment", "split_id": SPLIT, "config": {"prompts": ["lasso"]}}, "config.prompts.0"),
    ({"kind": "experiment", "split_id": SPLIT, "config": {"strategies": {"../../etc": {}}}}, "config.strategies"),
    ({"kind": "experiment", "split_id": SPLIT, "config": {"strategies": {}}}, "config.strategies"),
    ({"kind": "experiment", "split_id": SPLIT, "config": {"fractions": [0]}}, "config.fractions.0"),
    ({"kind": "experiment", "split_id": SPLIT, "config": {"seeds": [BIG]}}, "config.seeds.0"),
    ({"kind": "experiment", "split_id": SPLIT, "config": {"name": "a\nb"}}, "config.name"),
    ({"kind": "experiment", "split_id": SPLIT, "config": {"train": {"weights_dir": "/x"}}},
     "weights_dir are set by the server"),
]


@pytest.mark.parametrize("body, words", BAD_OTHER, ids=[json.dumps(b)[:60] for b, _ in BAD_OTHER])
def test_bad_job_bodies_get_a_one_line_422(client, data, body, words):
    body = {k: data["split"]["id"] if v == SPLIT else v for k, v in body.items()}
    assert_error(client.post("/api/v1/jobs", json=body), 422, words)


@pytest.mark.parametrize("text", ['{"kind": "train", "split_id": 1, "config": {"lr": NaN}}',
                                  '{"kind": "train", "split_id": 1, "config": {"lr": Infinity}}',
                                  '{"kind": "train", "split_id": 1, "config": {"lr": 1e999}}',
                                  '{"kind": "train", "split_id": 1, "config": {"lr": -Infinity}}',
                                  '{"kind": "train", "split_id": 1, "config": {"size": 1e999}}',
                                  '{"kind": "train", "split_id": 1,',
                                  '\x00\x01garbage'])
def test_non_finite_and_broken_json_never_5xx(client, text):
    r = client.post("/api/v1/jobs", content=text.encode(), headers={"content-type": "application/json"})
    assert_error(r, 422, "invalid request")


def test_nan_in_a_split_body_is_a_422(client, data):
    r = client.post(f"/api/v1/datasets/{data['dataset']['id']}/splits", content=b'{"val_fraction": NaN}',
                    headers={"content-type": "application/json"})
    assert_error(r, 422, "val_fraction")


def test_integers_too_big_for_the_database(client, data):
    ds, split, image = data["dataset"]["id"], data["split"]["id"], data["image"]["id"]
    calls = [
        client.get(f"/api/v1/datasets/{ds}/images", params={"offset": BIG}),
        client.get("/api/v1/models", params={"dataset_id": BIG}),
        client.get(f"/api/v1/splits/{split}/candidates", params={"model_id": BIG}),
        client.get(f"/api/v1/datasets/{BIG}"),
        client.get(f"/api/v1/jobs/{BIG}"),
        client.post(f"/api/v1/splits/{split}/move", json={"image_ids": [BIG], "to": "labelled"}),
        client.post(f"/api/v1/splits/{split}/move", json={"image_ids": [-1], "to": "labelled"}),
        client.post(f"/api/v1/datasets/{ds}/images/{image}/sam", json={"points": [[5, 5]], "point_labels": [BIG]}),
        client.post(f"/api/v1/datasets/{ds}/images/{image}/sam", json={"points": [[5, 5]], "point_labels": [2]}),
        client.post(f"/api/v1/datasets/{ds}/splits", json={"seed": BIG}),
        client.post("/api/v1/models", data={"dataset_id": str(BIG)}, files={"checkpoint": ("c.pt", b"x")}),
        client.post("/api/v1/predict", data={"model_id": str(BIG)}, files={"image": ("x.png", png())}),
    ]
    for r in calls:
        assert_error(r, 422, "invalid request")


def test_good_jobs_are_accepted_and_stored_as_sent(quiet_client, data):
    split = data["split"]["id"]
    r = quiet_client.post("/api/v1/jobs", json={"kind": "train", "split_id": split, "config": TRAIN})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["config"] == TRAIN  # stored as the worker reads it: the settings sent, nothing added
    assert set(job) == {"id", "kind", "status", "dataset_id", "split_id", "model_id", "config", "progress", "attempts",
                        "max_attempts", "cancel_requested", "error", "result", "device", "worker", "workers", "created_at",
                        "started_at", "finished_at", "metrics", "pseudo_label_quality", "log_tail"}
    assert job["device"] == "any" and job["workers"] == []
    assert job["progress"] == {"phase": None, "epoch": None, "fraction": 0.0, "eta_seconds": None}
    assert job["status"] == "queued" and job["metrics"] == [] and job["started_at"] is None
    created = job["created_at"]
    assert datetime.fromisoformat(created).tzinfo is not None and not created.endswith("Z")  # isoformat, as before
    listed = quiet_client.get("/api/v1/jobs", params={"limit": 5}).json()
    assert listed[0]["id"] == job["id"] and "metrics" not in listed[0] and "log_tail" not in listed[0]
    cancelled = quiet_client.post(f"/api/v1/jobs/{job['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["cancel_requested"] and "metrics" not in cancelled
    assert_error(quiet_client.post(f"/api/v1/jobs/{job['id']}/cancel"), 409, "already cancelled")

    r = quiet_client.post("/api/v1/jobs", json={"kind": "experiment", "split_id": split, "config": {
        "fractions": [0.5], "schedules": ["supervised"], "strategies": {"paper": {"label": "teacher", "tta": False}},
        "pretrain": {"epochs": 1}, "train": {"max_epochs": 1, "size": 64}}})
    assert r.status_code == 201, r.text
    assert r.json()["config"] == {"fractions": [0.5], "schedules": ["supervised"],
                                  "strategies": {"paper": {"label": "teacher", "tta": False}}, "pretrain": {"epochs": 1},
                                  "train": {"max_epochs": 1, "size": 64}, "name": f"experiment-{split}"}
    quiet_client.post(f"/api/v1/jobs/{r.json()['id']}/cancel")

    # The paper's recipe is one switch away: stored as the values the worker will train with.
    paper = {"second_phase": "fresh", "perturb": "none", "lam": 0.25, "lam_rampup": 0.0, "labelled_share": None,
             "strategy": {"teacher_size": None, "tta": False, "tta_views": 4, "multimask": "single", "label": "teacher",
                          "teacher_weight": 0.5, "gate_iou": 0.8, "doubt_weight": 1.0, "min_agreement": 0.0}}
    r = quiet_client.post("/api/v1/jobs", json={"kind": "train", "split_id": split,
                                                "config": {**TRAIN, "lam": 3, "paper": True}})
    assert r.status_code == 201, r.text
    assert r.json()["config"] == {**TRAIN, **paper}
    quiet_client.post(f"/api/v1/jobs/{r.json()['id']}/cancel")
    r = quiet_client.post("/api/v1/jobs", json={"kind": "experiment", "split_id": split, "config": {
        "fractions": [0.5], "schedules": ["supervised"], "train": {"size": 64, "paper": True}}})
    assert r.status_code == 201, r.text
    assert r.json()["config"]["train"] == {"size": 64, **paper}
    quiet_client.post(f"/api/v1/jobs/{r.json()['id']}/cancel")
    assert_error(quiet_client.post("/api/v1/jobs", json={"kind": "evaluate", "model_id": 987654}), 404, "model 987654 not found")
    assert_error(quiet_client.post("/api/v1/jobs", json={"kind": "train", "split_id": 987654}), 404, "split 987654 not found")


def test_errors_share_one_body(client, data, settings):
    from server.core.db import session_scope
    from server.core.security import create_token

    r = client.get("/api/v1/datasets", headers={"Authorization": ""})
    assert_error(r, 401, "missing API token")
    assert r.headers["www-authenticate"] == "Bearer"
    assert_error(client.get("/api/v1/options", headers={"Authorization": "Bearer nope"}), 401, "invalid API token")
    assert_error(client.get("/api/v1/nowhere"), 404, "Not Found")
    assert_error(client.patch("/api/v1/datasets"), 405, "Method Not Allowed")
    assert_error(client.get("/api/v1/datasets/999999"), 404, "dataset 999999 not found")
    assert_error(client.get(f"/api/v1/datasets/{data['dataset']['id']}/images/{data['image']['id']}/nonsense"), 404, "unknown mask kind")
    assert_error(client.post("/api/v1/datasets", data={"name": "x"}), 422, "nothing uploaded")
    assert_error(client.post("/api/v1/datasets", data={"name": "a\x00b"}, files={"archive": ("c.zip", covid_zip())}),
                 422, "control characters")
    r = client.post("/api/v1/datasets", data={"name": "x"}, files={"images": ("x.png", b"\x89PNG not really")})
    assert "(an object)" not in assert_error(r, 422, "not a decodable image")["detail"]

    # deleting a dataset needs an admin token; the client's is one
    with session_scope(settings) as session:
        _, plain = create_token(session, settings, "not an admin", "user")
    ds = data["dataset"]["id"]
    assert_error(client.delete(f"/api/v1/datasets/{ds}", headers={"Authorization": f"Bearer {plain}"}), 403, "admin token")
    assert client.get(f"/api/v1/datasets/{ds}", headers={"Authorization": f"Bearer {plain}"}).status_code == 200


def test_answers_keep_their_shapes(client, data):
    ds = data["dataset"]
    assert set(ds) == {"id", "name", "created_at", "counts", "active_model_id", "ignored"}
    assert set(ds["counts"]) == {"images", "annotated", "unannotated", "masks"} and ds["counts"]["masks"] == {"ground_truth": 12}
    shown = client.get(f"/api/v1/datasets/{ds['id']}").json()
    assert shown == {k: v for k, v in ds.items() if k != "ignored"}
    page = client.get(f"/api/v1/datasets/{ds['id']}/images", params={"limit": 2, "offset": 1}).json()
    assert set(page) == {"total", "offset", "limit", "items"} and (page["total"], page["offset"], page["limit"]) == (12, 1, 2)
    assert set(page["items"][0]) == {"id", "stem", "filename", "width", "height", "sha256", "annotated"}
    split = data["split"]
    assert set(split) == {"id", "dataset_id", "seed", "fractions", "created_at", "counts", "parts"}
    assert set(split["counts"]) == set(split["parts"]) == {"labelled", "unlabelled", "val", "test"}
    assert set(split["parts"]["val"][0]) == {"id", "stem"}
    listed = client.get(f"/api/v1/datasets/{ds['id']}/splits").json()
    assert listed[0].keys() == {"id", "seed", "fractions", "created_at"}
    assert client.get(f"/api/v1/splits/{split['id']}").json() == split
    truth = client.get(f"/api/v1/datasets/{ds['id']}/images/{data['image']['id']}/ground-truth")
    assert truth.headers["content-type"] == "image/png" and truth.headers["x-mask-kind"] == "ground_truth"
    live = client.get("/api/v1/health/live")
    assert live.json() == {"status": "ok"}
