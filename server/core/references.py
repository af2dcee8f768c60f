"""Which blobs something still names: a blob goes only when nothing does."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.core.models import Image, Job, Mask, Model
from server.core.storage import Storage


def blobs_in_use(session: Session, digests: set[str]) -> set[str]:
    """Those of ``digests`` that an image, a mask, a model or a job's run files name."""
    wanted, used = sorted(digests), set[str]()
    for i in range(0, len(wanted), 500):  # bounded IN lists: SQLite caps a statement's parameters
        part = wanted[i:i + 500]
        for column in (Image.sha256, Mask.sha256, Model.sha256):
            used.update(session.scalars(select(column).where(column.in_(part))))
    for manifest in session.scalars(select(Job.run_files).where(Job.run_files.is_not(None))):
        used.update(digests & set((manifest or {}).values()))
    return used


def forget_blob(session: Session, store: Storage, digest: str) -> bool:
    """Delete ``digest`` from ``store`` unless something names it; whether it was deleted."""
    if blobs_in_use(session, {digest}):
        return False
    store.delete(digest)
    return True
