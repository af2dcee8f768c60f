"""Job state transitions shared by the API and the worker.

A job is claimed atomically (one UPDATE from ``queued``, or from ``running`` whose lease has
expired), so the same job never runs twice at once. A running job's worker renews its
lease; a job whose lease runs out (worker died) is put back in the queue while it has
attempts left and resumes from its run folder's ``last.pt``; otherwise it fails.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta, timezone
from typing import cast

from sqlalchemy import CursorResult, Result, and_, or_, select, update
from sqlalchemy.orm import Session

from server.core.models import Job
from server.core.settings import Settings

TERMINAL = ("succeeded", "failed", "cancelled")


def _rows(result: Result) -> int:
    """Rows an UPDATE changed (``session.execute`` types its answer as a plain Result)."""
    return cast(CursorResult, result).rowcount


def now() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def worker_name(hostname: str | None = None) -> str:
    """This process as a job's record names it: its worker's name (``kmine worker --hostname``,
    else the machine's) and its pid."""
    return f"{hostname or socket.gethostname()}:{os.getpid()}"


def claim(session: Session, job_id: int, settings: Settings, worker: str) -> bool:
    """Make ``job_id`` running on ``worker`` if it is queued (or running with an expired
    lease and attempts left). True when this call won the job."""
    t = now()
    result = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.cancel_requested.is_(False),
            Job.attempts < Job.max_attempts,
            or_(Job.status == "queued", and_(Job.status == "running", Job.lease_until < t)),
        )
        .values(status="running", worker=worker, attempts=Job.attempts + 1,
                lease_until=t + timedelta(seconds=settings.job_lease_seconds), started_at=t, error=None)
        .execution_options(synchronize_session=False)
    )
    won = _rows(result) == 1
    if won:  # the job's record names the worker of each attempt
        job = session.get(Job, job_id, populate_existing=True)
        if job is not None:
            job.workers = [*(job.workers or []), {"attempt": job.attempts, "worker": worker, "started_at": t.isoformat()}]
    session.commit()
    return won


def renew(session: Session, job_id: int, settings: Settings, worker: str) -> bool:
    """Extend the lease; False if the job is no longer this worker's."""
    result = session.execute(
        update(Job).where(Job.id == job_id, Job.status == "running", Job.worker == worker)
        .values(lease_until=now() + timedelta(seconds=settings.job_lease_seconds))
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return _rows(result) == 1


def finish(session: Session, job_id: int, worker: str, status: str, error: str | None = None,
           result: dict | None = None) -> bool:
    values = {"status": status, "finished_at": now(), "lease_until": None, "error": error}
    if result is not None:
        values["result"] = result
    if status == "succeeded":
        values["fraction"] = 1.0
        values["eta_seconds"] = 0.0
    res = session.execute(update(Job).where(Job.id == job_id, Job.status == "running", Job.worker == worker)
                          .values(**values).execution_options(synchronize_session=False))
    session.commit()
    return _rows(res) == 1


def requeue_stale(session: Session, settings: Settings) -> list[int]:
    """Running jobs whose lease expired: back to ``queued`` (to resume) while attempts are
    left, else ``failed``. Returns the ids requeued; the caller sends them to the broker."""
    t = now()
    stale = session.scalars(select(Job).where(Job.status == "running", Job.lease_until < t)).all()
    requeued = []
    for job in stale:
        if job.cancel_requested:
            job.status, job.finished_at, job.error = "cancelled", t, "cancelled while its worker was lost"
        elif job.attempts >= job.max_attempts:
            job.status, job.finished_at = "failed", t
            job.error = f"its worker stopped responding {job.attempts} times; giving up"
        else:
            job.status = "queued"
            job.log_tail = (job.log_tail or "") + f"\n[{t:%H:%M:%S}] worker {job.worker} lost; requeued to resume"
            requeued.append(job.id)
    session.commit()
    return requeued
