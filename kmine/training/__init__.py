"""Training: config, the loop with its schedules, pseudo-labelling, callbacks."""

from kmine.training.callbacks import Callback
from kmine.training.config import SCHEDULES, TrainConfig
from kmine.training.loop import Trainer, TrainingCancelled, TrainResult, train

__all__ = ["Callback", "SCHEDULES", "TrainConfig", "Trainer", "TrainingCancelled", "TrainResult", "train"]
