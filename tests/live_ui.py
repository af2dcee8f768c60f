"""A real ``kmine serve`` (the UI mounted at /ui) with the COVID-QU-Ex sample, a split and a
small trained model, and Debian's chromium driven by Playwright: what the browser tests and
``benchmarks/label_clicks.py`` run against."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from service_fixtures import covid_zip
from shared_data import WEIGHTS, stop_process_group

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
# How long a wait on an event (a page, an answer, a job) lasts before it counts as lost. Every
# wait is on the event itself; this only bounds a hang, and is long because a loaded 2-core
# machine renders Gradio's pages and answers many times slower.
PATIENCE_S = 900
TRAIN = {"schedule": "supervised", "max_epochs": 8, "size": 128, "batch_size": 4, "lr": 1e-3,
         "prompts": {"kinds": "points+box", "per_component": True}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_job(c: httpx.Client, job_id: int, timeout: float = 2 * PATIENCE_S) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(1)
    raise AssertionError(f"job {job_id} did not finish: {job}")


@contextmanager
def live_server(tmp: Path, train: dict | None = None) -> Iterator[dict]:
    """``kmine serve`` in ``tmp`` with the covid sample, a split and a model trained with
    ``train`` (the job's config); yields its base URL, an API client and what it made."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMINE_")}
    env.update(KMINE_DATA_DIR=str(tmp / "data"), KMINE_WEIGHTS_DIR=str(WEIGHTS), KMINE_DEVICE="cpu",
               OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", GRADIO_ANALYTICS_ENABLED="False")
    log_path = tmp / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--no-demo"],
                            cwd=tmp, env=env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_live(proc, base, log_path)
        token = (tmp / "data" / "admin_token").read_text().strip()
        c = httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=300)
        ds = c.post("/datasets", data={"name": "covid"}, files={"archive": ("c.zip", covid_zip())}).json()
        split = c.post(f"/datasets/{ds['id']}/splits",
                       json={"val_fraction": 0.2, "test_fraction": 0.2, "labelled_fraction": 0.5}).json()
        job = c.post("/jobs", json={"kind": "train", "split_id": split["id"], "config": train or TRAIN}).json()
        job = wait_job(c, job["id"])
        assert job["status"] == "succeeded", job
        # the UI acts for whoever signs in: a person's token, and a worker's (refused there)
        tokens = {role: c.post("/tokens", json={"name": f"webui {role}", "role": role}).json()["token"]
                  for role in ("user", "worker")}
        yield {"base": base, "client": c, "dataset": ds, "split": split, "tmp": tmp, "log": log_path, "pid": proc.pid,
               "tokens": tokens}
    finally:
        stop_process_group(proc)


def sign_in(page, token: str) -> None:
    """Paste ``token`` in the sign-in box the UI shows a visitor without a session, and send it."""
    page.locator("#token").fill(token)
    page.locator("#sign-in").click()


def _wait_live(proc: subprocess.Popen, base: str, log_path: Path) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, log_path.read_text()[-3000:]
        try:
            if httpx.get(f"{base}/health/live").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.5)
    raise AssertionError(f"the server did not answer in {PATIENCE_S} s: {log_path.read_text()[-3000:]}")
