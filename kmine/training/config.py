"""Every setting of a training run. The defaults are the paper's (appendix A) except where a
measured recipe beat it (BENCHMARKS.md, "Few labels"): the second phase draws half of every
batch from the labelled images, trains the pseudo-labelled half on strongly perturbed views, and
ramps λ up to 1 over its first epoch. ``TrainConfig.as_paper()`` (``kmine train --paper``) gives
the paper's recipe back."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kmine.prompts import PromptConfig
from kmine.teacher.backends import DEFAULT_TEACHER, TEACHER_NAMES
from kmine.text import shown
from kmine.training.strategy import PseudoStrategy

SCHEDULES = ("supervised", "one-time", "continuous", "extended")
MINING_SCHEDULES = ("one-time", "continuous")
SECOND_PHASE_STARTS = ("fresh", "continue")
# What the second phase trains on (kmine.training.perturb): the weak views only, strongly
# perturbed views of the pseudo-labelled images (FixMatch's: labelled ones stay weak), or of all.
PERTURBATIONS = ("none", "pseudo", "strong")


# The paper's recipe where the defaults differ from it: its pseudo-labels and its second phase.
def paper_recipe() -> dict[str, Any]:
    """The settings ``TrainConfig.as_paper`` changes, as plain values (also a job's ``paper`` switch)."""
    return {"strategy": dataclasses.asdict(PseudoStrategy.paper()), "second_phase": "fresh", "perturb": "none",
            "lam": 0.25, "lam_rampup": 0.0, "labelled_share": None}


@dataclass
class TrainConfig:
    """A training run.

    data: dataset folder (``images/`` + ``masks/``).
    split: split JSON; None uses ``<data>/split.json`` if present, else a seeded
        80/10/10 split of the dataset.
    labelled_fraction: share of ``train`` that keeps its labels (the rest is unlabelled);
        None keeps the split file's own labelled/unlabelled partition (all labelled if it has none).
    schedule: ``supervised`` (labelled only), ``one-time`` (pseudo-labels made once after
        the supervised phase), ``continuous`` (made afresh at every revisit) or
        ``extended`` (a second phase on the labelled images alone, as many steps per epoch as
        a mining epoch takes: the same-compute control for a mining run).
    encoder: student encoder, ``timm-tf_efficientnet_lite0`` (ImageNet weights from the
        weights folder) or ``resnet34`` (the paper's; random init, no ImageNet copy here).
    encoder_init: a student checkpoint whose encoder weights start this run (e.g. from
        ``kmine pretrain``: SimCLR on the train images); None keeps ``pretrained``'s.
    max_epochs: cap per phase (supervised phase, then mining phase).
    mining_epochs: cap for the second phase (mining, or the control's) when it should
        differ from ``max_epochs``; None uses ``max_epochs``.
    early_stop: epochs without validation-loss improvement that end a phase.
    k, lam: BCE weight and pseudo-label loss weight (paper: 0.2 and 0.25; default λ 1, which
        with ``labelled_share`` 0.5 weighs each pseudo-labelled image as a labelled one).
    lam_rampup: epochs of the second phase over which λ grows linearly from 0 to ``lam``
        (default 1; 0: ``lam`` from the first step, the paper's).
    second_phase: ``fresh`` (the paper's: a new Adam at ``lr``) or ``continue`` (the supervised
        phase's optimizer state and learning rate at its best epoch, so the second phase does
        not start by falling).
    perturb: ``none`` (the paper's); ``pseudo`` (default): in the second phase the pseudo-labelled images are trained on
        under strong photometric perturbation and CutMix (:mod:`kmine.training.perturb`), their
        pseudo-labels made on the weak view, while labelled images keep their weak view (so the
        same-compute control trains as with ``none``); ``strong``: every image is perturbed.
    labelled_share: share of each second-phase batch drawn from the labelled images
        (:mod:`kmine.training.sampling`; default 0.5); None shuffles labelled and unlabelled
        images together, so a batch holds the data's own share (the paper's: 10 % at 10 % labels).
    prompts: how the student's probabilities become the teacher's prompts.
    strategy: how the student's and the teacher's masks become a pseudo-label.
    """

    data: str = ""
    split: str | None = None
    labelled_fraction: float | None = None
    schedule: str = "continuous"
    encoder: str = "timm-tf_efficientnet_lite0"
    pretrained: bool = True
    encoder_init: str | None = None
    size: int = 224
    batch_size: int = 8
    lr: float = 5e-5
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    plateau_patience: int = 3
    plateau_factor: float = 0.5
    min_lr: float = 1e-7
    early_stop: int = 10
    max_epochs: int = 100
    mining_epochs: int | None = None
    k: float = 0.2
    lam: float = 1.0
    lam_rampup: float = 1.0
    second_phase: str = "fresh"
    perturb: str = "pseudo"
    labelled_share: float | None = 0.5
    seed: int = 0
    teacher: str = DEFAULT_TEACHER
    teacher_checkpoint: str | None = None
    prompts: PromptConfig = field(default_factory=PromptConfig)
    strategy: PseudoStrategy = field(default_factory=PseudoStrategy)
    augment: bool = True
    device: str = "auto"
    weights_dir: str | None = None
    cache_dir: str | None = None
    cache_items: int = 4096

    def __post_init__(self) -> None:
        self._coerce_numbers()
        if isinstance(self.prompts, dict):
            self.prompts = PromptConfig(**self.prompts)
        if isinstance(self.strategy, dict):
            self.strategy = PseudoStrategy(**self.strategy)
        if len(self.betas) != 2:  # YAML/JSON give a list; Adam takes a pair
            raise ValueError(f"betas must be two numbers, got {shown(self.betas)}")
        beta1, beta2 = self.betas
        self.betas = (beta1, beta2)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule {shown(self.schedule)} unknown; choose one of {', '.join(SCHEDULES)}")
        for name, value, choices in (("second_phase", self.second_phase, SECOND_PHASE_STARTS),
                                     ("perturb", self.perturb, PERTURBATIONS)):
            if value not in choices:
                raise ValueError(f"{name} {shown(value)} unknown; choose one of {', '.join(choices)}")
        if self.labelled_share is not None and not 0 < self.labelled_share < 1:
            raise ValueError(f"labelled_share must be in (0, 1) (or null), got {self.labelled_share}")
        if not self.lam_rampup >= 0:
            raise ValueError(f"lam_rampup must be >= 0 epochs, got {self.lam_rampup}")
        if self.teacher not in TEACHER_NAMES:
            raise ValueError(f"teacher {shown(self.teacher)} unknown; choose one of {', '.join(TEACHER_NAMES)}")
        if self.max_epochs < 1 or self.batch_size < 1 or self.size < 32:
            raise ValueError("max_epochs and batch_size must be >= 1 and size >= 32")
        if self.labelled_fraction is not None and not 0 < self.labelled_fraction <= 1:
            raise ValueError(f"labelled_fraction must be in (0, 1], got {self.labelled_fraction}")
        if self.mining_epochs is not None and self.mining_epochs < 1:
            raise ValueError(f"mining_epochs must be >= 1 (or None for max_epochs), got {self.mining_epochs}")
        if self.size % 32:
            raise ValueError(f"size {self.size} must be divisible by 32 for U-Net++ (try 224 or 256)")

    def _coerce_numbers(self) -> None:
        # YAML 1.1 reads `5e-5` (no dot) as a string: accept it as the number it names.
        kinds = {"float": float, "float | None": float, "int": int, "int | None": int}
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), kinds.get(str(f.type))
            if kind and isinstance(value, str):
                try:
                    setattr(self, f.name, kind(value))
                except ValueError:
                    raise ValueError(f"{f.name} must be a number, got {shown(value)}") from None

    def as_paper(self) -> TrainConfig:
        """This run with the paper's recipe for what the defaults improve on: SAM's mask as the
        pseudo-label (no TTA, vote or larger crop), a fresh optimizer for the second phase, λ
        0.25 from its first step, no strong perturbation, labelled and unlabelled images
        shuffled together."""
        return dataclasses.replace(self, **paper_recipe())  # __post_init__ makes the strategy a PseudoStrategy

    def epoch_cap(self, phase: str) -> int:
        """Most epochs of ``phase`` ("supervised", or "mining" for any second phase)."""
        return self.max_epochs if phase == "supervised" else (self.mining_epochs or self.max_epochs)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(sorted(unknown))}")
        return cls(**values)

    def fingerprint(self, ignore: tuple[str, ...] = ("device", "cache_dir", "cache_items", "weights_dir")) -> str:
        """What a run resumes only with: the settings, and the split's content where it is a
        file, not where this machine keeps the data (a job resumed by a worker on another
        machine has other paths)."""
        values = {k: v for k, v in self.to_dict().items() if k not in ignore}
        split = Path(self.split) if self.split else None
        if split is not None and split.is_file():
            values.pop("data")
            values["split"] = hashlib.sha256(split.read_bytes()).hexdigest()
        return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]
