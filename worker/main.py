"""Starting a worker process: one job at a time on this machine's device."""

from __future__ import annotations

from server.core.settings import Settings


def run_worker(settings: Settings, loglevel: str = "INFO", hostname: str | None = None) -> None:
    """Run the Celery worker until stopped (``kmine worker``, or ``python -m worker``)."""
    settings.check_production()
    from worker.celery_app import app as celery

    argv = ["worker", f"--loglevel={loglevel}", "--pool=solo", "--concurrency=1", "-Q", settings.queue,
            "--without-gossip", "--without-mingle"]
    if hostname:
        argv.append(f"--hostname={hostname}")
    celery.worker_main(argv)
