"""Cache of image embeddings, so each image goes through the expensive encoder once.

Keys combine the image content with the teacher (architecture + checkpoint) and its
preprocessing, so a cache may be shared between teachers, and a disk store between runs,
without ever handing one teacher another's embedding.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from kmine.fileio import save_torch
from kmine.teacher.types import Encoding


def image_digest(image: np.ndarray) -> str:
    """SHA-256 of an array's bytes, shape and dtype (equal arrays -> equal digests)."""
    image = np.ascontiguousarray(image)
    digest = hashlib.sha256()
    digest.update(f"{image.shape}|{image.dtype.str}|".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def cache_key(image: np.ndarray, teacher_id: str, preprocess_id: str) -> str:
    """Key of ``image`` encoded by teacher ``teacher_id`` with preprocessing ``preprocess_id``."""
    parts = f"{image_digest(image)}|{teacher_id}|{preprocess_id}"
    return hashlib.sha256(parts.encode()).hexdigest()


def encoding_nbytes(encoding: Encoding) -> int:
    return encoding.embedding.element_size() * encoding.embedding.nelement()


class EncodingCache:
    """LRU cache of :class:`Encoding` by key, in memory and optionally on disk.

    max_items: most encodings kept in memory (a MobileSAM embedding is 4 MiB).
    max_bytes: optional bound on the memory taken by the embeddings.
    disk_dir: optional folder holding one ``<key>.pt`` per encoding; it outlives the
        process, and memory misses fall back to it.

    ``hits`` and ``misses`` count :meth:`get` outcomes (a disk hit is a hit).
    """

    def __init__(self, max_items: int = 256, max_bytes: int | None = None, disk_dir: str | Path | None = None):
        if max_items < 0:
            raise ValueError(f"max_items must be >= 0, got {max_items}")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.disk_dir = Path(disk_dir) if disk_dir is not None else None
        if self.disk_dir is not None:
            self.disk_dir.mkdir(parents=True, exist_ok=True)
        self._items: OrderedDict[str, Encoding] = OrderedDict()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        if key in self._items:
            return True
        path = self._disk_path(key)
        return path is not None and path.is_file()

    def get(self, key: str) -> Encoding | None:
        """The encoding stored under ``key``, or None; a hit becomes most recently used."""
        encoding = self._items.get(key)
        if encoding is not None:
            self._items.move_to_end(key)
        else:
            encoding = self._load(key)
            if encoding is not None:
                self._remember(key, encoding)
        if encoding is None:
            self.misses += 1
        else:
            self.hits += 1
        return encoding

    def put(self, key: str, encoding: Encoding) -> None:
        """Store ``encoding`` in memory (evicting least recently used) and on disk."""
        self._remember(key, encoding)
        self._save(key, encoding)

    def clear(self) -> None:
        """Forget the in-memory items (the disk store is left alone)."""
        self._items.clear()
        self.nbytes = 0

    def _remember(self, key: str, encoding: Encoding) -> None:
        if key in self._items:
            self.nbytes -= encoding_nbytes(self._items.pop(key))
        self._items[key] = encoding
        self.nbytes += encoding_nbytes(encoding)
        while self._items and (len(self._items) > self.max_items or self._over_bytes()):
            _, old = self._items.popitem(last=False)
            self.nbytes -= encoding_nbytes(old)

    def _over_bytes(self) -> bool:
        return self.max_bytes is not None and self.nbytes > self.max_bytes

    def _disk_path(self, key: str) -> Path | None:
        return None if self.disk_dir is None else self.disk_dir / f"{key}.pt"

    def _save(self, key: str, encoding: Encoding) -> None:
        path = self._disk_path(key)
        if path is None or path.is_file():
            return
        record = {
            "key": key,
            "teacher_id": encoding.teacher_id,
            "embedding": encoding.embedding.contiguous(),
            "original_size": list(encoding.original_size),
            "input_size": list(encoding.input_size),
        }
        # Atomic: a reader never sees a half-written file, even if this process dies
        # mid-write or another one writes the same key.
        save_torch(record, path)

    def _load(self, key: str) -> Encoding | None:
        path = self._disk_path(key)
        if path is None or not path.is_file():
            return None
        try:
            record = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:
            return None  # unreadable (e.g. truncated by a full disk): recompute it
        if not isinstance(record, dict) or record.get("key") != key:
            return None
        return Encoding(
            embedding=record["embedding"],
            original_size=tuple(record["original_size"]),
            input_size=tuple(record["input_size"]),
            key=key,
            teacher_id=record["teacher_id"],
        )
