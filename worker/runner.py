"""Running one job: claim it, keep its lease, run kmine, write progress and results back.

The run folder ``<data_dir>/jobs/<id>/run`` is the same on every attempt, so a job retried
after its worker died resumes from ``last.pt``.
"""

from __future__ import annotations

import collections
import logging
import shutil
import threading
import time
import traceback
from pathlib import Path

import numpy as np
from sqlalchemy import select, update

from kmine.training import Callback, TrainConfig, TrainingCancelled
from kmine.training.config import MINING_SCHEDULES
from server.core import jobs as jobstate
from server.core.db import session_factory
from server.core.models import Dataset, EpochMetric, Job, Mask, Model, PseudoLabelQuality, clean_json
from server.core.settings import Settings
from kmine.weights import file_sha256
from server.core.storage import BlobStore
from worker.materialise import materialise

log = logging.getLogger(__name__)


class JobLog(logging.Handler):
    """The last lines of a job's log, kept for the database's ``log_tail``."""

    def __init__(self, lines: int = 60):
        super().__init__(logging.INFO)
        self.lines = collections.deque(maxlen=lines)
        self.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", "%H:%M:%S"))

    def emit(self, record):
        self.lines.append(self.format(record))

    def say(self, message: str) -> None:
        self.lines.append(f"[{time.strftime('%H:%M:%S')}] {message}")

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class Lease(threading.Thread):
    """Renews the job's lease until stopped; notes when the job is no longer ours."""

    def __init__(self, job_id: int, settings: Settings, worker: str):
        super().__init__(daemon=True, name=f"lease-{job_id}")
        self.job_id, self.settings, self.worker = job_id, settings, worker
        self.stopped = threading.Event()
        self.lost = False

    def run(self):
        every = max(1.0, self.settings.job_lease_seconds / 3)
        while not self.stopped.wait(every):
            try:
                with session_factory(self.settings)() as session:
                    if not jobstate.renew(session, self.job_id, self.settings, self.worker):
                        self.lost = True
                        return
            except Exception:
                log.exception("lease renewal failed for job %s", self.job_id)


class Progress(Callback):
    """Writes progress, per-epoch metrics and pseudo-label quality to the database and
    polls the job's ``cancel_requested`` flag."""

    def __init__(self, job_id: int, settings: Settings, config: TrainConfig, joblog: JobLog, lease: Lease):
        self.job_id, self.settings, self.joblog, self.lease = job_id, settings, joblog, lease
        self.caps = [config.epoch_cap("supervised")] + ([] if config.schedule == "supervised" else [config.epoch_cap("mining")])
        self.phase_index = 0
        self.started = time.monotonic()
        self.start_fraction: float | None = None
        self.last_write = 0.0
        self.cancel = False
        self.Session = session_factory(settings)

    def _fraction(self, epoch: float) -> float:
        return min(1.0, (sum(self.caps[: self.phase_index]) + epoch) / sum(self.caps))

    def _write(self, phase: str, epoch: int, fraction: float) -> None:
        if self.start_fraction is None:
            self.start_fraction = fraction
        done = fraction - self.start_fraction
        elapsed = time.monotonic() - self.started
        eta = elapsed * (1 - fraction) / done if done > 1e-6 else None
        with self.Session() as session:
            session.execute(update(Job).where(Job.id == self.job_id).values(
                phase=phase, epoch=epoch, fraction=fraction, eta_seconds=eta, log_tail=self.joblog.text))
            self.cancel = bool(session.scalar(select(Job.cancel_requested).where(Job.id == self.job_id)))
            session.commit()
        self.last_write = time.monotonic()

    def on_phase_start(self, phase, trainer):
        self.phase_index = 0 if phase == "supervised" else 1
        self.joblog.say(f"{phase} phase starts")
        self._write(phase, trainer.epoch, self._fraction(trainer.epoch))

    def on_batch(self, phase, epoch, step, steps):
        if time.monotonic() - self.last_write > 2.0:
            self._write(phase, epoch, self._fraction(epoch + step / max(1, steps)))  # step counts from 1

    def on_epoch_end(self, r):
        r = clean_json(r)
        self.joblog.say(f"{r['phase']} epoch {r['epoch'] + 1}: loss {r.get('train_loss')} val loss {r.get('val_loss')} "
                        f"Dice {r.get('val_dice')} IoU {r.get('val_iou')}")
        with self.Session() as session:
            session.add(EpochMetric(job_id=self.job_id, phase=r["phase"], epoch=r["epoch"], train_loss=r.get("train_loss"),
                                    val_loss=r.get("val_loss"), val_dice=r.get("val_dice"), val_iou=r.get("val_iou"), record=r))
            if "pseudo_made" in r:
                session.add(quality_row(self.job_id, r))
            session.commit()
        self._write(r["phase"], r["epoch"] + 1, self._fraction(r["epoch"] + 1))

    def should_stop(self) -> bool:
        return self.cancel or self.lease.lost


