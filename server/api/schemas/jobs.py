"""Job bodies, one typed schema per kind, and job answers.

Every choice comes from the engine's own list (schedules, prompt kinds, teachers, encoders,
pseudo-label rules, subsets, modes, frames) and every default from the engine's dataclass,
so nothing here can drift from what the worker runs. Numbers are bounded, unknown keys are
refused (``extra="forbid"``), and a client can never name a path, a device or a cache: those
settings belong to the server (``SERVER_OWNED``). The service then runs the engine's own
checks (``TrainConfig.from_dict``) as the final word.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from typing_extensions import Self

from kmine.experiment import ExperimentConfig
from kmine.prompts import PROMPT_CHOICES, PromptConfig
from kmine.teacher import TEACHER_NAMES
from kmine.training import TrainConfig
from kmine.training.config import SCHEDULES, paper_recipe
from kmine.training.simclr import SimCLRConfig
from kmine.training.strategy import PseudoStrategy
from server.api.schemas.choices import (
    Encoder,
    Frame,
    JobDevice,
    JobKind,
    JobStatus,
    LabelRule,
    Mode,
    MultimaskRule,
    Perturbation,
    Pretraining,
    PromptChoice,
    PromptKind,
    Schedule,
    SecondPhase,
    Subset,
    Teacher,
    TtaViews,
)
from server.api.schemas.common import EPOCHS_FROM_1, Answer, DbId, IsoDatetime, Seed, api_epoch, api_record
from server.services.jobs import EVALUATE_DEFAULTS, PRETRAIN_SERVER_OWNED, SERVER_OWNED, STRATEGY_NAME


def engine_default(cls: type, name: str) -> Any:
    """The default of dataclass ``cls``'s field ``name`` (the engine's, never written twice)."""
    field = {f.name: f for f in dataclasses.fields(cls)}[name]
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


Unit = Annotated[float, Field(ge=0, le=1)]
Fraction = Annotated[float, Field(gt=0, le=1)]
Epochs = Annotated[int, Field(ge=1, le=1000)]
LearningRate = Annotated[float, Field(gt=0, le=1)]
Side = Annotated[int, Field(ge=32, le=1024, multiple_of=32)]


class JobSettings(BaseModel):
    """Base of job settings: unknown keys and non-finite numbers are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    what: ClassVar[str] = "settings"
    owned: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _known_names(cls, data: Any) -> Any:
        """Say plainly which keys are the server's and which are unknown (the schema's
        ``extra="forbid"`` would only say "extra inputs are not permitted")."""
        if isinstance(data, dict):
            refused = sorted(str(k) for k in set(data) & cls.owned)
            if refused:
                raise ValueError(f"{cls.what} {', '.join(refused)} are set by the server, not the client")
            unknown = sorted(str(k) for k in set(data) - set(cls.model_fields))
            if unknown:
                raise ValueError(f"unknown {cls.what}: {', '.join(unknown)}; known: {', '.join(sorted(cls.model_fields))}")
        return data


def _prompt(name: str) -> Any:
    return engine_default(PromptConfig, name)


class PromptSettings(JobSettings):
    """How the student's probabilities become SAM prompts (``kmine.prompts.PromptConfig``)."""

    what: ClassVar[str] = "prompt settings"
    kinds: PromptKind = _prompt("kinds")
    n_points: int = Field(_prompt("n_points"), ge=1, le=64, description="foreground points at the highest probabilities")
    threshold: float = Field(_prompt("threshold"), gt=0, lt=1, description="probability counted as foreground")
    per_component: bool = Field(_prompt("per_component"), description="one prompt set per connected component")
    min_component_area: int = Field(_prompt("min_component_area"), ge=0, le=10_000_000)
    max_components: int = Field(_prompt("max_components"), ge=1, le=64)
    negatives: int = Field(_prompt("negatives"), ge=0, le=64, description="background points per prompt set")


def _strategy(name: str) -> Any:
    return engine_default(PseudoStrategy, name)


