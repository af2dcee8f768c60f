"""Whether anything still names a blob: a blob goes only when nothing does."""

from __future__ import annotations

from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from server.core.models import Image, Job, Mask, Model
from server.core.storage import Storage


def referenced(session: Session, digest: str) -> bool:
    """Whether an image, a mask, a model or a job's run files name ``digest``."""
    for column in (Image.sha256, Mask.sha256, Model.sha256):
        if session.scalar(select(column).where(column == digest).limit(1)) is not None:
            return True
    return session.scalar(select(Job.id).where(Job.run_files.is_not(None),
                                               cast(Job.run_files, Text).contains(digest)).limit(1)) is not None


def forget_blob(session: Session, store: Storage, digest: str) -> bool:
    """Delete ``digest`` from ``store`` unless something names it; whether it was deleted."""
    if referenced(session, digest):
        return False
    store.delete(digest)
    return True
