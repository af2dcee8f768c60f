"""The database schema (SQLAlchemy 2 typed models). Migrations in ``migrations/`` follow it."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


MASK_KINDS = ("ground_truth", "human", "pseudo_label", "prediction")
# Where a mask came from: what a client says a human save started from (a SAM answer, a brush,
# the student's prediction, a stored pseudo-label, a file), and ``imported`` for uploaded truth.
MASK_ORIGINS = ("sam", "brush", "student", "pseudo_label", "file", "imported")
SPLIT_PARTS = ("labelled", "unlabelled", "val", "test")
JOB_KINDS = ("train", "evaluate", "experiment")
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


class ApiToken(Base):
    """A bearer token, stored only as its HMAC (``token_hash``). Never deleted: a revoked one
    keeps its row, marked ``revoked_at``. ``created_by``: the token that created it through the
    API (none for the first admin token and those made with ``kmine token create``)."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    role: Mapped[str] = mapped_column(String(20))  # one of TOKEN_ROLES (server.core.roles)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id", ondelete="SET NULL"))
    last_used_at: Mapped[datetime | None] = mapped_column()  # to the minute (see server.core.security)
    revoked_at: Mapped[datetime | None] = mapped_column()


class Meta(Base):
    """Small key/value facts about this installation (e.g. that the demo was imported)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    images: Mapped[list[Image]] = relationship(back_populates="dataset", cascade="all, delete-orphan", passive_deletes=True)


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("dataset_id", "stem"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    stem: Mapped[str] = mapped_column(String(255))
    filename: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    dataset: Mapped[Dataset] = relationship(back_populates="images")
    masks: Mapped[list[Mask]] = relationship(back_populates="image", cascade="all, delete-orphan", passive_deletes=True)


class Mask(Base):
    """A binary mask (PNG 0/255 at the image's size) of one kind: ``ground_truth`` (uploaded),
    ``human`` (a correction; overrides the ground truth as label), ``pseudo_label`` (made by a
    mining job, with its round) or ``prediction`` (made by the predict endpoint).

    Rows are never deleted (but with their dataset): every saved version stays. An undone save
    keeps its row, marked ``reverted_at`` / ``reverted_by``, and is no label any more."""

    __tablename__ = "masks"
    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    sha256: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    round: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    saved_by: Mapped[str | None] = mapped_column(String(200))  # the name of the API token that saved it
    origin: Mapped[str | None] = mapped_column(String(20))  # one of MASK_ORIGINS, when known
    pixels: Mapped[int | None] = mapped_column(Integer)  # foreground pixels, when counted at saving
    reverted_at: Mapped[datetime | None] = mapped_column()
    reverted_by: Mapped[str | None] = mapped_column(String(200))
    image: Mapped[Image] = relationship(back_populates="masks")


class Split(Base):
    __tablename__ = "splits"
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    seed: Mapped[int] = mapped_column(Integer)
    fractions: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    members: Mapped[list[SplitMember]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class SplitMember(Base):
    __tablename__ = "split_members"
    split_id: Mapped[int] = mapped_column(ForeignKey("splits.id", ondelete="CASCADE"), primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    part: Mapped[str] = mapped_column(String(20))
    image: Mapped[Image] = relationship()


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    split_id: Mapped[int | None] = mapped_column(ForeignKey("splits.id", ondelete="SET NULL"))
    model_id: Mapped[int | None] = mapped_column(Integer)  # evaluate jobs: the model scored
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    phase: Mapped[str | None] = mapped_column(String(40))
    epoch: Mapped[int | None] = mapped_column(Integer)  # running or just finished; from 0 (the API answers + 1)
    fraction: Mapped[float] = mapped_column(Float, default=0.0)
    eta_seconds: Mapped[float | None] = mapped_column(Float)
    log_tail: Mapped[str] = mapped_column(Text, default="")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    worker: Mapped[str | None] = mapped_column(String(200))
    device: Mapped[str] = mapped_column(String(10), default="any", server_default="any")  # server.core.devices.JOB_DEVICES
    # each attempt's worker: [{"attempt": 1, "worker": "celery@gpu-1", "started_at": "…"}, …]
    workers: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # the run folder as of its last finished epoch, {relative path: sha256} in the blob store:
    # what a worker on another machine resumes from
    run_files: Mapped[dict[str, str] | None] = mapped_column(JSON)
    lease_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class EpochMetric(Base):
    __tablename__ = "epoch_metrics"
    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    phase: Mapped[str] = mapped_column(String(40))
    epoch: Mapped[int] = mapped_column(Integer)  # the engine's, from 0 within the phase (the API answers + 1)
    train_loss: Mapped[float | None] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float)
    val_dice: Mapped[float | None] = mapped_column(Float)
    val_iou: Mapped[float | None] = mapped_column(Float)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PseudoLabelQuality(Base):
    """Per epoch of a mining job: how many pseudo-labels were made and, where the truth is
    known, the Dice against it of the student's mask, the teacher's mask, the pseudo-label
    the strategy made from both, and the teacher prompted by the true box (its ceiling)."""

    __tablename__ = "pseudo_label_quality"
    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    phase: Mapped[str] = mapped_column(String(40))
    epoch: Mapped[int | None] = mapped_column(Integer)  # the engine's, from 0 (the API answers + 1)
    made: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    student_dice: Mapped[float | None] = mapped_column(Float)
    teacher_dice: Mapped[float | None] = mapped_column(Float)
    teacher_beats_student: Mapped[float | None] = mapped_column(Float)
    pseudo_dice: Mapped[float | None] = mapped_column(Float)
    truebox_dice: Mapped[float | None] = mapped_column(Float)
    n: Mapped[int | None] = mapped_column(Integer)


class Model(Base):
    __tablename__ = "models"
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200), default="")
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # an uploaded checkpoint's file on the API's disk; None: the checkpoint is the blob ``sha256``
    checkpoint_path: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def clean_json(value):
    """``value`` with non-finite floats as None and tuples as lists (JSON columns refuse NaN)."""
    import math

    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return clean_json(value.item())
        except (TypeError, ValueError):
            return str(value)
    return value


class Disagreement(Base):
    """How much a model's student and SAM prompted by it disagree on an image (by its content):
    the Label view's ranking. The worker scores a split's unlabelled images when it has trained
    the model; the API scores any other image the first time it is ranked."""

    __tablename__ = "disagreements"
    __table_args__ = (UniqueConstraint("model_id", "sha256"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))  # the image's
    disagreement: Mapped[float] = mapped_column(Float)  # 1 − Dice(student, SAM); 1 when the student finds nothing
    student_sam_dice: Mapped[float | None] = mapped_column(Float)
    student_pixels: Mapped[int] = mapped_column(Integer)
    sam_pixels: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
