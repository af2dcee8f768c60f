"""Training: config, the loop with its schedules, pseudo-labelling, callbacks.

The names below are imported on first use (see :mod:`kmine._lazy`): ``from kmine.training
import SCHEDULES`` does not import torch."""

from typing import TYPE_CHECKING

from kmine._lazy import lazy_exports

if TYPE_CHECKING:
    from kmine.training.callbacks import Callback
    from kmine.training.config import SCHEDULES, TrainConfig
    from kmine.training.loop import Trainer, TrainingCancelled, TrainResult, train
else:
    __all__, __getattr__, __dir__ = lazy_exports(__name__, {
        "callbacks": ("Callback",),
        "config": ("SCHEDULES", "TrainConfig"),
        "loop": ("Trainer", "TrainingCancelled", "TrainResult", "train"),
    })
