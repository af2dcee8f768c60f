"""Job state on PostgreSQL: atomic claims, leases, bounded retries; and a worker killed
mid-training whose job another worker resumes from its last checkpoint."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from service_fixtures import covid_zip, start_worker, stop_process, wait_for_job


@pytest.fixture()
def job_id(settings, client):
    from server.core.db import session_scope
    from server.core.models import Job

    with session_scope(settings) as session:
        job = Job(kind="train", config={}, max_attempts=2)
        session.add(job)
        session.flush()
        return job.id


def test_claim_is_exclusive_and_retries_are_bounded(settings, job_id):
    from server.core import jobs
    from server.core.db import session_scope
    from server.core.models import Job

    with session_scope(settings) as s:
        assert jobs.claim(s, job_id, settings, "w1")
        assert not jobs.claim(s, job_id, settings, "w2")  # running with a live lease: never twice
        assert jobs.renew(s, job_id, settings, "w1") and not jobs.renew(s, job_id, settings, "w2")
        # w1 dies: its lease runs out
        s.execute(update(Job).where(Job.id == job_id).values(lease_until=jobs.now() - timedelta(seconds=1)))
        s.commit()
        assert jobs.requeue_stale(s, settings) == [job_id]
        assert s.get(Job, job_id).status == "queued"
        assert jobs.claim(s, job_id, settings, "w2")
        assert not jobs.finish(s, job_id, "w1", "succeeded")  # the old worker cannot finish it
        s.execute(update(Job).where(Job.id == job_id).values(lease_until=jobs.now() - timedelta(seconds=1)))
        s.commit()
        assert jobs.requeue_stale(s, settings) == []  # attempts used up
        s.expire_all()
        job = s.get(Job, job_id)
        assert job.status == "failed" and job.attempts == 2 and "giving up" in job.error


@pytest.mark.slow
def test_killed_worker_job_resumes_from_checkpoint(client, settings, prod_env, tmp_path):
    from server.core.db import session_scope
    from server.core.models import EpochMetric

    ds = client.post("/api/v1/datasets", data={"name": "resume"}, files={"archive": ("c.zip", covid_zip())}).json()["id"]
    split = client.post(f"/api/v1/datasets/{ds}/splits", json={"val_fraction": 0.2, "test_fraction": 0}).json()["id"]
    config = {"schedule": "supervised", "max_epochs": 6, "early_stop": 6, "size": 64, "batch_size": 4, "augment": False}
    first = start_worker(prod_env, tmp_path / "w1.log")
    try:
        job_id = client.post("/api/v1/jobs", json={"kind": "train", "split_id": split, "config": config}).json()["id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job = client.get(f"/api/v1/jobs/{job_id}").json()
            if len(job["metrics"]) >= 2:
                break
            time.sleep(0.3)
        assert job["status"] == "running", job
        os.killpg(first.pid, signal.SIGKILL)  # the worker dies mid-run
        first.wait()
    finally:
        stop_process(first)
    done_before = len(client.get(f"/api/v1/jobs/{job_id}").json()["metrics"])
    second = start_worker(prod_env, tmp_path / "w2.log")
    try:
        job = wait_for_job(client, job_id, timeout=240)
    finally:
        stop_process(second)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2
    epochs = [m["epoch"] for m in job["metrics"]]
    assert epochs == list(range(1, 7)), epochs  # resumed: no epoch trained twice (counted from 1)
    assert "requeued to resume" in job["log_tail"] or "attempt 2" in job["log_tail"]
    with session_scope(settings) as s:
        assert len(s.scalars(select(EpochMetric).where(EpochMetric.job_id == job_id)).all()) == 6
    assert done_before >= 2