class StrategySettings(JobSettings):
    """How the student's and the teacher's masks become a pseudo-label (``kmine.training.strategy``)."""

    what: ClassVar[str] = "strategy settings"
    teacher_size: int | None = Field(_strategy("teacher_size"), ge=32, le=2048,
                                     description="side of the crop the teacher sees; null: the student's crop")
    tta: bool = _strategy("tta")
    tta_views: TtaViews = Field(_strategy("tta_views"), description="views the TTA mean takes: 2 (identity, left-right "
                                                                    "flip), 4 (the flips) or 8 (flips and rotations)")
    multimask: MultimaskRule = _strategy("multimask")
    label: LabelRule = _strategy("label")
    teacher_weight: Unit = _strategy("teacher_weight")
    gate_iou: Unit = _strategy("gate_iou")
    doubt_weight: Unit = _strategy("doubt_weight")
    min_agreement: Unit = _strategy("min_agreement")


Share = Annotated[float, Field(gt=0, lt=1)]


def _train(name: str) -> Any:
    return engine_default(TrainConfig, name)


class TrainSettings(JobSettings):
    """A training run: every ``kmine.training.TrainConfig`` setting except the server's own
    (data, split, paths, device, caches, encoder_init). Omitted settings take the engine's defaults."""

    what: ClassVar[str] = "training settings"
    owned: ClassVar[frozenset[str]] = frozenset(SERVER_OWNED)
    labelled_fraction: Fraction | None = Field(_train("labelled_fraction"),
                                               description="share of the split's train images re-drawn into the labelled "
                                                           "part (training uses their masks); null: keep the split's "
                                                           "own labelled/unlabelled parts")
    schedule: Schedule = _train("schedule")
    encoder: Encoder = _train("encoder")
    pretrained: bool = _train("pretrained")
    size: Side = Field(_train("size"), description="training crop side in pixels (a multiple of 32)")
    batch_size: int = Field(_train("batch_size"), ge=1, le=64)
    lr: LearningRate = _train("lr")
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = _train("betas")
    weight_decay: Unit = _train("weight_decay")
    plateau_patience: int = Field(_train("plateau_patience"), ge=0, le=1000)
    plateau_factor: float = Field(_train("plateau_factor"), gt=0, lt=1)
    min_lr: float = Field(_train("min_lr"), ge=0, le=1)
    early_stop: Epochs = Field(_train("early_stop"), description="epochs without improvement that end a phase")
    max_epochs: Epochs = Field(_train("max_epochs"), description="cap per phase")
    mining_epochs: Epochs | None = Field(_train("mining_epochs"), description="cap of the second phase; null: max_epochs")
    k: Unit = Field(_train("k"), description="BCE weight of the loss")
    lam: float = Field(_train("lam"), ge=0, le=10, description="pseudo-label loss weight")
    lam_rampup: float = Field(_train("lam_rampup"), ge=0, le=1000,
                              description="second-phase epochs over which the pseudo-label weight grows from 0")
    second_phase: SecondPhase = Field(_train("second_phase"), description="fresh: a new optimizer; continue: the "
                                                                          "supervised phase's")
    perturb: Perturbation = Field(_train("perturb"), description="the second phase trains on strongly perturbed "
                                                                 "views of the pseudo-labelled images (pseudo) "
                                                                 "or of all (strong)")
    labelled_share: Share | None = Field(_train("labelled_share"), description="share of each second-phase batch "
                                                                               "drawn from the labelled images; null: "
                                                                               "all shuffled together")
    seed: Seed = _train("seed")
    teacher: Teacher = _train("teacher")
    prompts: PromptSettings = Field(default_factory=PromptSettings)
    strategy: StrategySettings = Field(default_factory=StrategySettings)
    augment: bool = _train("augment")
    paper: bool = Field(False, description="the paper's recipe: SAM's mask as the pseudo-label (no TTA or vote), a "
                                           "fresh optimizer, λ 0.25 from the first step, no perturbation, labelled "
                                           "and unlabelled images shuffled together; overrides those settings")

    def engine_settings(self) -> dict:
        """The settings the client named, as the engine takes them (``paper`` becomes the paper's values)."""
        named = self.model_dump(mode="json", exclude_unset=True)
        if named.pop("paper", False):
            named |= paper_recipe()
        return named


class EvaluateSettings(JobSettings):
    """What an evaluation scores: a part of the split, the student alone or refined by SAM, in
    the paper's centre crop or the full image."""

    what: ClassVar[str] = "evaluate settings"
    subset: Subset = EVALUATE_DEFAULTS["subset"]
    mode: Mode = EVALUATE_DEFAULTS["mode"]
    frame: Frame = EVALUATE_DEFAULTS["frame"]


