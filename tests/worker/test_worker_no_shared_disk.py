"""Workers on other machines, with no shared disk (production mode, the real PostgreSQL and
Redis): the API serves data folder A over HTTP; two ``kmine worker`` processes have their own
empty data folders B and C, their environment names nothing of A, and (where this machine
allows a mount namespace) A is hidden from them under an empty tmpfs. A continuous-mining job
starts on one worker, which is killed with -9 after its first mining epoch; the other resumes
from the checkpoint it fetches through the API and finishes."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from live_ui import free_port
from service_fixtures import ROOT, covid_zip, create_pg_database, stop_process

pytestmark = pytest.mark.slow

CONFIG = {"schedule": "continuous", "max_epochs": 2, "mining_epochs": 3, "early_stop": 5, "size": 64,
          "batch_size": 4, "augment": False}


def _can_hide() -> bool:
    """Whether this machine lets a process hide a folder from itself (a mount namespace)."""
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-m", "true"], capture_output=True).returncode == 0


def _wait_for_line(proc: subprocess.Popen, log: Path, line: bytes, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout  # a bound on a hung start, not a speed assertion
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()[-3000:]}")
        if line in log.read_bytes():
            return
        time.sleep(0.5)
    raise RuntimeError(f"{what} not ready: {log.read_text()[-3000:]}")


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"},
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture()
def installation(prod_env, tmp_path):
    """Its own database, queue and data folder A; the API on a free port, and its URL, admin
    client and environment."""
    url, drop = create_pg_database()
    a = tmp_path / "A"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMINE_")}
    env.update({**prod_env, "KMINE_DATABASE_URL": url, "KMINE_DATA_DIR": str(a), "KMINE_JOB_LEASE_SECONDS": "20",
                "KMINE_QUEUE": f"no-shared-disk-{port}"})
    log = tmp_path / "api.log"
    api = _start([sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                  "--no-worker", "--no-ui"], env, log)
    try:
        _wait_for_line(api, log, b"Application startup complete", "the API")
        admin = (a / "admin_token").read_text().strip()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120,
                          headers={"Authorization": f"Bearer {admin}"}) as client:
            yield {"url": f"http://127.0.0.1:{port}", "client": client, "env": env, "A": a, "log": log}
    finally:
        stop_process(api)
        drop()


def _worker_env(inst: dict, data: Path, token: str) -> dict[str, str]:
    """What a worker on another machine is given: the broker, the database, the API's URL and
    a worker token, its own data folder; nothing of A."""
    env = {k: v for k, v in inst["env"].items() if k not in ("KMINE_DATA_DIR",)}
    env.update({"KMINE_DATA_DIR": str(data), "KMINE_API_URL": inst["url"], "KMINE_WORKER_TOKEN": token})
    return env


def _start_worker(inst: dict, data: Path, token: str, name: str, hide: bool) -> subprocess.Popen:
    data.mkdir(parents=True)  # its own, empty
    env = _worker_env(inst, data, token)
    assert not [k for k, v in env.items() if str(inst["A"]) in v], "the worker's environment names A"
    command = [sys.executable, "-m", "server.cli", "worker", "--loglevel=INFO", f"--hostname={name}@test"]
    if hide:  # A mounted over with an empty tmpfs, in the worker's own mount namespace only
        script = ('mount -t tmpfs none "$1" && [ -z "$(ls -A "$1")" ] && echo "A is empty here" && shift && '
                  'exec "$@"')
        command = ["unshare", "-m", "sh", "-c", script, "sh", str(inst["A"]), *command]
    log = data.parent / f"{name}.log"
    proc = _start(command, env, log)
    _wait_for_line(proc, log, b"ready.", f"worker {name}")
    if hide:
        assert b"A is empty here" in log.read_bytes()
    return proc


def _wait(client, job_id: int, done, timeout: float = 900) -> dict:
    deadline = time.monotonic() + timeout  # a bound on a hung job, not a speed assertion
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if done(job):
            return job
        time.sleep(1)
    raise AssertionError(f"job {job_id} did not get there: {job}")


def _transfers(data: Path) -> list[tuple[str, str, int]]:
    log = data / "transfers.log"
    return [(w, d, int(n)) for w, d, n in (line.split() for line in log.read_text().splitlines())] if log.exists() else []


def test_a_job_resumes_on_another_worker_through_the_api(installation, tmp_path, capsys):
    inst, client = installation, installation["client"]
    hide = _can_hide()
    ds = client.post("/api/v1/datasets", data={"name": "far"}, files={"archive": ("c.zip", covid_zip())}).json()["id"]
    split = client.post(f"/api/v1/datasets/{ds}/splits",
                        json={"val_fraction": 0.2, "test_fraction": 0, "labelled_fraction": 0.5}).json()["id"]
    token = client.post("/api/v1/tokens", json={"name": "gpu-workers", "role": "worker"}).json()["token"]
    b, c = tmp_path / "B" / "data", tmp_path / "C" / "data"
    workers = {"b": (b, _start_worker(inst, b, token, "b", hide)), "c": (c, _start_worker(inst, c, token, "c", hide))}
    try:
        job_id = client.post("/api/v1/jobs", json={"kind": "train", "split_id": split, "config": CONFIG}).json()["id"]
        job = _wait(client, job_id, lambda j: any(m["phase"] == "mining" for m in j["metrics"]) or
                    j["status"] in ("succeeded", "failed"))
        assert job["status"] == "running", job
        first = next(name for name in workers if job["worker"].startswith(f"{name}@"))
        os.killpg(workers[first][1].pid, signal.SIGKILL)  # after its first mining epoch
        workers[first][1].wait()
        job = _wait(client, job_id, lambda j: j["status"] in ("succeeded", "failed", "cancelled"))
    finally:
        for _, proc in workers.values():
            stop_process(proc)
    second = next(name for name in workers if name != first)
    assert job["status"] == "succeeded", job
    assert [(w["attempt"], w["worker"].split("@")[0]) for w in job["workers"]] == [(1, first), (2, second)]
    assert "fetched" in job["log_tail"]  # the second worker's run folder came through the API

    # per-epoch metrics and pseudo-label quality complete, no epoch repeated from zero
    by_phase = Counter(m["phase"] for m in job["metrics"])
    for phase in ("supervised", "mining"):
        epochs = [m["epoch"] for m in job["metrics"] if m["phase"] == phase]
        assert epochs == list(range(1, len(epochs) + 1)), (phase, epochs)
    assert by_phase["mining"] == CONFIG["mining_epochs"]
    assert [q["epoch"] for q in job["pseudo_label_quality"]] == list(range(1, CONFIG["mining_epochs"] + 1))

    # the model is active, and its checkpoint's checksum matches
    model = client.get(f"/api/v1/models/{job['model_id']}").json()
    assert model["active"]
    assert hashlib.sha256(client.get(f"/api/v1/models/{model['id']}/download").content).hexdigest() == model["sha256"]

    # every pseudo-label mask is in A's store
    _assert_pseudo_labels_stored(inst, job_id, job["result"]["pseudo_labels_saved"])

    # each blob crossed to each worker at most once; nothing of A is linked into B or C
    moved = {name: _transfers(folder) for name, (folder, _) in workers.items()}
    for name, rows in moved.items():
        fetched = Counter(d for w, d, _ in rows if w == "get")
        assert fetched and max(fetched.values()) == 1, (name, fetched.most_common(3))
    a_inodes = {(p.stat().st_dev, p.stat().st_ino) for p in inst["A"].rglob("*") if p.is_file()}
    for folder, _ in workers.values():
        assert not [p for p in folder.rglob("*") if p.is_file() and (p.stat().st_dev, p.stat().st_ino) in a_inodes]

    # a worker token is refused on admin routes
    worker_auth = {"Authorization": f"Bearer {token}"}
    for method, path in (("GET", "/api/v1/tokens"), ("DELETE", f"/api/v1/datasets/{ds}"), ("GET", "/api/v1/datasets")):
        assert client.request(method, path, headers=worker_auth).status_code == 403

    with capsys.disabled():  # the figures BENCHMARKS.md quotes come from benchmarks/remote_worker.py
        for name, rows in moved.items():
            print(f"\n[no shared disk] worker {name}: fetched {sum(n for w, _, n in rows if w == 'get')} B in "
                  f"{sum(1 for w, *_ in rows if w == 'get')} blobs, sent {sum(n for w, _, n in rows if w == 'put')} B"
                  f" in {sum(1 for w, *_ in rows if w == 'put')}; A hidden: {hide}")


def _assert_pseudo_labels_stored(inst: dict, job_id: int, saved: int) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(inst["env"]["KMINE_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT sha256 FROM masks WHERE job_id = :j AND kind = 'pseudo_label'"),
                                {"j": job_id}).scalars().all()
    finally:
        engine.dispose()
    assert saved > 0 and len(rows) == saved
    blobs = inst["A"] / "blobs"
    assert all((blobs / d[:2] / d[2:]).is_file() for d in rows)
