"""Predictions through the inference lane, on the real app and a real (uploaded) student: the
event loop answers while a model runs, a full lane is 503 with Retry-After, predictions that
wait together run as one batch and each gets the answer it gets alone."""

from __future__ import annotations

import base64
import io
import threading

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from server.app import create_app
from service_fixtures import Gate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lane_client(migrated, client, tmp_path_factory):
    """An app of its own (two calls may wait, eight run as one batch, on a CPU too) and the id
    of a real student uploaded to it."""
    from kmine.student import build_student, save_student

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("lane") / "best.pt"
    save_student(build_student(pretrained=False), path, {"config": {"size": 64}})
    settings = migrated.model_copy(update={"max_waiting_predictions": 2, "predict_batch": 8})
    with TestClient(create_app(settings, prepare=False), headers=client.headers) as c:
        r = c.post("/api/v1/models", files={"checkpoint": ("best.pt", path.read_bytes())}, data={"name": "lane"})
        assert r.status_code == 201, r.text
        yield c, r.json()["id"]


def predict(c: TestClient, model_id: int, image: np.ndarray):
    return c.post("/api/v1/predict", data={"model_id": str(model_id)}, files={"image": ("x.png", png_bytes(image))})


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def images(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, (90, 120, 3), dtype=np.uint8) for _ in range(n)]


def test_health_answers_while_the_lane_is_busy_and_a_full_lane_is_refused(lane_client):
    c, model_id = lane_client
    lane = c.app.state.predictions.lane
    gate = Gate(lane)
    held = [lane.submit(lambda items: items, i) for i in range(2)]  # the lane is full
    try:
        r = c.get("/health/live")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        r = predict(c, model_id, images(1)[0])
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"].isdigit() and int(r.headers["retry-after"]) >= 1
        assert r.json()["detail"].startswith("the server is busy: 2 model calls are waiting")
    finally:
        gate.open()
    assert [f.result(60) for f in held] == [0, 1]
    assert predict(c, model_id, images(1)[0]).status_code == 200


def test_predictions_that_wait_together_run_as_one_batch_and_match_alone(lane_client):
    c, model_id = lane_client
    lane = c.app.state.predictions.lane
    pictures = images(2)
    alone = [predict(c, model_id, image).json()["mask_png"] for image in pictures]
    gate = Gate(lane)
    answers: list = [None, None]

    def send(i):
        answers[i] = predict(c, model_id, pictures[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    try:
        assert wait_until(lambda: lane.waiting == 2)
    finally:
        batches = lane.batches_run
        gate.open()
    for t in threads:
        t.join(120)
    assert [a.status_code for a in answers] == [200, 200]
    assert lane.batches_run == batches + 2  # the gate's own call, then both predictions in one
    assert [a.json()["mask_png"] for a in answers] == alone
    assert all(base64.b64decode(a.json()["mask_png"]).startswith(b"\x89PNG") for a in answers)


def wait_until(condition, limit: float = 120.0) -> bool:
    """Poll ``condition`` (a state another thread changes) until true; ``limit`` only bounds a hang."""
    stop = threading.Event()
    for _ in range(int(limit / 0.01)):
        if condition():
            return True
        stop.wait(0.01)
    return condition()