def _simclr(name: str) -> Any:
    return engine_default(SimCLRConfig, name)


class PretrainSettings(JobSettings):
    """Self-supervised encoder pretraining before every arm (``kmine.training.simclr.SimCLRConfig``);
    the server names its data, device and weights, and each arm its seed."""

    what: ClassVar[str] = "pretrain settings"
    owned: ClassVar[frozenset[str]] = frozenset(PRETRAIN_SERVER_OWNED)
    method: Pretraining = "simclr"
    encoder: Encoder = _simclr("encoder")
    pretrained: bool = _simclr("pretrained")
    size: Side = _simclr("size")
    batch_size: int = Field(_simclr("batch_size"), ge=2, le=256)
    epochs: Epochs = _simclr("epochs")
    lr: LearningRate = _simclr("lr")
    temperature: float = Field(_simclr("temperature"), gt=0, le=10)
    projection_dim: int = Field(_simclr("projection_dim"), ge=1, le=4096)


class ExperimentStrategySettings(StrategySettings):
    """An experiment's strategy: pseudo-label settings, and second-phase training settings that
    differ from the experiment's ``train`` (``kmine.experiment.SECOND_PHASE_KEYS``; omitted: the
    experiment's). Its control arm trains with the same second-phase settings."""

    perturb: Perturbation | None = None
    second_phase: SecondPhase | None = None
    lam: float | None = Field(None, ge=0, le=10)
    lam_rampup: float | None = Field(None, ge=0, le=1000)
    mining_epochs: Epochs | None = None
    labelled_share: Share | None = None


StrategyName = Annotated[str, StringConstraints(pattern=STRATEGY_NAME)]
ExperimentName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


def _experiment(name: str) -> Any:
    return engine_default(ExperimentConfig, name)


class ExperimentSettings(JobSettings):
    """Labelled fractions × schedules × teachers × prompt kinds × strategies × seeds on the
    job's split (``kmine.experiment.ExperimentConfig``); ``train`` is shared by every arm."""

    what: ClassVar[str] = "experiment settings"
    owned: ClassVar[frozenset[str]] = frozenset({"datasets"})
    name: ExperimentName | None = Field(None, description="title of the results table; default experiment-<split id>")
    fractions: list[Fraction] = Field(_experiment("fractions"), min_length=1, max_length=10)
    schedules: list[Schedule] = Field(_experiment("schedules"), min_length=1, max_length=len(SCHEDULES))
    teachers: list[Teacher] = Field(_experiment("teachers"), min_length=1, max_length=len(TEACHER_NAMES))
    prompts: list[PromptChoice] = Field(_experiment("prompts"), min_length=1, max_length=len(PROMPT_CHOICES))
    strategies: dict[StrategyName, ExperimentStrategySettings] = Field(
        default_factory=lambda: {k: ExperimentStrategySettings(**v) for k, v in _experiment("strategies").items()},
        min_length=1, max_length=8, description="name (a plain word) → strategy settings")
    seeds: list[Seed] = Field(_experiment("seeds"), min_length=1, max_length=10)
    train: TrainSettings = Field(default_factory=TrainSettings)
    subset: Subset = _experiment("subset")
    frame: Frame = _experiment("frame")
    pretrain: PretrainSettings | None = Field(_experiment("pretrain"), description="null: no pretraining")


class _JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    config: JobSettings  # each kind's own settings
    device: JobDevice = Field("any", description="the workers that may run it: any, or only those started with "
                                                  "`kmine worker --queue gpu` (or `cpu`)")

    def stored_config(self) -> dict:
        """The job's ``config`` as stored for the worker: the settings the client named."""
        return self.config.model_dump(mode="json", exclude_unset=True)


class TrainJob(_JobRequest):
    kind: Literal["train"]
    split_id: DbId = Field(description="the split to train on")
    model_id: ClassVar[None] = None
    config: TrainSettings = Field(default_factory=TrainSettings)

    def stored_config(self) -> dict:
        return self.config.engine_settings()


class EvaluateJob(_JobRequest):
    kind: Literal["evaluate"]
    model_id: DbId = Field(description="the model to score")
    split_id: DbId | None = Field(None, description="default: the split the model was trained on")
    config: EvaluateSettings = Field(default_factory=EvaluateSettings)

    def stored_config(self) -> dict:
        return self.config.model_dump(mode="json")


