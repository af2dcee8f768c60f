"""Prediction in the API process: students loaded per model (checked against their
checksum), teachers built once, SAM encodings cached on disk by image content."""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from kmine.metrics import dice_iou
from kmine.predict import Predictor
from kmine.prompts import PromptConfig
from server.core.models import Model
from server.core.settings import Settings
from server.core.storage import file_sha256
from server.services.uploads import BadInput, mask_png


class PredictionService:
    def __init__(self, settings: Settings, max_models: int = 4):
        self.settings = settings
        self.max_models = max_models
        self._students: OrderedDict[tuple[int, str], Predictor] = OrderedDict()
        self._teachers: dict[str, object] = {}
        self._lock = threading.Lock()

    def _device(self) -> str:
        from kmine.training.setup import resolve_device

        return str(resolve_device(self.settings.device))

    def _predictor(self, model: Model) -> Predictor:
        key = (model.id, model.sha256)
        if key in self._students:
            self._students.move_to_end(key)
            return self._students[key]
        path = Path(model.checkpoint_path)
        if not path.is_file():
            raise BadInput(f"model {model.id}'s checkpoint {path} is missing on this server", 409)
        if file_sha256(path) != model.sha256:
            raise BadInput(f"model {model.id}'s checkpoint does not match its recorded checksum; refusing to load it", 409)
        predictor = Predictor.from_checkpoint(path, device=self._device())
        self._students[key] = predictor
        while len(self._students) > self.max_models:
            self._students.popitem(last=False)
        return predictor

    def teacher(self, name: str):
        if name not in self._teachers:
            from kmine.teacher import EncodingCache, build_teacher

            cache = EncodingCache(max_items=32, disk_dir=self.settings.encodings_dir)
            self._teachers[name] = build_teacher(name, weights_dir=self.settings.resolved_weights_dir(),
                                                 device=self._device(), cache=cache)
        return self._teachers[name]

    def predict(self, model: Model, image: np.ndarray, mode: str, prompts: str | None = None,
                truth: np.ndarray | None = None) -> dict:
        with self._lock:  # one prediction at a time: models and caches are shared
            base = self._predictor(model)
            prompt_config = base.prompts
            if prompts:
                try:
                    prompt_config = PromptConfig.parse(prompts, n_points=base.prompts.n_points)
                except ValueError as err:
                    raise BadInput(str(err)) from None
            teacher = None
            if mode == "refine":
                teacher = self.teacher(model.config.get("teacher", "mobilesam"))
            predictor = Predictor(base.student, size=base.size, teacher=teacher, prompts=prompt_config,
                                  device=str(base.device))
            predictor.rng = base.rng
            result = predictor.predict(image, mode)
        answer = {
            "model_id": model.id,
            "mode": mode,
            "prompt_kinds": prompt_config.label,
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
            "mask_png": base64.b64encode(mask_png(result.mask)).decode(),
            "refined": result.refined_mask is not None,
            "prompts": [prompt_json(p) for p in result.prompts],
            "timings_ms": result.timings_ms,
        }
        if truth is not None:
            dice, iou = dice_iou(result.mask, truth)
            answer.update(dice=dice, iou=iou)
        answer["_mask"] = result.mask
        return answer


def prompt_json(p) -> dict:
    return {
        "points": None if p.points is None else np.asarray(p.points).round(2).tolist(),
        "point_labels": None if p.point_labels is None else np.asarray(p.point_labels).tolist(),
        "box": None if p.box is None else np.asarray(p.box).round(2).tolist(),
    }
