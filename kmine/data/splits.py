"""Train/val/test splits and the labelled/unlabelled partition of train.

Splits are lists of file stems, stored as JSON so a run can be reproduced and a split
shared. kvasir-seg's own ``split.json`` (``train``/``val`` only) loads as is.

Randomness: stems are sorted first (directory order never matters), then permuted with
``numpy.random.default_rng(seed)``. For one seed the labelled subsets are nested: the
labelled stems at fraction 0.5 are among those at 0.75.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kmine.fileio import save_json
from kmine.text import shown

PARTS = ("train", "val", "test")
SUBSETS = ("val", "test", "train", "labelled", "unlabelled")  # the parts of a split one can score


class SplitError(ValueError):
    """A split is inconsistent (overlapping parts, unknown stems, bad fractions)."""


def _preview(stems: Iterable[str], limit: int = 5) -> str:
    stems = sorted(stems)
    more = f" and {len(stems) - limit} more" if len(stems) > limit else ""
    return ", ".join(shown(s) for s in stems[:limit]) + more


@dataclass(init=False)  # __init__ below: labelled/unlabelled may be left out, never stay None
class Split:
    """Stems of each part. ``labelled`` + ``unlabelled`` partition ``train``.

    seed: the seed that made it (None if unknown); labelled_fraction: share of train that
    is labelled; source: where it came from (e.g. ``{"path": ..., "dataset": ...}``).
    """

    train: list[str]
    val: list[str]
    test: list[str]
    labelled: list[str]
    unlabelled: list[str]
    seed: int | None
    labelled_fraction: float
    source: dict

    def __init__(
        self,
        train: list[str],
        val: list[str],
        test: list[str] | None = None,
        labelled: list[str] | None = None,
        unlabelled: list[str] | None = None,
        seed: int | None = None,
        labelled_fraction: float = 1.0,
        source: dict | None = None,
    ) -> None:
        """Absent ``labelled``: all of train is labelled; absent ``unlabelled``: the rest of train."""
        self.train = train
        self.val = val
        self.test = [] if test is None else test
        self.labelled = list(train) if labelled is None else labelled
        chosen = set(self.labelled)
        self.unlabelled = [s for s in train if s not in chosen] if unlabelled is None else unlabelled
        self.seed = seed
        self.labelled_fraction = labelled_fraction
        self.source = {} if source is None else source
        self.validate()

    def validate(self) -> None:
        """Raise :class:`SplitError` naming stems that repeat, overlap between parts, or
        are labelled/unlabelled without being in train."""
        for name in PARTS + ("labelled", "unlabelled"):
            stems = getattr(self, name)
            if len(set(stems)) != len(stems):
                dupes = {s for s in stems if stems.count(s) > 1}
                raise SplitError(f"split part {shown(name)} lists stems twice: {_preview(dupes)}")
        for a, b in (("train", "val"), ("train", "test"), ("val", "test"), ("labelled", "unlabelled")):
            common = set(getattr(self, a)) & set(getattr(self, b))
            if common:
                raise SplitError(f"{len(common)} stems are in both {shown(a)} and {shown(b)}: "
                                 f"{_preview(common)}")
        outside = (set(self.labelled) | set(self.unlabelled)) ^ set(self.train)
        if outside:
            raise SplitError(f"labelled + unlabelled must partition train; these stems break "
                             f"that: {_preview(outside)}")

    def with_labelled_fraction(self, fraction: float, seed: int | None = None,
                               annotated: Iterable[str] | None = None) -> Split:
        """A copy whose train is re-partitioned: ``round(fraction * n)`` (at least 1) labelled
        stems drawn with ``seed`` (default: this split's seed, else 0) from the ``n`` train stems
        that can be labelled: those in ``annotated`` (the stems with a mask) when given, else all
        of train. The rest of train is unlabelled."""
        if not 0 < fraction <= 1:
            raise SplitError(f"labelled fraction must be in (0, 1]; got {fraction}")
        seed = self.seed if seed is None else seed
        seed = 0 if seed is None else seed
        if annotated is None:
            pool = list(self.train)
        else:
            masked = set(annotated)
            pool = [s for s in self.train if s in masked]
        if not pool:
            raise SplitError("no train image has a mask: nothing can be labelled")
        labelled = _choose(pool, max(1, round(fraction * len(pool))), seed)
        return Split(train=list(self.train), val=list(self.val), test=list(self.test),
                     labelled=labelled, seed=seed, labelled_fraction=fraction,
                     source=dict(self.source))

    def check_against(self, index) -> list[str]:
        """See :func:`check_split_against`."""
        return check_split_against(self, index)

    def to_dict(self) -> dict:
        return asdict(self)


def _choose(stems: list[str], count: int, seed: int) -> list[str]:
    """``count`` stems drawn without replacement; prefixes of one permutation, so smaller
    counts give subsets of larger ones."""
    ordered = sorted(stems)
    order = np.random.default_rng(seed).permutation(len(ordered))
    return sorted(ordered[i] for i in order[:count])


def make_split(stems: Iterable[str], val_fraction: float = 0.1, test_fraction: float = 0.1,
               labelled_fraction: float = 1.0, seed: int = 0) -> Split:
    """Split ``stems`` at random into train/val/test and train into labelled/unlabelled.

    Part sizes are ``round(fraction * n)``; train gets the rest and must not be empty.
    """
    stems = sorted(stems)
    if len(set(stems)) != len(stems):
        raise SplitError(f"stems repeat: {_preview({s for s in stems if stems.count(s) > 1})}")
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1):
        raise SplitError(f"val/test fractions must be in [0, 1); got {val_fraction}, {test_fraction}")
    n_val, n_test = round(val_fraction * len(stems)), round(test_fraction * len(stems))
    if len(stems) - n_val - n_test < 1:
        raise SplitError(f"no stems left for train: {len(stems)} stems, {n_val} val, {n_test} "
                         f"test; lower val_fraction/test_fraction")
    order = np.random.default_rng(seed).permutation(len(stems))
    shuffled = [stems[i] for i in order]
    split = Split(train=sorted(shuffled[n_val + n_test:]), val=sorted(shuffled[n_test:n_test + n_val]),
                  test=sorted(shuffled[:n_test]), seed=seed,
                  source={"made_by": "make_split", "val_fraction": val_fraction,
                          "test_fraction": test_fraction})
    return split.with_labelled_fraction(labelled_fraction, seed)


def save_split(split: Split, path: str | Path) -> None:
    """Write ``split`` as JSON atomically (a reader never sees half a file)."""
    save_json(split.to_dict(), path)


def load_split(path: str | Path) -> Split:
    """Read a split JSON: ``train`` and ``val`` required; ``test``, ``labelled``,
    ``unlabelled``, ``seed``, ``labelled_fraction`` optional (absent labelled: all of train).

    Raises :class:`SplitError` on missing keys or inconsistent parts, naming the stems.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SplitError(f"cannot read split file {path}: {err}") from err
    missing = [k for k in ("train", "val") if k not in data]
    if missing:
        raise SplitError(f"split file {path} lacks {missing}; it needs lists of stems under "
                         f"'train' and 'val'")
    train = list(data["train"])
    labelled = data.get("labelled")
    fraction = data.get("labelled_fraction")
    if fraction is None:
        fraction = len(labelled) / len(train) if labelled is not None and train else 1.0
    source = dict(data.get("source") or {})
    source.update(path=str(path), **({"dataset": data["dataset"]} if "dataset" in data else {}))
    try:
        return Split(train=train, val=list(data["val"]), test=list(data.get("test", [])),
                     labelled=labelled, unlabelled=data.get("unlabelled"), seed=data.get("seed"),
                     labelled_fraction=fraction, source=source)
    except SplitError as err:
        raise SplitError(f"{path}: {err}") from None


def check_split_against(split: Split, index) -> list[str]:
    """Messages for stems of ``split`` that ``index`` (a DatasetIndex) lacks, and for
    labelled/val/test stems whose image has no usable mask. Empty list: all fine."""
    messages = []
    for name in PARTS:
        absent = [s for s in getattr(split, name) if s not in index]
        if absent:
            messages.append(f"{len(absent)} {name} stems are not in {index.root}: {_preview(absent)}")
    for name in ("labelled", "val", "test"):
        unlabelled = [s for s in getattr(split, name) if s in index and not index[s].labelled]
        if unlabelled:
            messages.append(f"{len(unlabelled)} {name} stems have no usable mask in {index.root}: "
                            f"{_preview(unlabelled)}")
    return messages


__all__ = ["SUBSETS", "Split", "SplitError", "make_split", "save_split", "load_split", "check_split_against"]