class ExperimentJob(_JobRequest):
    kind: Literal["experiment"]
    split_id: DbId = Field(description="the split every arm uses")
    model_id: ClassVar[None] = None
    config: ExperimentSettings = Field(default_factory=ExperimentSettings)

    def stored_config(self) -> dict:
        stored = super().stored_config()
        if "train" in stored:
            stored["train"] = self.config.train.engine_settings()
        return stored


JobRequest = Annotated[TrainJob | EvaluateJob | ExperimentJob, Field(discriminator="kind")]


class Progress(Answer):
    phase: str | None
    epoch: int | None = Field(description=f"the phase's epoch now running, or the one just finished, {EPOCHS_FROM_1} "
                                          "and metrics[].epoch; null before training starts and for evaluate and "
                                          "experiment jobs")
    fraction: float = Field(description="0 to 1 over all phases")
    eta_seconds: float | None


class EpochMetricOut(Answer):
    phase: str
    epoch: int = Field(description=f"the epoch, {EPOCHS_FROM_1} and progress.epoch")
    train_loss: float | None
    val_loss: float | None
    val_dice: float | None
    val_iou: float | None
    record: dict[str, Any] = Field(description="the engine's full record of the epoch (its epoch, too, counted from 1)")
    created_at: IsoDatetime = Field(description="when the epoch ended (its checkpoint stored)")

    @classmethod
    def of(cls, row) -> Self:
        """From a stored row, whose epoch counts from 0 as the engine's does."""
        return cls(phase=row.phase, epoch=api_epoch(row.epoch), train_loss=row.train_loss, val_loss=row.val_loss,
                   val_dice=row.val_dice, val_iou=row.val_iou, record=api_record(row.record) or {},
                   created_at=row.created_at)


class QualityOut(Answer):
    phase: str
    epoch: int | None = Field(description=f"the epoch it was measured in, {EPOCHS_FROM_1} and metrics[].epoch")
    made: int
    skipped: int
    student_dice: float | None
    teacher_dice: float | None
    teacher_beats_student: float | None
    pseudo_dice: float | None
    truebox_dice: float | None
    n: int | None

    @classmethod
    def of(cls, row) -> Self:
        """From a stored row, whose epoch counts from 0 as the engine's does."""
        fields = {name: getattr(row, name) for name in cls.model_fields if name != "epoch"}
        return cls(**fields, epoch=api_epoch(row.epoch))


class Attempt(Answer):
    attempt: int = Field(description="counted from 1")
    worker: str
    started_at: str


class JobOut(Answer):
    id: int
    kind: JobKind
    status: JobStatus
    dataset_id: int | None
    split_id: int | None
    model_id: int | None = Field(description="evaluate: the model scored; train: the model made")
    config: dict[str, Any] = Field(description="the settings the job was submitted with")
    progress: Progress
    attempts: int
    max_attempts: int
    cancel_requested: bool
    error: str | None
    result: dict[str, Any] | None = Field(description="what a finished job made; a train job's `best` is the best "
                                                      f"epoch's record, its epoch {EPOCHS_FROM_1}")
    device: str = Field(description="the workers that may run it (any, gpu, cpu)")
    worker: str | None = Field(description="the worker of the current (or last) attempt")
    workers: list[Attempt] = Field(description="each attempt's worker, first first")
    created_at: IsoDatetime
    started_at: IsoDatetime | None
    finished_at: IsoDatetime | None

    @classmethod
    def of(cls, job, **more) -> Self:
        """From a stored job, whose epochs count from 0 as the engine's do."""
        progress = Progress(phase=job.phase, epoch=api_epoch(job.epoch), fraction=job.fraction or 0.0,
                            eta_seconds=job.eta_seconds)
        fields = {name: getattr(job, name) for name in JobOut.model_fields if name not in ("progress", "result", "workers")}
        result = job.result
        if isinstance(result, dict) and isinstance(result.get("best"), dict):  # a train job's best epoch
            result = {**result, "best": api_record(result["best"])}
        return cls(**fields, progress=progress, result=result, workers=job.workers or [], **more)


class JobDetail(JobOut):
    metrics: list[EpochMetricOut] = Field(description=f"per epoch of each phase; epochs {EPOCHS_FROM_1}")
    pseudo_label_quality: list[QualityOut] = Field(description=f"per epoch of a mining phase; epochs {EPOCHS_FROM_1}")
    log_tail: str
