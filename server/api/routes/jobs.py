"""Jobs: train, evaluate, experiment; run by Celery workers, state in the database."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from server.api.deps import CurrentUser, SessionDep, SettingsDep
from server.core.models import Job
from server.services import jobs as svc

router = APIRouter(prefix="/jobs", tags=["jobs"])
JobId = Annotated[int, Path(ge=1, le=2**31 - 1, description="job id")]


class JobRequest(BaseModel):
    kind: Literal["train", "evaluate", "experiment"]
    split_id: int | None = Field(None, ge=1, description="split to train/evaluate on (evaluate: default the model's)")
    model_id: int | None = Field(None, ge=1, description="evaluate: the model to score")
    config: dict[str, Any] = Field(default_factory=dict, description=(
        "train: kmine TrainConfig settings (schedule supervised|one-time|continuous, encoder, size, max_epochs, "
        "early_stop, batch_size, lr, teacher, prompts{kinds,n_points,...}, seed, labelled_fraction ...); "
        "evaluate: subset, mode, frame; experiment: name, fractions, schedules, teachers, prompts, seeds, train, subset, frame"))


def job_or_404(session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(404, f"job {job_id} not found")
    return job


@router.post("", status_code=201, summary="Submit a job")
def submit(body: JobRequest, session: SessionDep, settings: SettingsDep, _: CurrentUser):
    job = svc.submit(session, settings, body.kind, body.split_id, body.model_id, body.config)
    return svc.job_view(session, job)


@router.get("", summary="List jobs, newest first")
def list_jobs(session: SessionDep, _: CurrentUser,
              status: Annotated[Literal["queued", "running", "succeeded", "failed", "cancelled"] | None, Query()] = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 100):
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if status:
        query = query.where(Job.status == status)
    return [svc.job_view(session, j, with_metrics=False) for j in session.scalars(query)]


@router.get("/{job_id}", summary="Status, progress, per-epoch metrics, pseudo-label quality and log tail")
def show(job_id: JobId, session: SessionDep, _: CurrentUser):
    return svc.job_view(session, job_or_404(session, job_id))


@router.post("/{job_id}/cancel", summary="Cancel a queued or running job")
def cancel(job_id: JobId, session: SessionDep, _: CurrentUser):
    return svc.job_view(session, svc.cancel(session, job_or_404(session, job_id)), with_metrics=False)
