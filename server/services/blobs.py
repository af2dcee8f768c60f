"""The API's blobs as workers on other machines see them: what may be read by hash, what a
worker may send (verified against its name), and what may be deleted (nothing anything refers to)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.core.errors import BadInput
from server.core.models import Model
from server.core.storage import BlobStore


def blob_file(session: Session, store: BlobStore, digest: str) -> Path | None:
    """The file holding ``digest``: the store's blob, or an uploaded model's checkpoint (kept
    under ``models/``, named by the same hash); None when there is none."""
    path = store.path(digest)
    if path.is_file():
        return path
    for checkpoint in session.scalars(select(Model.checkpoint_path).where(Model.sha256 == digest)):
        if checkpoint and Path(checkpoint).is_file():
            return Path(checkpoint)
    return None


class Receiver:
    """A blob arriving in pieces: hashed and written beside the store, kept under its name
    only when whole and matching it."""

    def __init__(self, store: BlobStore, digest: str, limit: int):
        self.store, self.digest, self.limit = store, digest, limit
        self.hash, self.size = hashlib.sha256(), 0
        self.stage = store.staged()
        self.file, self.tmp = self.stage.__enter__()

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise BadInput(f"the blob is larger than {self.limit} bytes", 413)
        self.hash.update(chunk)
        self.file.write(chunk)

    def finish(self) -> bool:
        """Keep the blob; whether it is new. 422 when the bytes do not hash to its name."""
        self.stage.__exit__(None, None, None)
        if self.hash.hexdigest() != self.digest:
            Path(self.tmp).unlink(missing_ok=True)
            raise BadInput("the bytes sent do not match the sha256 in the address")
        return self.store.commit(self.tmp, self.digest)

    def abandon(self) -> None:
        self.stage.__exit__(RuntimeError, None, None)
