"""Jobs: train, evaluate, experiment; run by Celery workers, state in the database."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from server.api.deps import JobDep, SessionDep, SettingsDep
from server.api.schemas.choices import JobStatus
from server.api.schemas.common import errors
from server.api.schemas.jobs import EpochMetricOut, JobDetail, JobOut, JobRequest, QualityOut
from server.core.models import Job
from server.services import jobs as svc

router = APIRouter(prefix="/jobs", tags=["jobs"])


def job_detail(session, job: Job) -> JobDetail:
    return JobDetail.of(job, log_tail=job.log_tail or "",
                        metrics=[EpochMetricOut.of(m) for m in svc.epoch_metrics(session, job.id)],
                        pseudo_label_quality=[QualityOut.of(q) for q in svc.pseudo_label_quality(session, job.id)])


@router.post("", status_code=201, response_model=JobDetail, responses=errors(404, 503), summary="Submit a job",
             description="`kind` picks the body: `train` (split_id, config: training settings), `evaluate` "
                         "(model_id, optional split_id, config: subset, mode, frame) or `experiment` (split_id, "
                         "config: fractions × schedules × teachers × prompts × strategies × seeds). Settings left "
                         "out take the engine's defaults; GET /api/v1/options lists the choices.")
def submit(body: JobRequest, session: SessionDep, settings: SettingsDep):
    job = svc.submit(session, settings, body.kind, body.split_id, body.model_id, body.stored_config(), body.device)
    return job_detail(session, job)


@router.get("", response_model=list[JobOut], summary="List jobs, newest first")
def list_jobs(session: SessionDep, status: Annotated[JobStatus | None, Query()] = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 100):
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if status:
        query = query.where(Job.status == status)
    return [JobOut.of(j) for j in session.scalars(query)]


@router.get("/{job_id}", response_model=JobDetail, responses=errors(404),
            summary="Status, progress, per-epoch metrics, pseudo-label quality and log tail")
def show(job: JobDep, session: SessionDep):
    return job_detail(session, job)


@router.post("/{job_id}/cancel", response_model=JobOut, responses=errors(404, 409),
             summary="Cancel a queued or running job")
def cancel(job: JobDep, session: SessionDep):
    return JobOut.of(svc.cancel(session, job))
