"""Submitting jobs: check the request against the engine, record the job, send it to the queue.

The API validates job bodies with typed schemas first (``server/api/schemas/jobs.py``); the
checks here are the final word, shared with every other caller (``kmine serve``'s demo job):
the engine's own constructors (``TrainConfig.from_dict``, ``ExperimentConfig``) must accept
what a job will hand the worker. ``config`` is stored as the plain JSON the worker reads.
"""

from __future__ import annotations

import dataclasses
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from kmine.data import SUBSETS
from kmine.evaluation import FRAMES
from kmine.predict import MODES
from kmine.text import shown
from kmine.training import TrainConfig
from server.core.errors import BadInput
from server.core.jobs import TERMINAL, now
from server.core.models import EpochMetric, Job, Model, PseudoLabelQuality, Split
from server.core.queue import enqueue
from server.core.settings import Settings

# Paths and devices are the server's business, never the client's.
SERVER_OWNED = {"data", "split", "weights_dir", "cache_dir", "teacher_checkpoint", "device", "cache_items", "encoder_init"}
TRAIN_KEYS = {f.name for f in dataclasses.fields(TrainConfig)} - SERVER_OWNED
# An experiment's pretraining: the server names its data, split, device and weights; each arm its seed.
PRETRAIN_SERVER_OWNED = {"data", "split", "device", "weights_dir", "seed"}
# Strategy names become folder names of an experiment's arms: plain words only.
STRATEGY_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$"
EVALUATE_DEFAULTS = {"subset": "test", "mode": "student", "frame": "full"}


def check_train_config(config: dict) -> dict:
    """``config`` when the engine accepts it as the client's part of a :class:`TrainConfig`."""
    if not isinstance(config, dict):
        raise BadInput("config must be an object of training settings")
    refused = sorted(set(config) & SERVER_OWNED)
    if refused:
        raise BadInput(f"training settings {', '.join(refused)} are set by the server, not the client")
    unknown = sorted(set(config) - TRAIN_KEYS)
    if unknown:
        raise BadInput(f"unknown training settings: {', '.join(unknown)}; known: {', '.join(sorted(TRAIN_KEYS))}")
    try:
        TrainConfig.from_dict({**config, "data": "x"})  # the engine's own checks: schedule, teacher, sizes
    except (TypeError, ValueError) as err:
        raise BadInput(f"invalid training config: {err}") from None
    return config


def check_evaluate_config(config: dict) -> dict:
    """``config`` with the defaults filled in (subset, mode, frame) when each is one the engine knows."""
    unknown = set(config) - set(EVALUATE_DEFAULTS)
    if unknown:
        raise BadInput(f"unknown evaluate settings: {', '.join(sorted(unknown))} (subset, mode, frame)")
    config = {**EVALUATE_DEFAULTS, **config}
    for name, choices in (("subset", SUBSETS), ("mode", MODES), ("frame", FRAMES)):
        if config[name] not in choices:
            raise BadInput(f"{name} must be one of {', '.join(choices)}")
    return config


def check_experiment_config(config: dict, default_name: str) -> dict:
    """``config`` (with its name filled in) when the engine accepts it as an experiment on one split."""
    from kmine.experiment import DatasetSpec, ExperimentConfig

    names = {f.name for f in dataclasses.fields(ExperimentConfig)} - {"datasets"}
    unknown = set(config) - names
    if unknown:
        raise BadInput(f"unknown experiment settings: {', '.join(sorted(unknown))}; known: {', '.join(sorted(names))}")
    config = {**config, "name": config.get("name") or default_name}
    check_train_config(config.get("train", {}))
    try:
        for name in config.get("strategies") or {}:
            if not re.match(STRATEGY_NAME, str(name)):
                raise ValueError(f"strategy name {shown(name)} must be a plain word (letters, digits, _ and -; at most 40)")
        pretrain = config.get("pretrain")
        if pretrain is not None:
            refused = sorted(set(pretrain) & PRETRAIN_SERVER_OWNED)
            if refused:
                raise ValueError(f"pretrain settings {', '.join(refused)} are set by the server, not the client")
        # schedules, teachers, prompt kinds and strategies: the engine's own checks
        experiment = ExperimentConfig(datasets=[], **config)
        if pretrain is not None:
            experiment.simclr_config(DatasetSpec(path="x"), 0)
    except (TypeError, ValueError, AttributeError) as err:
        raise BadInput(f"invalid experiment config: {err}") from None
    return config


def _split(session: Session, split_id) -> Split:
    if not isinstance(split_id, int):
        raise BadInput("split_id (an integer) is required")
    split = session.get(Split, split_id)
    if split is None:
        raise BadInput(f"split {split_id} not found", 404)
    return split


def submit(session: Session, settings: Settings, kind: str, split_id: int | None, model_id: int | None,
           config: dict, device: str = "any") -> Job:
    """Check and record a job of ``kind`` and send it to the queue of ``device``'s workers; 404
    for a missing split or model, 503 (the job marked failed) when the broker cannot be reached."""
    config = dict(config or {})
    if kind == "train":
        split = _split(session, split_id)
        config = check_train_config(config)
    elif kind == "evaluate":
        model = session.get(Model, model_id) if isinstance(model_id, int) else None
        if model is None:
            raise BadInput(f"model {model_id} not found; evaluate needs model_id", 404)
        if split_id is None:
            job = session.get(Job, model.job_id) if model.job_id else None
            split_id = job.split_id if job else None
            if split_id is None:
                raise BadInput(f"model {model_id} was not trained here on a split: name split_id")
        split = _split(session, split_id)
        config = check_evaluate_config(config)
    elif kind == "experiment":
        split = _split(session, split_id)
        config = check_experiment_config(config, f"experiment-{split.id}")
    else:
        raise BadInput(f"job kind {shown(kind)} unknown; choose train, evaluate or experiment")
    job = Job(kind=kind, dataset_id=split.dataset_id, split_id=split.id, model_id=model_id, config=config, device=device,
              max_attempts=settings.job_max_attempts, log_tail=f"[{now():%H:%M:%S}] queued")
    session.add(job)
    session.commit()
    try:
        enqueue(job.id, settings, device)
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


def epoch_metrics(session: Session, job_id: int) -> list[EpochMetric]:
    return list(session.scalars(select(EpochMetric).where(EpochMetric.job_id == job_id).order_by(EpochMetric.id)))


def pseudo_label_quality(session: Session, job_id: int) -> list[PseudoLabelQuality]:
    return list(session.scalars(select(PseudoLabelQuality).where(PseudoLabelQuality.job_id == job_id)
                                .order_by(PseudoLabelQuality.id)))