def quality_row(job_id: int, r: dict) -> PseudoLabelQuality:
    return PseudoLabelQuality(job_id=job_id, phase=r.get("phase", ""), epoch=r.get("epoch"), made=r.get("pseudo_made", 0),
                              skipped=r.get("pseudo_skipped", 0), student_dice=r.get("quality_student_dice"),
                              teacher_dice=r.get("quality_teacher_dice"),
                              teacher_beats_student=r.get("quality_teacher_beats_student"),
                              pseudo_dice=r.get("quality_pseudo_dice"), truebox_dice=r.get("quality_truebox_dice"),
                              n=r.get("quality_n"))


def run_job(job_id: int, settings: Settings) -> str:
    """Run job ``job_id`` if this worker can claim it; returns its final status (or 'skipped')."""
    worker = jobstate.worker_name()
    Session = session_factory(settings)
    with Session() as session:
        if not jobstate.claim(session, job_id, settings, worker):
            log.info("job %s not claimable (already running elsewhere, finished or cancelled)", job_id)
            return "skipped"
        job = session.get(Job, job_id)
        kind, config, split_id, model_id, dataset_id, attempt = (
            job.kind, dict(job.config), job.split_id, job.model_id, job.dataset_id, job.attempts)
    joblog = JobLog()
    handler_targets = [logging.getLogger("kmine"), logging.getLogger(__name__)]
    for lg in handler_targets:
        lg.addHandler(joblog)
        lg.setLevel(logging.INFO)
    joblog.say(f"attempt {attempt} on {worker}")
    lease = Lease(job_id, settings, worker)
    lease.start()
    folder = settings.jobs_dir / str(job_id)
    store = BlobStore(settings.blobs_dir)
    try:
        if split_id is None:
            raise ValueError("the job's split was deleted")
        with Session() as session:
            data, split_path, ids = materialise(session, store, split_id, folder)
        if kind == "train":
            result = _train(job_id, settings, config, data, split_path, ids, folder, dataset_id, joblog, lease)
        elif kind == "evaluate":
            result = _evaluate(settings, config, model_id, data, split_path)
        elif kind == "experiment":
            result = _experiment(settings, config, data, split_path, folder, dataset_id)
        else:
            raise ValueError(f"unknown job kind {kind!r}")
        status, error = "succeeded", None
        joblog.say("succeeded")
    except TrainingCancelled as err:
        status, error, result = ("cancelled", str(err), None)
        if lease.lost:  # not ours any more: another attempt owns it, leave the row alone
            status = "lost"
        joblog.say(f"stopped: {err}")
    except Exception as err:
        status, error, result = "failed", f"{err.__class__.__name__}: {err}", None
        joblog.say("failed: " + "".join(traceback.format_exception_only(type(err), err)).strip())
        log.exception("job %s failed", job_id)
    finally:
        lease.stopped.set()
        for lg in handler_targets:
            lg.removeHandler(joblog)
    if status != "lost":
        with Session() as session:
            session.execute(update(Job).where(Job.id == job_id).values(log_tail=joblog.text))
            session.commit()
            jobstate.finish(session, job_id, worker, status, error, clean_json(result) if result is not None else None)
    return status


