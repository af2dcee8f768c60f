"""Dihedral augmentation: flips, 90-degree rotation and transpose (paper, appendix A).

Every op is drawn independently with p = 0.5 and applied in the fixed order hflip,
vflip, rot90, transpose, identically to every array given, so an image, its mask and a
pseudo-label stay aligned. The 16 op combinations give the 8 elements of the dihedral
group of the square; :func:`invert_dihedral` maps a prediction made on an augmented view
back, for test-time augmentation.

Arrays are numpy (spatial axes 0, 1: (H, W) or (H, W, C)) or torch tensors (spatial axes
-2, -1: (..., H, W)); ``axes`` overrides.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np
import torch


class DihedralOps(NamedTuple):
    """Which ops to apply, in this order."""

    hflip: bool = False  # mirror left-right (reverse columns)
    vflip: bool = False  # mirror top-bottom (reverse rows)
    rot90: bool = False  # rotate 90 degrees counter-clockwise (numpy's rot90, k=1)
    transpose: bool = False  # swap rows and columns

    @property
    def changes_shape(self) -> bool:
        """True if H and W swap (needs square arrays to stack with others)."""
        return self.rot90 != self.transpose


IDENTITY = DihedralOps()
ALL_OPS: tuple[DihedralOps, ...] = tuple(
    DihedralOps(*map(bool, bits)) for bits in itertools.product((0, 1), repeat=4))


def _is_torch(array) -> bool:
    return isinstance(array, torch.Tensor)


def _axes(array, axes: tuple[int, int] | None) -> tuple[int, int]:
    if axes is not None:
        return axes
    return (-2, -1) if _is_torch(array) else (0, 1)


def _flip(array, axis: int):
    return torch.flip(array, (axis,)) if _is_torch(array) else np.flip(array, axis)


def _rot90(array, k: int, axes: tuple[int, int]):
    return torch.rot90(array, k, axes) if _is_torch(array) else np.rot90(array, k, axes)


def _swap(array, axes: tuple[int, int]):
    return array.transpose(*axes) if _is_torch(array) else np.swapaxes(array, *axes)


def _contiguous(array):
    # np.flip/rot90 return views; copying keeps callers from aliasing the input.
    return array.contiguous().clone() if _is_torch(array) else np.ascontiguousarray(array).copy()


def apply_dihedral(array, ops: DihedralOps, axes: tuple[int, int] | None = None):
    """Apply ``ops`` to one array; returns a contiguous copy of the same type."""
    rows, cols = _axes(array, axes)
    if ops.hflip:
        array = _flip(array, cols)
    if ops.vflip:
        array = _flip(array, rows)
    if ops.rot90:
        array = _rot90(array, 1, (rows, cols))
    if ops.transpose:
        array = _swap(array, (rows, cols))
    return _contiguous(array)


def invert_dihedral(array, ops: DihedralOps, axes: tuple[int, int] | None = None):
    """Undo :func:`apply_dihedral` (``invert_dihedral(apply_dihedral(a, ops), ops) == a``):
    the inverse ops in reverse order."""
    rows, cols = _axes(array, axes)
    if ops.transpose:
        array = _swap(array, (rows, cols))
    if ops.rot90:
        array = _rot90(array, -1, (rows, cols))
    if ops.vflip:
        array = _flip(array, rows)
    if ops.hflip:
        array = _flip(array, cols)
    return _contiguous(array)


def draw_dihedral(rng: np.random.Generator, p: float = 0.5) -> DihedralOps:
    """Draw each op independently with probability ``p`` (4 draws from ``rng``)."""
    return DihedralOps(*(bool(u) for u in rng.random(4) < p))


def random_dihedral(rng: np.random.Generator, *arrays, p: float = 0.5):
    """Apply one random draw of ops identically to all ``arrays``.

    arrays: numpy (H, W) / (H, W, C) or torch (..., H, W), all with the same H, W; square
    when they must keep stacking (rot90/transpose swap H and W).
    Returns (tuple of transformed contiguous copies, DihedralOps).
    """
    if not arrays:
        raise ValueError("random_dihedral needs at least one array")
    shapes = {tuple(a.shape[i] for i in _axes(a, None)) for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"arrays must share their spatial size (H, W) to stay aligned; got "
                         f"{sorted(shapes)}")
    (height, width), = shapes
    if height != width:
        raise ValueError(f"dihedral augmentation needs square arrays (got {height}x{width}): "
                         f"rot90/transpose would change their shape; crop to a square first")
    ops = draw_dihedral(rng, p)
    return tuple(apply_dihedral(a, ops) for a in arrays), ops


def dihedral_views(array, unique: bool = True, axes: tuple[int, int] | None = None):
    """All dihedral views of ``array`` for test-time augmentation.

    Returns a list of (DihedralOps, view). ``unique=True`` keeps one op combination per
    distinct transformation (8 views); ``unique=False`` gives all 16 combinations.
    """
    return [(ops, apply_dihedral(array, ops, axes)) for ops in (UNIQUE_OPS if unique else ALL_OPS)]


def _unique_ops() -> tuple[DihedralOps, ...]:
    probe = np.arange(6).reshape(2, 3)  # asymmetric, so distinct ops give distinct arrays
    seen: dict[bytes, DihedralOps] = {}
    for ops in ALL_OPS:
        out = apply_dihedral(probe, ops)
        seen.setdefault(out.shape.__repr__().encode() + out.tobytes(), ops)
    return tuple(seen.values())


UNIQUE_OPS: tuple[DihedralOps, ...] = _unique_ops()

__all__ = [
    "DihedralOps", "IDENTITY", "ALL_OPS", "UNIQUE_OPS", "apply_dihedral", "invert_dihedral",
    "draw_dihedral", "random_dihedral", "dihedral_views",
]
