"""Writing files so that a reader never sees half of one.

Every file kmine writes that something else reads later (checkpoints, splits, cached
encodings) goes through :func:`atomic_write`: a temporary file in the same folder, then
``os.replace``, so a process killed mid-write leaves the old file or none, never a torn one.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb"):
    """Open a temporary file beside ``path``; on success it replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:40]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_torch(obj, path: str | Path) -> None:
    """``torch.save`` atomically."""
    import torch  # here, not above: kmine.data.splits (the CLI's SUBSETS) imports this module

    with atomic_write(path) as f:
        torch.save(obj, f)


def load_torch(path: str | Path, map_location="cpu"):
    """``torch.load`` that never runs pickled code (``weights_only=True``)."""
    import torch

    return torch.load(Path(path), map_location=map_location, weights_only=True)


def save_json(obj, path: str | Path) -> None:
    """JSON, indented, atomically."""
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
