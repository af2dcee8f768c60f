"""``celery -A worker.celery_app worker`` (what ``kmine worker`` runs)."""

from __future__ import annotations

import logging

from celery.signals import worker_ready

from server.core.queue import TASK_NAME, celery_app
from server.core.settings import get_settings

log = logging.getLogger(__name__)
app = celery_app(get_settings())


@app.task(name=TASK_NAME, bind=True, acks_late=True)
def run_job(self, job_id: int) -> None:
    from worker.runner import run_job as run

    run(int(job_id), get_settings(), self.request.hostname)


@worker_ready.connect
def _requeue_on_start(**_):
    """Jobs whose worker died while nothing was watching go back to the queue."""
    from server.core.queue import resend_stale

    try:
        resend_stale(get_settings())
    except Exception:
        log.exception("could not requeue stale jobs at start")
