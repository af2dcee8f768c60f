"""What a worker without the API's disk costs: the same continuous-mining job run by a worker
that shares the API's data folder and by one that has only its own (inputs and results through
``/api/v1/blobs``), on the real PostgreSQL and Redis, loopback only. One run prints, per mode:
the bytes each way and the blobs moved, each epoch's wall time (between its metric rows, so
with the checkpoint's upload) against its compute time (the engine's own ``seconds``), and
the time from the job's start to its first epoch (the inputs' download is in it).

    python benchmarks/remote_worker.py --out benchmarks/results/remote-worker-cpu2.json

Each mode gets its own database, queue and folders, all removed afterwards.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "covid-qu-ex-sample"
WEIGHTS = ROOT.parent / "shared" / "weights"
PG = os.environ.get("KMINE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
REDIS = os.environ.get("KMINE_BENCH_REDIS", "redis://127.0.0.1:6379/1")
CONFIG = {"schedule": "continuous", "max_epochs": 3, "mining_epochs": 3, "early_stop": 5, "size": 64,
          "batch_size": 4, "augment": False}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dataset_zip(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for sub in ("images", "masks"):
            for path in sorted((folder / sub).iterdir()):
                z.write(path, f"{sub}/{path.name}")
    return buf.getvalue()


class Database:
    """A PostgreSQL database of its own, dropped on exit."""

    def __enter__(self):
        import sqlalchemy as sa

        self.name = f"kmine_bench_{secrets.token_hex(4)}"
        self.admin = sa.create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
        with self.admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        return f"{PG}/{self.name}"

    def __exit__(self, *_):
        import sqlalchemy as sa

        with self.admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def start(command: list[str], env: dict[str, str], log: Path, ready: bytes) -> subprocess.Popen:
    proc = subprocess.Popen(command, cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    while ready not in log.read_bytes():
        if proc.poll() is not None:
            raise RuntimeError(f"{command[3]} exited: {log.read_text()[-2000:]}")
        time.sleep(0.3)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)


def run_mode(mode: str, data: Path, folder: Path) -> dict:
    """One job on one worker; ``mode``: shared (the API's folder) or http (its own)."""
    port = free_port()
    folder.mkdir(parents=True)
    a = folder / "api"
    with Database() as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KMINE_")}
        env.update({"KMINE_MODE": "production", "KMINE_SECRET_KEY": secrets.token_hex(32), "KMINE_DATABASE_URL": url,
                    "KMINE_BROKER_URL": REDIS, "KMINE_QUEUE": f"bench-{port}", "KMINE_DATA_DIR": str(a),
                    "KMINE_WEIGHTS_DIR": str(WEIGHTS), "KMINE_DEVICE": "cpu"})
        api = start([sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--no-worker", "--no-ui"], env,
                    folder / "api.log", b"Application startup complete")
        worker = None
        try:
            admin = (a / "admin_token").read_text().strip()
            http = httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=300,
                                headers={"Authorization": f"Bearer {admin}"})
            ds = http.post("/datasets", data={"name": "bench"}, files={"archive": ("d.zip", dataset_zip(data))}).json()["id"]
            split = http.post(f"/datasets/{ds}/splits", json={"val_fraction": 0.2, "test_fraction": 0,
                                                              "labelled_fraction": 0.5}).json()["id"]
            wenv = dict(env)
            if mode == "http":
                token = http.post("/tokens", json={"name": "bench", "role": "worker"}).json()["token"]
                wenv.update({"KMINE_DATA_DIR": str(folder / "worker"), "KMINE_API_URL": f"http://127.0.0.1:{port}",
                             "KMINE_WORKER_TOKEN": token})
            worker = start([sys.executable, "-m", "server.cli", "worker"], wenv, folder / "worker.log", b"ready.")
            job_id = http.post("/jobs", json={"kind": "train", "split_id": split, "config": CONFIG}).json()["id"]
            while (job := http.get(f"/jobs/{job_id}").json())["status"] not in ("succeeded", "failed", "cancelled"):
                time.sleep(1)
            assert job["status"] == "succeeded", job["error"]
        finally:
            if worker is not None:
                stop(worker)
            stop(api)
    return summarise(mode, job, folder / "worker" / "transfers.log")


def summarise(mode: str, job: dict, transfers: Path) -> dict:
    stamps = [datetime.fromisoformat(m["created_at"]) for m in job["metrics"]]
    started = datetime.fromisoformat(job["started_at"])
    walls = [(b - a).total_seconds() for a, b in zip([started, *stamps], stamps)]
    computes = [m["record"]["seconds"] for m in job["metrics"]]
    moved = [line.split() for line in transfers.read_text().splitlines()] if transfers.exists() else []
    out = {"mode": mode, "epochs": len(walls),
           "first_epoch_wall_minus_compute_s": round(walls[0] - computes[0], 2),
           "later_epochs_mean_wall_s": round(sum(walls[1:]) / max(1, len(walls) - 1), 2),
           "later_epochs_mean_overhead_s": round(sum(w - c for w, c in zip(walls[1:], computes[1:])) / max(1, len(walls) - 1), 2)}
    for way in ("get", "put"):
        rows = [int(n) for w, _, n in moved if w == way]
        out[f"{way}_blobs"], out[f"{way}_bytes"] = len(rows), sum(rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="images/ + masks/ (default: the COVID sample)")
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="kmine-remote-") as tmp:
        for mode in ("shared", "http"):
            rows.append(run_mode(mode, args.data, Path(tmp) / mode))
    shared, far = rows
    report = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "machine": f"{platform.node()}: "
              f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}", "config": CONFIG, "rows": rows,
              "added_s_per_epoch": round(far["later_epochs_mean_overhead_s"] - shared["later_epochs_mean_overhead_s"], 2),
              "added_s_first_epoch": round(far["first_epoch_wall_minus_compute_s"]
                                           - shared["first_epoch_wall_minus_compute_s"], 2)}
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
