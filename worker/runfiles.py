"""A job's run folder kept in the blob store, so that a worker on another machine resumes it.

After each epoch the files the run changed (``last.pt``, ``best.pt``, ``history.jsonl``, …) go
to the store, and the folder's manifest, ``{relative path: sha256}``, goes to the job's row in
the same transaction as the epoch's metrics: a resumed run and the metrics agree on which
epochs are done. A worker starting the job again fills its own run folder from the manifest.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from kmine.weights import file_sha256
from server.core.storage import Storage


class RunFiles:
    """The files of ``run_dir`` as the store holds them."""

    def __init__(self, store: Storage, run_dir: Path, manifest: dict[str, str] | None = None):
        self.store, self.run_dir = store, run_dir
        self.manifest: dict[str, str] = dict(manifest or {})
        self._seen: dict[str, tuple[int, int]] = {}  # relative path → (size, mtime) when last sent

    def restore(self) -> int:
        """Fill the run folder from the manifest (files already there and equal are kept);
        how many files were written. Copies, never links: the run appends to some of them."""
        written = 0
        for rel, digest in self.manifest.items():
            target = self.run_dir / rel
            if target.is_file() and file_sha256(target) == digest:
                self._seen[rel] = _stamp(target)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.store.local_path(digest), target)
            self._seen[rel] = _stamp(target)
            written += 1
        return written

    def sync(self) -> tuple[dict[str, str], list[str]]:
        """Send the files changed since the last sync; (the new manifest, the digests it no
        longer names: delete them once the new manifest is committed)."""
        manifest = dict(self.manifest)
        for path in sorted(p for p in self.run_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
            rel = path.relative_to(self.run_dir).as_posix()
            stamp = _stamp(path)
            if self._seen.get(rel) == stamp and rel in manifest:
                continue
            manifest[rel], _ = self.store.put_file(path)
            self._seen[rel] = stamp
        dropped = sorted(set(self.manifest.values()) - set(manifest.values()))
        return manifest, dropped

    def committed(self, manifest: dict[str, str]) -> None:
        self.manifest = dict(manifest)


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns
