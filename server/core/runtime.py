"""The one place the API and the worker build the engine's models for a job or a request.

Which device, which teacher a model goes with (its training config's, else the engine's
default), checksum-verified student checkpoints, and teachers whose SAM encodings are cached
in ``<data_dir>/encodings`` by image content. A :class:`Runtime` keeps what it built for the
life of its process: a few students (LRU) and one teacher per name.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kmine.predict import Predictor
from kmine.teacher import DEFAULT_TEACHER, Teacher
from kmine.text import shown
from kmine.weights import WeightsError, file_sha256
from server.core.errors import BadInput
from server.core.models import Model
from server.core.settings import Settings
from server.core.storage import Storage, open_store


@dataclass(frozen=True)
class ModelFiles:
    """What building a model's predictor needs, copied out of its row: a row belongs to its
    session's thread, and models are built in another (the API's inference lane)."""

    id: int
    sha256: str
    checkpoint_path: str | None  # None: the checkpoint is the blob ``sha256``
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, model: Model | ModelFiles) -> ModelFiles:
        if isinstance(model, ModelFiles):
            return model
        return cls(model.id, model.sha256, model.checkpoint_path, dict(model.config or {}))


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) or 1


def torch_threads(settings: Settings) -> int:
    """Threads torch may use in this process: ``KMINE_THREADS``, else every core it may run on.
    ``kmine serve`` splits the cores between the API and its local worker (see serve.py):
    torch's OpenMP threads spinning against another process's only slow both."""
    return settings.threads or cores()


def model_teacher(model: Model | ModelFiles | None) -> str:
    """The teacher ``model`` was trained with (the default teacher for none or an unknown one)."""
    return (model.config or {}).get("teacher", DEFAULT_TEACHER) if model is not None else DEFAULT_TEACHER


def verified_checkpoint(model: Model | ModelFiles, store: Storage) -> Path:
    """``model``'s checkpoint file: an uploaded one's own file where this machine has it, else the
    store's blob of its sha256 (from a worker on another machine, fetched through the API, which
    serves an upload's file by its hash too); refused (409) when missing or not matching its checksum."""
    path: Path | None = Path(model.checkpoint_path) if model.checkpoint_path else None
    if path is None or not path.is_file():  # a blob, or an upload on the API's disk seen from another machine
        try:
            path = store.local_path(model.sha256)
        except FileNotFoundError:
            path = None
    if path is None or not path.is_file():
        raise BadInput(f"model {model.id}'s checkpoint is missing on this server", 409)
    if file_sha256(path) != model.sha256:
        raise BadInput(f"model {model.id}'s checkpoint does not match its recorded checksum; refusing to load it", 409)
    return path


class Runtime:
    """Students and teachers built once per process from the settings.

    max_models: students kept in memory (least recently used dropped first).
    cache_items: SAM encodings each teacher keeps in memory (4 MiB each for MobileSAM);
        all of them also go to ``settings.encodings_dir``.
    """

    def __init__(self, settings: Settings, max_models: int = 4, cache_items: int = 32):
        self.settings = settings
        self.max_models = max_models
        self.cache_items = cache_items
        self._students: OrderedDict[tuple[int, str], Predictor] = OrderedDict()
        self._teachers: dict[str, Teacher] = {}
        self._threads_set = False
        self._lock = threading.RLock()  # request threads and the API's inference lane both ask

    def set_threads(self) -> None:
        """Give torch this process's share of the cores (once; before the first model is built)."""
        if not self._threads_set:
            import torch

            torch.set_num_threads(torch_threads(self.settings))
            self._threads_set = True

    @property
    def device(self) -> str:
        from kmine.training.setup import resolve_device

        return str(resolve_device(self.settings.device))

    def engine_paths(self) -> dict[str, str]:
        """The server-owned training settings (never a client's): weights, device, encodings."""
        return {"weights_dir": str(self.settings.resolved_weights_dir()), "device": self.settings.device,
                "cache_dir": str(self.settings.encodings_dir)}

    @property
    def batch(self) -> int:
        """Predictions run as one batch: ``KMINE_PREDICT_BATCH``, else 8 on a GPU and 1 on a CPU
        (where a batched student pass and a batched SAM decode measured slower: benchmarks/load.py)."""
        return self.settings.predict_batch or (8 if self.device.startswith("cuda") else 1)

    def predictor(self, model: Model | ModelFiles) -> Predictor:
        """``model``'s student, loaded once and checked against its checksum."""
        with self._lock:
            return self._predictor(model)

    def _predictor(self, model: Model | ModelFiles) -> Predictor:
        key = (model.id, model.sha256)
        if key in self._students:
            self._students.move_to_end(key)
            return self._students[key]
        self.set_threads()
        predictor = Predictor.from_checkpoint(verified_checkpoint(model, open_store(self.settings)), device=self.device,
                                              student_batch=self.batch, trace=True)
        self._students[key] = predictor
        while len(self._students) > self.max_models:
            self._students.popitem(last=False)
        return predictor

    def teacher(self, name: str) -> Teacher:
        """Teacher ``name``, built once; an unknown name is refused (422), missing weights 409."""
        with self._lock:
            return self._teacher(name)

    def _teacher(self, name: str) -> Teacher:
        if name not in self._teachers:
            from kmine.teacher import build_teacher

            self.set_threads()
            try:
                self._teachers[name] = build_teacher(
                    name, weights_dir=self.settings.resolved_weights_dir(), device=self.device,
                    cache_dir=self.settings.encodings_dir, cache_items=self.cache_items)
            except WeightsError:
                raise BadInput(f"teacher {shown(name)} is not installed on this server (its weights are missing)", 409) from None
            except ValueError as err:  # an unknown name: the caller's mistake
                raise BadInput(str(err)) from None
        return self._teachers[name]
