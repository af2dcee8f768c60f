"""Submitting jobs: validate the request fully, record the job, send it to the queue."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select
from sqlalchemy.orm import Session

from kmine.data import SUBSETS
from kmine.training import TrainConfig
from server.core.jobs import TERMINAL, now
from server.core.models import EpochMetric, Job, Model, PseudoLabelQuality, Split
from server.core.queue import enqueue
from server.core.settings import Settings
from server.core.errors import BadInput

# Paths and devices are the server's business, never the client's.
SERVER_OWNED = {"data", "split", "weights_dir", "cache_dir", "teacher_checkpoint", "device", "cache_items", "encoder_init"}
TRAIN_KEYS = {f.name for f in dataclasses.fields(TrainConfig)} - SERVER_OWNED


def check_train_config(config: dict) -> dict:
    if not isinstance(config, dict):
        raise BadInput("config must be an object of training settings")
    refused = sorted(set(config) & SERVER_OWNED)
    if refused:
        raise BadInput(f"training settings {', '.join(refused)} are set by the server, not the client")
    unknown = sorted(set(config) - TRAIN_KEYS)
    if unknown:
        raise BadInput(f"unknown training settings: {', '.join(unknown)}; known: {', '.join(sorted(TRAIN_KEYS))}")
    try:
        tc = TrainConfig.from_dict({**config, "data": "x"})
    except (TypeError, ValueError) as err:
        raise BadInput(f"invalid training config: {err}") from None
    from kmine.teacher import TEACHER_NAMES

    if tc.teacher not in TEACHER_NAMES:
        raise BadInput(f"teacher {tc.teacher!r} unknown; choose one of {', '.join(TEACHER_NAMES)}")
    if tc.max_epochs < 1 or tc.batch_size < 1 or tc.size < 32:
        raise BadInput("max_epochs and batch_size must be >= 1 and size >= 32")
    return config


def _split(session: Session, split_id) -> Split:
    if not isinstance(split_id, int):
        raise BadInput("split_id (an integer) is required")
    split = session.get(Split, split_id)
    if split is None:
        raise BadInput(f"split {split_id} not found", 404)
    return split


def submit(session: Session, settings: Settings, kind: str, split_id: int | None, model_id: int | None,
           config: dict) -> Job:
    config = dict(config or {})
    dataset_id = None
    if kind == "train":
        split = _split(session, split_id)
        dataset_id = split.dataset_id
        check_train_config(config)
    elif kind == "evaluate":
        model = session.get(Model, model_id) if isinstance(model_id, int) else None
        if model is None:
            raise BadInput(f"model {model_id} not found; evaluate needs model_id", 404)
        if split_id is None:
            job = session.get(Job, model.job_id) if model.job_id else None
            split_id = job.split_id if job else None
        split = _split(session, split_id)
        dataset_id = split.dataset_id
        unknown = set(config) - {"subset", "mode", "frame"}
        if unknown:
            raise BadInput(f"unknown evaluate settings: {', '.join(sorted(unknown))} (subset, mode, frame)")
        if config.setdefault("subset", "test") not in SUBSETS:
            raise BadInput(f"subset must be one of {', '.join(SUBSETS)}")
        if config.setdefault("mode", "student") not in ("student", "refine"):
            raise BadInput("mode must be student or refine")
        if config.setdefault("frame", "full") not in ("crop", "full"):
            raise BadInput("frame must be crop or full")
    elif kind == "experiment":
        split = _split(session, split_id)
        dataset_id = split.dataset_id
        from kmine.experiment import ExperimentConfig

        names = {f.name for f in dataclasses.fields(ExperimentConfig)} - {"datasets"}
        unknown = set(config) - names
        if unknown:
            raise BadInput(f"unknown experiment settings: {', '.join(sorted(unknown))}; known: {', '.join(sorted(names))}")
        config.setdefault("name", f"experiment-{split.id}")
        check_train_config(config.get("train", {}))
        try:
            ExperimentConfig(datasets=[], **config)
        except (TypeError, ValueError) as err:
            raise BadInput(f"invalid experiment config: {err}") from None
    else:
        raise BadInput(f"job kind {kind!r} unknown; choose train, evaluate or experiment")
    job = Job(kind=kind, dataset_id=dataset_id, split_id=split.id, model_id=model_id, config=config,
              max_attempts=settings.job_max_attempts, log_tail=f"[{now():%H:%M:%S}] queued")
    session.add(job)
    session.commit()
    try:
        enqueue(job.id, settings)
    except Exception as err:  # the job must not wait forever for a message never sent
        job.status, job.finished_at, job.error = "failed", now(), f"could not reach the broker: {err}"
        session.commit()
        raise BadInput(f"job {job.id} could not be queued: the broker is unreachable ({err.__class__.__name__})", 503) from None
    return job


def cancel(session: Session, job: Job) -> Job:
    if job.status in TERMINAL:
        raise BadInput(f"job {job.id} has already {job.status}; nothing to cancel", 409)
    job.cancel_requested = True
    if job.status == "queued":
        job.status, job.finished_at = "cancelled", now()
    session.commit()
    return job


def job_view(session: Session, job: Job, with_metrics: bool = True) -> dict:
    out = {
        "id": job.id, "kind": job.kind, "status": job.status, "dataset_id": job.dataset_id,
        "split_id": job.split_id, "model_id": job.model_id, "config": job.config,
        "progress": {"phase": job.phase, "epoch": job.epoch, "fraction": job.fraction, "eta_seconds": job.eta_seconds},
        "attempts": job.attempts, "max_attempts": job.max_attempts, "cancel_requested": job.cancel_requested,
        "error": job.error, "result": job.result, "worker": job.worker,
        "created_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at,
    }
    if with_metrics:
        out["metrics"] = [
            {"phase": m.phase, "epoch": m.epoch, "train_loss": m.train_loss, "val_loss": m.val_loss,
             "val_dice": m.val_dice, "val_iou": m.val_iou, "record": m.record}
            for m in session.scalars(select(EpochMetric).where(EpochMetric.job_id == job.id).order_by(EpochMetric.id))
        ]
        out["pseudo_label_quality"] = [
            {"phase": q.phase, "epoch": q.epoch, "made": q.made, "skipped": q.skipped, "student_dice": q.student_dice,
             "teacher_dice": q.teacher_dice, "teacher_beats_student": q.teacher_beats_student,
             "pseudo_dice": q.pseudo_dice, "truebox_dice": q.truebox_dice, "n": q.n}
            for q in session.scalars(select(PseudoLabelQuality).where(PseudoLabelQuality.job_id == job.id).order_by(PseudoLabelQuality.id))
        ]
        out["log_tail"] = job.log_tail
    return out
