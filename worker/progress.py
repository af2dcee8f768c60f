"""What a running job reports: its log tail, its lease, and per-epoch progress and metrics."""

from __future__ import annotations

import collections
import logging
import threading
import time

from sqlalchemy import select, update

from kmine.training import Callback, TrainConfig
from server.core import jobs as jobstate
from server.core.db import session_factory
from server.core.models import EpochMetric, Job, PseudoLabelQuality, clean_json
from server.core.references import forget_blob
from server.core.settings import Settings
from worker.runfiles import RunFiles

log = logging.getLogger(__name__)


class JobLog(logging.Handler):
    """The last lines of a job's log, kept for the database's ``log_tail``."""

    def __init__(self, lines: int = 60):
        super().__init__(logging.INFO)
        self.lines: collections.deque[str] = collections.deque(maxlen=lines)
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
    polls the job's ``cancel_requested`` flag.

    Epochs: the database keeps the engine's numbers, from 0 within a phase (``Job.epoch`` is the
    epoch running or just finished); the API adds 1 to every epoch it answers with, so that it
    counts as the log lines written here do, from 1."""

    def __init__(self, job_id: int, settings: Settings, config: TrainConfig, joblog: JobLog, lease: Lease,
                 runfiles: RunFiles):
        self.job_id, self.settings, self.joblog, self.lease = job_id, settings, joblog, lease
        self.runfiles = runfiles
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
        """``epoch``: the phase's epoch running or just finished, from 0."""
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
        # The ETA extrapolates this phase's own pace: a mining epoch (SAM prompted for every
        # unlabelled image) costs several supervised ones, so the whole run's average misleads.
        self.started, self.start_fraction = time.monotonic(), None
        self.joblog.say(f"{phase} phase starts")
        # the epoch about to run (a resumed phase's next one), never past the phase's last
        self._write(phase, min(trainer.epoch, self.caps[self.phase_index] - 1), self._fraction(trainer.epoch))

    def on_batch(self, phase, epoch, step, steps):
        if time.monotonic() - self.last_write > 2.0:
            self._write(phase, epoch, self._fraction(epoch + step / max(1, steps)))  # step counts from 1

    def on_epoch_end(self, r):
        r = clean_json(r)
        # counted from 1 like every epoch the API answers with (the record's own counts from 0)
        self.joblog.say(f"{r['phase']} epoch {r['epoch'] + 1}: loss {r.get('train_loss')} val loss {r.get('val_loss')} "
                        f"Dice {r.get('val_dice')} IoU {r.get('val_iou')}")
        manifest, dropped = self.runfiles.sync()  # the checkpoint this epoch ends with, in the store first
        with self.Session() as session:
            session.add(EpochMetric(job_id=self.job_id, phase=r["phase"], epoch=r["epoch"], train_loss=r.get("train_loss"),
                                    val_loss=r.get("val_loss"), val_dice=r.get("val_dice"), val_iou=r.get("val_iou"), record=r))
            if "pseudo_made" in r:
                session.add(quality_row(self.job_id, r))
            # with its metrics: a run resumed elsewhere starts after exactly the epochs recorded
            session.execute(update(Job).where(Job.id == self.job_id).values(run_files=manifest))
            session.commit()
            self.runfiles.committed(manifest)
            for digest in dropped:  # a superseded checkpoint
                forget_blob(session, self.runfiles.store, digest)
        self._write(r["phase"], r["epoch"], self._fraction(r["epoch"] + 1))  # this epoch, done

    def should_stop(self) -> bool:
        return self.cancel or self.lease.lost


def quality_row(job_id: int, r: dict) -> PseudoLabelQuality:
    return PseudoLabelQuality(job_id=job_id, phase=r.get("phase", ""), epoch=r.get("epoch"), made=r.get("pseudo_made", 0),
                              skipped=r.get("pseudo_skipped", 0), student_dice=r.get("quality_student_dice"),
                              teacher_dice=r.get("quality_teacher_dice"),
                              teacher_beats_student=r.get("quality_teacher_beats_student"),
                              pseudo_dice=r.get("quality_pseudo_dice"), truebox_dice=r.get("quality_truebox_dice"),
                              n=r.get("quality_n"))