def _train(job_id, settings, config, data, split_path, ids, folder, dataset_id, joblog, lease) -> dict:
    from kmine.training import train

    tc = TrainConfig.from_dict({**config, "data": str(data), "split": str(split_path),
                                "weights_dir": str(settings.resolved_weights_dir()), "device": settings.device,
                                "cache_dir": str(settings.encodings_dir)})
    result = train(tc, folder / "run", callbacks=[Progress(job_id, settings, tc, joblog, lease)])
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    digest = file_sha256(result.best_checkpoint)
    kept = settings.models_dir / f"job-{job_id}-{digest[:12]}.pt"
    shutil.copyfile(result.best_checkpoint, kept)
    Session = session_factory(settings)
    with Session() as session:
        dataset = session.get(Dataset, dataset_id) if dataset_id else None
        has_active = dataset is not None and session.scalar(
            select(Model.id).where(Model.dataset_id == dataset_id, Model.active.is_(True))) is not None
        model = Model(dataset_id=dataset_id, job_id=job_id, name=f"job {job_id} ({tc.schedule})",
                      config=clean_json(tc.to_dict() | {"data": None, "split": None, "weights_dir": None, "cache_dir": None}),
                      metrics=clean_json(result.best), checkpoint_path=str(kept), sha256=digest,
                      active=dataset is not None and not has_active)
        session.add(model)
        session.flush()
        session.execute(update(Job).where(Job.id == job_id).values(model_id=model.id))
        session.commit()
        model_id = model.id
    saved = _save_pseudo_labels(job_id, settings, tc, folder / "run", split_path, ids)
    return {"model_id": model_id, "best": result.best, "epochs": len([r for r in result.history if "val_loss" in r]),
            "pseudo_labels_saved": saved}


def _save_pseudo_labels(job_id, settings, tc, run_dir: Path, split_path: Path, ids: dict[str, int]) -> int:
    """The run's pseudo-labels (kept in ``last.pt``: the one-time ones, or in the continuous
    schedule each image's latest) as ``pseudo_label`` masks at each image's full size, so the
    Label view can start from them."""
    last = run_dir / "last.pt"
    if tc.schedule not in MINING_SCHEDULES or not last.exists():
        return 0
    from kmine.data import load_split, mask_png, uncrop_mask
    from kmine.fileio import load_torch
    from kmine.training.loop import unpack_code
    from kmine.training.strategy import code_mask

    state = load_torch(last)
    labels = state.get("pseudo_labels") or {}
    unlabelled = load_split(split_path).unlabelled
    store = BlobStore(settings.blobs_dir)
    size = tc.size
    with session_factory(settings)() as session:
        from server.core.models import Image

        for index, bits in labels.items():
            stem = unlabelled[int(index)]
            image = session.get(Image, ids[stem])
            crop = code_mask(unpack_code(bits.numpy(), size))
            session.add(Mask(image_id=image.id, kind="pseudo_label", sha256=store.put(mask_png(uncrop_mask(crop, image.height, image.width)))[0],
                             job_id=job_id, round=1))
        session.commit()
    return len(labels)


def _evaluate(settings, config, model_id, data, split_path) -> dict:
    from kmine.data import load_split, scan_dataset
    from kmine.evaluation import evaluate
    from kmine.predict import Predictor
    from kmine.training.setup import resolve_device

    with session_factory(settings)() as session:
        model = session.get(Model, model_id)
        if model is None:
            raise ValueError(f"model {model_id} no longer exists")
        path, digest, teacher_name = model.checkpoint_path, model.sha256, model.config.get("teacher", "mobilesam")
    if file_sha256(path) != digest:
        raise ValueError(f"model {model_id}'s checkpoint does not match its checksum")
    device = str(resolve_device(settings.device))
    teacher = None
    if config["mode"] == "refine":
        from kmine.teacher import EncodingCache, build_teacher

        teacher = build_teacher(teacher_name, weights_dir=settings.resolved_weights_dir(), device=device,
                                cache=EncodingCache(disk_dir=settings.encodings_dir))
    predictor = Predictor.from_checkpoint(path, teacher=teacher, device=device)
    stems = list(getattr(load_split(split_path), config["subset"]))
    report = evaluate(predictor, scan_dataset(data), stems, config["mode"], config["frame"], progress=False)
    return {"summary": report.summary, "per_image": report.rows}


def _experiment(settings, config, data, split_path, folder, dataset_id) -> dict:
    from kmine.experiment import DatasetSpec, ExperimentConfig, run_experiment

    train_settings = {**config.get("train", {}), "weights_dir": str(settings.resolved_weights_dir()),
                      "device": settings.device, "cache_dir": str(settings.encodings_dir)}
    cfg = ExperimentConfig(**{**config, "train": train_settings},
                           datasets=[DatasetSpec(path=str(data), name=f"dataset-{dataset_id}", split=str(split_path))])
    rows = run_experiment(cfg, folder / "run")
    return {"rows": rows, "table": (folder / "run" / "table.md").read_text()}
