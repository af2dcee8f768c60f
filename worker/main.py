"""Starting a worker process: one job at a time on this machine's device."""

from __future__ import annotations

import warnings

from server.core.settings import Settings, SettingsError


def run_worker(settings: Settings, loglevel: str = "INFO", hostname: str | None = None, device: str = "any") -> None:
    """Run the Celery worker until stopped (``kmine worker``, or ``python -m worker``), taking
    jobs for any device and for ``device`` (gpu or cpu)."""
    settings.check_production()
    import os

    from server.core.runtime import torch_threads

    # Before torch is imported: its OpenMP pool takes this once (the Runtime sets torch's too).
    os.environ.setdefault("OMP_NUM_THREADS", str(torch_threads(settings)))
    from celery.exceptions import SecurityWarning

    from server.core.queue import worker_queues
    from worker.celery_app import app as celery

    if device == "gpu":
        import torch

        if not torch.cuda.is_available():
            raise SettingsError("kmine worker --queue gpu: no CUDA device is visible to this process")

    # Celery warns at every start of a worker running as root. The danger it means is a root
    # worker accepting pickle (a message could run code as root; Celery refuses to start then);
    # ours accepts JSON only (server.core.queue). Containers and sandboxes commonly run as root
    # (the Docker image runs as the user kmine), so the warning only alarms: leave it out.
    warnings.filterwarnings("ignore", message="You're running the worker with superuser privileges",
                            category=SecurityWarning)

    argv = ["worker", f"--loglevel={loglevel}", "--pool=solo", "--concurrency=1", "-Q", ",".join(worker_queues(settings, device)),
            "--without-gossip", "--without-mingle"]
    if hostname:
        argv.append(f"--hostname={hostname}")
    celery.worker_main(argv)
