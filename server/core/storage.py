"""Content-addressed file store: the bytes of ``sha256`` live at ``blobs/ab/cdef…``.

Writing the same bytes twice stores them once; the database holds only the hashes.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from kmine.text import shown
from server.core.settings import Settings

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class BlobStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        if not _HEX64.match(digest):
            raise ValueError(f"not a sha256 digest: {shown(digest)}")
        return self.root / digest[:2] / digest[2:]

    def put(self, data: bytes) -> tuple[str, bool]:
        """Store ``data``; returns (sha256, whether this call created the blob)."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.path(digest)
        if path.exists():
            return digest, False
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest, True

    def get(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)


def open_store(settings: Settings) -> BlobStore:
    """The installation's file store (the one place that chooses a storage backend)."""
    return BlobStore(settings.blobs_dir)
