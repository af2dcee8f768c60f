"""Queues by device, on the real Redis: a job asking for a device waits in that device's queue
(where only workers started with ``kmine worker --queue <device>`` look); a job for any device
in the common one; the GPU queue refuses a worker that sees no GPU."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from service_fixtures import ROOT, covid_zip


@pytest.fixture(scope="module")
def split_id(client):
    ds = client.post("/api/v1/datasets", data={"name": "queues"}, files={"archive": ("c.zip", covid_zip())}).json()["id"]
    return client.post(f"/api/v1/datasets/{ds}/splits", json={"val_fraction": 0.2, "test_fraction": 0}).json()["id"]


def test_a_job_waits_in_its_device_queue(client, settings, redis_url, split_id):
    import redis

    from server.core.queue import queue_name, worker_queues

    broker = redis.Redis.from_url(redis_url)
    assert worker_queues(settings, "gpu") == [settings.queue, f"{settings.queue}.gpu"]
    assert worker_queues(settings, "any") == [settings.queue]
    before = broker.llen(queue_name(settings, "cpu"))
    job = client.post("/api/v1/jobs", json={"kind": "train", "split_id": split_id, "device": "cpu",
                                            "config": {"max_epochs": 1, "size": 64}}).json()
    try:
        assert job["device"] == "cpu" and job["status"] == "queued"
        assert broker.llen(queue_name(settings, "cpu")) == before + 1  # not in the common queue
    finally:
        client.post(f"/api/v1/jobs/{job['id']}/cancel")
    r = client.post("/api/v1/jobs", json={"kind": "train", "split_id": split_id, "device": "tpu"})
    assert r.status_code == 422 and "device" in r.text


def test_a_gpu_worker_needs_a_gpu(prod_env):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    run = subprocess.run([sys.executable, "-m", "server.cli", "worker", "--queue", "gpu"], cwd=ROOT,
                         env={**os.environ, **prod_env}, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "no CUDA device" in run.stderr + run.stdout
