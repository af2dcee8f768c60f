"""Choice types built from the engine's and the database's lists (each list is written once,
there): pydantic, and so the OpenAPI document, sees each as a ``Literal`` of exactly those values.

mypy cannot evaluate a ``Literal`` built at run time, so it sees plain ``str``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from kmine.data import SUBSETS
from kmine.evaluation import FRAMES
from kmine.experiment import PRETRAINING_NAMES
from kmine.predict import MODES
from kmine.prompts import PROMPT_CHOICES, PROMPT_KINDS
from kmine.student.encoders import ENCODERS
from kmine.teacher import TEACHER_NAMES
from kmine.training.config import PERTURBATIONS, SCHEDULES, SECOND_PHASE_STARTS
from kmine.training.strategy import LABEL_RULES, MULTIMASK_RULES, TTA_VIEWS
from server.core.devices import JOB_DEVICES
from server.core.models import JOB_KINDS, JOB_STATUSES, MASK_KINDS, MASK_ORIGINS, SPLIT_PARTS
from server.core.roles import TOKEN_ROLES
from server.services.export_formats import EXPORT_FORMATS

if TYPE_CHECKING:
    Encoder = str
    Teacher = str
    Schedule = str
    SecondPhase = str
    Perturbation = str
    PromptKind = str
    PromptChoice = str
    MultimaskRule = str
    LabelRule = str
    TtaViews = int
    Subset = str
    Mode = str
    Frame = str
    Pretraining = str
    JobKind = str
    JobDevice = str
    JobStatus = str
    SplitPart = str
    MaskKind = str
    MaskOrigin = str
    TokenRole = str
    ExportFormat = str
else:
    Encoder = Literal[tuple(ENCODERS)]
    Teacher = Literal[TEACHER_NAMES]
    Schedule = Literal[SCHEDULES]
    SecondPhase = Literal[SECOND_PHASE_STARTS]
    Perturbation = Literal[PERTURBATIONS]
    PromptKind = Literal[PROMPT_KINDS]
    PromptChoice = Literal[PROMPT_CHOICES]
    MultimaskRule = Literal[MULTIMASK_RULES]
    LabelRule = Literal[LABEL_RULES]
    TtaViews = Literal[TTA_VIEWS]
    Subset = Literal[SUBSETS]
    Mode = Literal[MODES]
    Frame = Literal[FRAMES]
    Pretraining = Literal[tuple(PRETRAINING_NAMES)]
    JobKind = Literal[JOB_KINDS]
    JobDevice = Literal[JOB_DEVICES]
    JobStatus = Literal[JOB_STATUSES]
    SplitPart = Literal[SPLIT_PARTS]
    MaskKind = Literal[MASK_KINDS]
    MaskOrigin = Literal[MASK_ORIGINS]
    TokenRole = Literal[TOKEN_ROLES]
    ExportFormat = Literal[EXPORT_FORMATS]
