"""Load on the prediction API, loopback only, bounded in count and time: one run prints every
figure and each ratio with its target.

    python benchmarks/load.py --out benchmarks/results/load-cpu2.json
    python benchmarks/load.py --requests 96 --training ...   # more requests; a training job too

It starts ``kmine serve`` (embedded: SQLite, the local worker, the demo dataset and its first
model) in a fresh data folder, waits for the demo model, then measures on the demo's images:

- in process: the same checkpoint in a :class:`kmine.predict.Predictor` with the API's torch
  threads, image after image (already decoded): the ceiling the API is held to;
- the API with 1 and with 8 concurrent clients, student mode and refine mode on images whose
  SAM encodings are cached: throughput, p50/p95 latency, errors;
- ``/health/live`` latency while 8 clients predict (a probe every 20 ms);
- with ``--training``, the same with a training job running on the local worker.

The clients' threads run at nice 10 (the load generator is on the server's machine; the
``/health/live`` probe and the in-process baseline at normal priority).

Targets (issue 13): 8 clients' throughput ≥ 0.9 × in process and ≥ 1 × one client's;
``/health/live`` p99 ≤ 50 ms under the 8-client load; no errors.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT.parent / "shared" / "data" / "covid-qu-ex-sample"
TARGETS = {"api8_vs_in_process": 0.9, "api8_vs_api1": 1.0, "health_p99_ms": 50.0, "errors": 0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``kmine serve`` in a fresh data folder; its log in ``<data>/serve.log``."""

    def __init__(self, data: Path, limit_s: float):
        self.data, self.port = data, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "KMINE_DATA_DIR": str(data), "KMINE_DEVICE": "cpu"}
        self.log = (data / "serve.log").open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port", str(self.port), "--no-ui"],
                                     cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + limit_s
        while not (data / "admin_token").is_file() or not self._live():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start; see {data / 'serve.log'}")
            time.sleep(0.5)
        self.http = httpx.Client(base_url=self.base, timeout=600,
                                 headers={"Authorization": f"Bearer {(data / 'admin_token').read_text().strip()}"})

    def _live(self) -> bool:
        try:
            return httpx.get(f"{self.base}/health/live", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def torch_threads(self) -> int:
        """The API's torch threads, as ``kmine serve`` logged them."""
        for line in (self.data / "serve.log").read_text().splitlines():
            if "torch threads: API " in line:
                return int(line.split("torch threads: API ")[1].split(",")[0])
        return len(os.sched_getaffinity(0))

    def wait_model(self, limit_s: float) -> dict:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            active = [m for m in self.http.get("/api/v1/models").json() if m["active"]]
            if active:
                return active[0]
            time.sleep(2)
        raise SystemExit("the demo model was not trained in time")

    def stop(self) -> None:
        os.killpg(self.proc.pid, 15)
        self.proc.wait(60)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def api_phase(server: Server, images: list[tuple[str, bytes]], mode: str, clients: int, requests: int,
              limit_s: float, probe: bool = False) -> dict:
    """``requests`` predictions from ``clients`` threads (each its own connection), round-robin
    over ``images``; stops early at ``limit_s``. With ``probe``, ``/health/live`` every 20 ms."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    health: list[float] = []
    lock, stop = threading.Lock(), threading.Event()
    counter = iter(range(requests))
    deadline = time.monotonic() + limit_s

    def client() -> None:
        # The load generator shares this machine with the server: at nice 10 it takes the cores
        # from the server about as little as a client on another machine would.
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        with httpx.Client(base_url=server.base, headers=server.http.headers, timeout=600) as http:
            for i in counter:
                if time.monotonic() > deadline:
                    return
                name, data = images[i % len(images)]
                t0 = time.perf_counter()
                r = http.post("/api/v1/predict", data={"mode": mode}, files={"image": (name, data)})
                with lock:
                    latencies.append(time.perf_counter() - t0)
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    def prober() -> None:
        with httpx.Client(base_url=server.base, timeout=60) as http:
            while not stop.wait(0.02):
                t0 = time.perf_counter()
                http.get("/health/live")
                health.append(time.perf_counter() - t0)

    probe_thread = threading.Thread(target=prober) if probe else None
    if probe_thread:
        probe_thread.start()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    stop.set()
    if probe_thread:
        probe_thread.join()
    ok = statuses.get(200, 0)
    out = {"mode": mode, "clients": clients, "requests": len(latencies), "ok": ok, "statuses": statuses,
           "errors": len(latencies) - ok, "wall_s": wall, "throughput_per_s": ok / wall,
           "p50_ms": percentile(latencies, 50) * 1e3, "p95_ms": percentile(latencies, 95) * 1e3}
    if probe:
        out.update(health_probes=len(health), health_p50_ms=percentile(health, 50) * 1e3,
                   health_p99_ms=percentile(health, 99) * 1e3, health_max_ms=max(health) * 1e3)
    return out


def in_process(checkpoint: Path, images: list[tuple[str, bytes]], mode: str, threads: int, requests: int) -> dict:
    """The same checkpoint and images in this process, one after another (decoded beforehand)."""
    import torch

    from kmine.data import load_image
    from kmine.predict import Predictor
    from kmine.teacher import build_teacher

    torch.set_num_threads(threads)
    teacher = build_teacher("mobilesam") if mode == "refine" else None  # encodings cached in memory
    predictor = Predictor.from_checkpoint(checkpoint, teacher=teacher, trace=True)  # as server.core.runtime builds it
    rgbs = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in images:
            (Path(tmp) / name).write_bytes(data)
            rgbs.append(load_image(Path(tmp) / name))
    for rgb in rgbs:  # warm: the teacher's encodings cached as in the API's refine phase
        predictor.predict(rgb, mode)
    t0 = time.perf_counter()
    for i in range(requests):
        predictor.predict(rgbs[i % len(rgbs)], mode)
    wall = time.perf_counter() - t0
    return {"mode": mode, "requests": requests, "wall_s": wall, "throughput_per_s": requests / wall, "threads": threads}


def judge(results: dict, key: str) -> dict:
    """Each ratio of one load condition with its target and whether it is met."""
    targets = {}
    for mode in ("student", "refine"):
        one, eight, base = (results.get(f"{key}/{mode}/{n}") for n in ("api1", "api8", "in_process"))
        if not (one and eight):
            continue
        if base:
            ratio = eight["throughput_per_s"] / base["throughput_per_s"]
            targets[f"{mode}: api8 / in process"] = (ratio, TARGETS["api8_vs_in_process"], ratio >= TARGETS["api8_vs_in_process"])
        ratio = eight["throughput_per_s"] / one["throughput_per_s"]
        targets[f"{mode}: api8 / api1"] = (ratio, TARGETS["api8_vs_api1"], ratio >= TARGETS["api8_vs_api1"])
        p99 = eight["health_p99_ms"]
        targets[f"{mode}: /health/live p99 ms (8 clients)"] = (p99, TARGETS["health_p99_ms"], p99 <= TARGETS["health_p99_ms"])
        errors = one["errors"] + eight["errors"]
        targets[f"{mode}: errors"] = (errors, TARGETS["errors"], errors == 0)
    return targets


def markdown(report: dict) -> str:
    """The report as BENCHMARKS.md tables: each measurement, then each ratio with its target."""
    lines = ["| condition / mode / where | clients | requests | throughput (/s) | p50 (ms) | p95 (ms) | "
             "/health/live p99 (ms) | errors |", "|---|---|---|---|---|---|---|---|"]
    for key, r in report["results"].items():
        if not isinstance(r, dict):
            continue
        cells = [key, r.get("clients", "in process"), r["requests"], f"{r['throughput_per_s']:.2f}",
                 *(f"{r[k]:.0f}" if k in r else "" for k in ("p50_ms", "p95_ms")),
                 f"{r['health_p99_ms']:.1f}" if "health_p99_ms" in r else "", r.get("errors", "")]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += ["", "| ratio | value | target | met |", "|---|---|---|---|"]
    for key, rows in report["targets"].items():
        for name, row in rows.items():
            lines.append(f"| {key}: {name} | {row['value']:.3f} | {row['target']:g} | {'yes' if row['met'] else 'no'} |")
    return "\n".join(lines)


def start_training(server: Server, dataset_id: int, limit_s: float) -> int:
    """A long training job on the local worker; returns once it trains (its first epoch logged)."""
    split = server.http.post(f"/api/v1/datasets/{dataset_id}/splits", json={
        "val_fraction": 0.2, "test_fraction": 0.0, "labelled_fraction": 1.0, "seed": 1}).json()
    job = server.http.post("/api/v1/jobs", json={"kind": "train", "split_id": split["id"], "config": {
        "schedule": "supervised", "max_epochs": 1000, "size": 224, "batch_size": 4}}).json()
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        state = server.http.get(f"/api/v1/jobs/{job['id']}").json()
        if state["status"] == "running" and state["progress"]["fraction"] > 0:
            return job["id"]
        if state["status"] in ("failed", "succeeded", "cancelled"):
            raise SystemExit(f"the training job ended: {state['status']}")
        time.sleep(1)
    raise SystemExit("the training job did not start in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=48, help="predictions per phase")
    parser.add_argument("--modes", default="student,refine")
    parser.add_argument("--training", action="store_true", help="also measure with a training job running")
    parser.add_argument("--phase-limit", type=float, default=600, help="seconds a phase may take at most")
    parser.add_argument("--data-dir", type=Path, help="reuse this data folder (its demo model) instead of a fresh one")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--table-from", type=Path, help="print the markdown tables of an earlier report and exit")
    args = parser.parse_args()
    if args.table_from:
        print(markdown(json.loads(args.table_from.read_text())))
        return

    modes = args.modes.split(",")
    images = [(p.name, p.read_bytes()) for p in sorted((DEMO / "images").iterdir())]
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="kmine-load-") as tmp:
        if args.data_dir:
            args.data_dir.mkdir(parents=True, exist_ok=True)
        server = Server(args.data_dir or Path(tmp), limit_s=300)
        try:
            model = server.wait_model(limit_s=1200)
            threads = server.torch_threads()
            checkpoint = Path(tmp) / "student.pt"  # the very checkpoint the API serves, fetched through it
            checkpoint.write_bytes(server.http.get(f"/api/v1/models/{model['id']}/download").content)
            print(f"model {model['id']} ({model['name']}); API torch threads {threads}; {len(images)} images", flush=True)
            conditions = ["idle"] + (["training"] if args.training else [])
            for key in conditions:
                if key == "training":
                    job_id = start_training(server, model["dataset_id"], limit_s=600)
                    print(f"training job {job_id} running", flush=True)
                for mode in modes:
                    # warm: the model loaded, every image's SAM encoding cached
                    api_phase(server, images, mode, clients=1, requests=len(images), limit_s=args.phase_limit)
                    if key == "idle":
                        results[f"{key}/{mode}/in_process"] = in_process(checkpoint, images, mode, threads, args.requests)
                    for clients in (1, 8):
                        results[f"{key}/{mode}/api{clients}"] = api_phase(
                            server, images, mode, clients, args.requests, args.phase_limit, probe=True)
                    for part in ("in_process", "api1", "api8"):
                        if f"{key}/{mode}/{part}" in results:
                            print(f"{key}/{mode}/{part}: {json.dumps(results[f'{key}/{mode}/{part}'])}", flush=True)
                if key == "training":
                    server.http.post(f"/api/v1/jobs/{job_id}/cancel")
            lane = server.http.get("/health/live")  # still alive at the end
            results["alive_at_end"] = lane.status_code == 200
        finally:
            server.stop()

    targets = {key: judge(results, key) for key in ("idle", "training")}
    print("\nratio                                          value    target   met")
    for key, rows in targets.items():
        for name, (value, target, met) in rows.items():
            print(f"{key + ': ' + name:46s} {value:8.3f} {target:8.3f}   {'yes' if met else 'NO'}")
    machine = {"cpu": platform.processor() or platform.machine(), "cores": len(os.sched_getaffinity(0)),
               "python": platform.python_version()}
    try:
        machine["model_name"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "command": " ".join(sys.argv), "machine": machine, "requests": args.requests,
            "results": results, "targets": {k: {n: {"value": v, "target": t, "met": m} for n, (v, t, m) in rows.items()}
                                            for k, rows in targets.items()},
        }, indent=2))
        print(f"written {args.out}")


if __name__ == "__main__":
    main()
