"""The embedded default: ``kmine serve`` with SQLite, the SQLite-backed queue and its own
local worker, no PostgreSQL or Redis; the same happy path as production."""

from __future__ import annotations

import base64
import io
import os
import re
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from service_fixtures import covid_zip
from shared_data import COVID, WEIGHTS, require, stop_process_group

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# What a first start must not show a newcomer: a log line at WARNING level or above (uvicorn's
# "WARNING:", Celery's "WARNING/MainProcess", Python's "...Warning:"), a tqdm bar, Gradio's
# stray "new /ui" line.
ALARMING = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|\w+Warning\b|Traceback|\d+%\||\d\w*/s[],]|s/it\]|^new /ui$",
                      re.MULTILINE)


def alarming_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if ALARMING.search(line)]


def test_alarming_lines_are_found():
    log = ("[2025-01-01 10:00:00,000: WARNING/MainProcess] supervised epoch 1:  50%|#####     | 1/2 [00:01<00:01, 1.2it/s]\n"
           "\rloading data: 100%|##########| 4/4 [00:00<00:00, 659.59img/s]\n"
           "new /ui\n"
           "/x/celery/platforms.py:841: SecurityWarning: You're running the worker with superuser privileges\n"
           "WARNING:  Invalid HTTP request received.\n"
           "INFO:     127.0.0.1:5000 - \"GET /health/live HTTP/1.1\" 200 OK\n"
           "[2025-01-01 10:00:00,000: INFO/MainProcess] Task kmine.run_job succeeded\n")
    assert len(alarming_lines(log)) == 5


def test_embedded_serve_happy_path(tmp_path):
    """A first start, a tiny training job through the API, predictions; and a log with nothing
    alarming in it (see ALARMING)."""
    require(WEIGHTS)
    require(COVID)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMINE_")}
    env.update(KMINE_DATA_DIR=str(tmp_path / "data"), KMINE_WEIGHTS_DIR=str(WEIGHTS), KMINE_DEVICE="cpu",
               OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--no-demo"], cwd=tmp_path,
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(f"{base}/health/live").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        out = (tmp_path / "serve.log").read_text()
        assert "admin API token" in out and str(tmp_path / "data" / "admin_token") in out
        token = (tmp_path / "data" / "admin_token").read_text().strip()
        c = httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=120)
        assert c.get("/datasets", headers={"Authorization": ""}).status_code == 401
        ds = c.post("/datasets", data={"name": "covid"}, files={"archive": ("c.zip", covid_zip())}).json()
        assert ds["counts"]["annotated"] == 12
        split = c.post(f"/datasets/{ds['id']}/splits", json={"val_fraction": 0.2, "test_fraction": 0.2, "labelled_fraction": 0.5}).json()
        job = c.post("/jobs", json={"kind": "train", "split_id": split["id"],
                                    "config": {"schedule": "supervised", "max_epochs": 2, "size": 64, "batch_size": 4}}).json()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            job = c.get(f"/jobs/{job['id']}").json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(1)
        assert job["status"] == "succeeded", job
        assert len(job["metrics"]) == 2 and job["progress"]["fraction"] == 1.0
        image = sorted((COVID / "images").iterdir())[0]
        for mode in ("student", "refine"):
            r = c.post("/predict", data={"mode": mode}, files={"image": (image.name, image.read_bytes())})
            assert r.status_code == 200, r.text
            mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(r.json()["mask_png"]))))
            assert mask.shape == Image.open(image).size[::-1]
        ready = httpx.get(f"{base}/health/ready").json()
        assert ready["checks"] == {"database": "ok", "broker": "ok", "weights": "ok"}, ready
    finally:
        stop_process_group(proc)
    out = (tmp_path / "serve.log").read_text()
    assert "local worker started" in out and "ready." in out  # the worker's own lines are in it
    assert alarming_lines(out) == [], out[-6000:]


def test_demo_dataset_imported_once(tmp_path):
    require(COVID)
    from server.bootstrap import import_demo, prepare
    from server.core.settings import Settings

    settings = Settings(_env_file=None, mode="embedded", data_dir=tmp_path, demo_dataset=COVID,
                        database_url=f"sqlite:///{tmp_path / 'k.sqlite'}")
    prepare(settings, echo=lambda *_: None)
    assert settings.admin_token_file.stat().st_mode & 0o077 == 0  # owner-only
    first = import_demo(settings, echo=lambda *_: None)
    assert first is not None
    assert import_demo(settings, echo=lambda *_: None) is None
