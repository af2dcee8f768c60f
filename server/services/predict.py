"""Prediction in the API process, with the students and teachers of :mod:`server.core.runtime`
(checksummed, built once, SAM encodings cached on disk by image content). Also what
labelling needs: SAM re-prompted with a person's clicks, and unlabelled images ranked by how
much the student and SAM disagree (scores cached per model and image content)."""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from kmine.data import mask_png
from kmine.metrics import dice_iou
from kmine.predict import Prediction, Predictor, decode_prompts, user_prompt_set
from kmine.prompts import PromptConfig
from kmine.teacher import Teacher
from server.core.errors import BadInput
from server.core.models import Model
from server.core.runtime import Runtime, model_teacher
from server.core.settings import Settings


class PredictionService:
    """Predictions, SAM re-prompts and disagreement scores for the API, from one :class:`Runtime`."""

    def __init__(self, settings: Settings, max_models: int = 4):
        self.runtime = Runtime(settings, max_models=max_models)
        self.max_models = max_models
        # (model id, checksum) -> image sha256 -> disagreement record
        self._scores: OrderedDict[tuple, dict[str, dict]] = OrderedDict()
        self._lock = threading.Lock()

    def teacher(self, name: str) -> Teacher:
        return self.runtime.teacher(name)

    def _options(self, model: Model, mode: str, prompts: str | None) -> tuple[Predictor, PromptConfig, Teacher | None]:
        """The model's predictor with the prompt kinds asked for and, to refine, its teacher."""
        predictor = self.runtime.predictor(model)
        config = predictor.prompts
        if prompts:
            try:
                config = PromptConfig.parse(prompts, n_points=config.n_points)
            except ValueError as err:
                raise BadInput(str(err)) from None
        teacher = self.runtime.teacher(model_teacher(model)) if mode == "refine" else None
        return predictor, config, teacher

    def predict(self, model: Model, image: np.ndarray, mode: str, prompts: str | None = None,
                truth: np.ndarray | None = None) -> dict:
        with self._lock:  # one prediction at a time: models and caches are shared
            predictor, config, teacher = self._options(model, mode, prompts)
            result = predictor.predict(image, mode, teacher=teacher, prompts=config)
        answer = {
            "model_id": model.id,
            "mode": mode,
            "prompt_kinds": config.label,
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
            "mask_png": base64.b64encode(mask_png(result.mask)).decode(),
            "refined": result.refined_mask is not None,
            "prompts": [prompt_json(p) for p in result.prompts],
            "timings_ms": result.timings_ms,
            "teacher_encodes": result.teacher_encodes,
        }
        if truth is not None:
            dice, iou = dice_iou(result.mask, truth)
            answer.update(dice=dice, iou=iou)
        answer["_mask"] = result.mask
        return answer

    def reprompt(self, teacher_name: str, image: np.ndarray, points=None, point_labels=None, box=None) -> dict:
        """SAM's mask for a person's clicked points (1 foreground, 0 background) and/or box.
        The image's encoding is cached by content, so after the first call only SAM's
        decoder runs (tens of milliseconds on a CPU)."""
        try:
            prompt = user_prompt_set(image.shape[:2], points, point_labels, box)
        except ValueError as err:
            raise BadInput(str(err)) from None
        with self._lock:
            teacher = self.teacher(teacher_name)
            try:
                result = decode_prompts(teacher, image, [prompt])
            except ValueError as err:  # e.g. points for a box-only teacher
                raise BadInput(str(err)) from None
        return {"teacher": teacher_name, "width": int(image.shape[1]), "height": int(image.shape[0]),
                "mask_png": base64.b64encode(mask_png(result.mask)).decode(), "iou_pred": result.iou_pred,
                "prompts": [prompt_json(p) for p in result.prompts], "timings_ms": result.timings_ms,
                "teacher_encodes": result.teacher_encodes}

    def disagreements(self, model: Model, images: list[tuple[str, Callable[[], np.ndarray]]], batch: int = 8) -> list[dict]:
        """For each (sha256, load RGB) of ``images``: how much the model's student and SAM prompted
        by it disagree (``disagreement`` = 1 − Dice(student mask, SAM mask)). Records are cached
        per model and image content, so a second ranking only predicts images it has not seen."""
        key = (model.id, model.sha256)
        with self._lock:
            scores = self._scores.setdefault(key, {})
            self._scores.move_to_end(key)
            while len(self._scores) > self.max_models:
                self._scores.popitem(last=False)
        todo = [(sha, load) for sha, load in dict(images).items() if sha not in scores]
        for start in range(0, len(todo), batch):  # batched, and the lock freed between batches
            chunk = todo[start:start + batch]
            rgbs = [load() for _, load in chunk]
            with self._lock:
                predictor, config, teacher = self._options(model, "refine", None)
                results = predictor.predict_batch(rgbs, "refine", teacher=teacher, prompts=config)
            for (sha, _), result in zip(chunk, results):
                scores[sha] = disagreement_record(result)
        return [scores[sha] for sha, _ in images]


def disagreement_record(result: Prediction) -> dict:
    """1 − Dice(student, SAM). A student that finds nothing gives SAM no prompt; such an image
    counts as full disagreement, because it is the student's failure a label would fix first."""
    student_px = int(result.student_mask.sum())
    if result.refined_mask is None:
        return {"disagreement": 1.0, "student_sam_dice": None, "student_pixels": student_px, "sam_pixels": None}
    dice, _ = dice_iou(result.student_mask, result.refined_mask)
    return {"disagreement": 1.0 - float(dice), "student_sam_dice": float(dice), "student_pixels": student_px,
            "sam_pixels": int(result.refined_mask.sum())}


def pick_model(session: Session, model_id: int | None, dataset_ids: list[int]) -> Model:
    """``model_id``'s model, else the active model of one of ``dataset_ids``, else the newest active one."""
    if model_id is not None:
        model = session.get(Model, model_id)
        if model is None:
            raise BadInput(f"model {model_id} not found", 404)
        return model
    query = select(Model).where(Model.active.is_(True)).order_by(Model.id.desc())
    model = session.scalars(query.where(Model.dataset_id.in_(dataset_ids))).first() if dataset_ids else None
    model = model or session.scalars(query).first()
    if model is None:
        raise BadInput("no model yet: train one (POST /api/v1/jobs with kind 'train') or upload one "
                       "(POST /api/v1/models), then activate it, or pass model_id", 409)
    return model


def prompt_json(p) -> dict:
    return {
        "points": None if p.points is None else np.asarray(p.points).round(2).tolist(),
        "point_labels": None if p.point_labels is None else np.asarray(p.point_labels).tolist(),
        "box": None if p.box is None else np.asarray(p.box).round(2).tolist(),
    }
