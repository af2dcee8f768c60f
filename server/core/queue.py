"""The Celery application both sides use: the API sends ``kmine.run_job`` by name, the
worker (``worker/``) registers it. Embedded mode's broker is kombu's SQLAlchemy transport on a
SQLite file, production's is Redis: the same code, another URL."""

from __future__ import annotations

from functools import lru_cache

from celery import Celery

from server.core.devices import JOB_DEVICES
from server.core.settings import Settings, get_settings

TASK_NAME = "kmine.run_job"
DEVICES = JOB_DEVICES  # a worker takes jobs for "any" device and for its own (kmine worker --queue gpu|cpu)


@lru_cache(maxsize=4)
def _app(broker_url: str, queue: str) -> Celery:
    app = Celery("kmine", broker=broker_url)
    app.conf.update(
        task_default_queue=queue,
        task_acks_late=True,              # a job whose worker dies is delivered again
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,     # one job at a time per worker process
        worker_concurrency=1,
        task_ignore_result=True,          # state lives in the database, not a result backend
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # Celery's default, said here: worker/main.py leaves out Celery's warning about a root
        # worker because messages are JSON only (pickle would let a message run code).
        accept_content=["json"],
    )
    if broker_url.startswith("sqla+"):
        # kombu's SQLAlchemy transport hands its options to create_engine; it polls the table.
        app.conf.broker_transport_options = {}
        app.conf.broker_connection_timeout = 10
    else:
        # Redis: an unacknowledged job (its worker died) is delivered again after this long;
        # the database lease usually requeues it sooner.
        app.conf.broker_transport_options = {"visibility_timeout": 3600}
    return app


def celery_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    if settings.broker_url.startswith("sqla+"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return _app(settings.broker_url, settings.queue)


def queue_name(settings: Settings, device: str) -> str:
    """The broker queue of jobs for ``device``: ``kmine`` for any, ``kmine.gpu``, ``kmine.cpu``."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}")
    return settings.queue if device == "any" else f"{settings.queue}.{device}"


def worker_queues(settings: Settings, device: str) -> list[str]:
    """The queues a worker for ``device`` takes jobs from: any device's, and its own."""
    return [queue_name(settings, d) for d in dict.fromkeys(("any", device))]


def enqueue(job_id: int, settings: Settings | None = None, device: str = "any") -> None:
    settings = settings or get_settings()
    celery_app(settings).send_task(TASK_NAME, args=[job_id], queue=queue_name(settings, device))


def resend_stale(settings: Settings) -> list[int]:
    """Jobs whose worker died (their lease ran out) back to their device's queue; their ids."""
    from server.core.db import session_scope
    from server.core.jobs import requeue_stale
    from server.core.models import Job

    with session_scope(settings) as session:
        ids = requeue_stale(session, settings)
        targets = [(job_id, getattr(session.get(Job, job_id), "device", None) or "any") for job_id in ids]
    for job_id, device in targets:
        enqueue(job_id, settings, device)
    return ids


def broker_ok(settings: Settings | None = None) -> tuple[bool, str]:
    try:
        with celery_app(settings).connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
        return True, "ok"
    except Exception as err:  # readiness reports any failure
        return False, f"{err.__class__.__name__}: {err}"
