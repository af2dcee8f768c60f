"""Prediction in the API process, with the students and teachers of :mod:`server.core.runtime`
(checksummed, built once, SAM encodings cached on disk by image content). Also what
labelling needs: SAM re-prompted with a person's clicks, and unlabelled images ranked by how
much the student and SAM disagree (scores cached per model and image content).

Every model call goes through one :class:`~server.services.inference.InferenceLane`: the
request's thread prepares the input and builds the answer (PNG, base64, metrics), the lane's
thread runs the model; concurrent predictions of one model, mode and prompt kinds run as one
batch."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from kmine.data import mask_png
from kmine.metrics import dice_iou
from kmine.predict import (
    TEACHER_MODES,
    Prediction,
    Predictor,
    Prepared,
    PromptedMask,
    decode_prompts,
    full_size,
    user_prompt_set,
)
from kmine.prompts import PromptConfig
from kmine.teacher import Teacher
from server.core.disagreement import disagreement_record, store_scores, stored_scores
from server.core.errors import BadInput
from server.core.models import Model
from server.core.runtime import ModelFiles, Runtime, model_teacher
from server.core.settings import Settings
from server.services.inference import InferenceLane
from server.services.sam_objects import LogitsMemory, Remembered, bit_png, decode_objects, group_prompts


class PredictionService:
    """Predictions, SAM re-prompts and disagreement scores for the API, from one :class:`Runtime`."""

    def __init__(self, settings: Settings, max_models: int = 4):
        self.runtime = Runtime(settings, max_models=max_models)
        self.lane = InferenceLane(capacity=settings.max_waiting_predictions, max_batch=self.runtime.batch)
        self.max_models = max_models
        self.logits = LogitsMemory()  # the last SAM answers' logits, for corrective clicks

    def teacher(self, name: str) -> Teacher:
        return self.runtime.teacher(name)

    def _options(self, model: ModelFiles, mode: str, prompts: str | None) -> tuple[Predictor, PromptConfig, Teacher | None]:
        """The model's predictor with the prompt kinds asked for and, to refine, its teacher."""
        predictor = self.runtime.predictor(model)
        config = predictor.prompts
        if prompts:
            try:
                config = PromptConfig.parse(prompts, n_points=config.n_points)
            except ValueError as err:
                raise BadInput(str(err)) from None
        teacher = self.runtime.teacher(model_teacher(model)) if mode in TEACHER_MODES else None
        return predictor, config, teacher

    def start(self, model: Model | ModelFiles, image: np.ndarray, mode: str, prompts: str | None = None) -> Pending:
        """Begin one prediction from a request's thread: the CPU work before the model runs here,
        the model's part is queued on the lane. Student mode queues the student's pass alone (so
        the lane runs almost nothing but the model); refine mode the whole prediction (SAM needs
        the student's prompts first). Waiting calls of one model, mode and kinds run as one batch."""
        files = ModelFiles.of(model)
        key = ("predict", files.id, files.sha256, mode, prompts)
        if mode == "student":
            predictor, config, _ = self._options(files, mode, prompts)
            ready = predictor.prepare(image)

            def forward(items: list[Prepared]) -> list[tuple[np.ndarray, float]]:
                t0 = time.perf_counter()
                outs = predictor.forward(items)
                ms = (time.perf_counter() - t0) * 1e3 / len(items)
                return [(out, ms) for out in outs]

            def finish(raw: tuple[np.ndarray, float]) -> tuple[Prediction, str]:
                result = predictor.finish(ready, raw[0], mode, config, student_ms=raw[1])
                return full_size(ready, result), config.label

            return Pending(self.lane.submit(forward, ready, key=key), finish)

        def run(images: list[np.ndarray]) -> list[tuple[Prediction, str]]:
            predictor, config, teacher = self._options(files, mode, prompts)
            results = predictor.predict_batch(images, mode, teacher=teacher, prompts=config)
            return [(result, config.label) for result in results]

        return Pending(self.lane.submit(run, image, key=key), lambda done: done)

    @staticmethod
    def answer(model: Model | ModelFiles, image: np.ndarray, mode: str, done: tuple[Prediction, str],
               truth: np.ndarray | None = None) -> dict:
        """The API's answer for a finished prediction (PNG, base64, metrics: built outside the lane)."""
        result, kinds = done
        png = mask_png(result.mask)
        answer = {
            "model_id": model.id,
            "mode": mode,
            "prompt_kinds": kinds,
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
            "mask_png": base64.b64encode(png).decode(),
            "refined": result.refined_mask is not None,
            "prompts": [prompt_json(p) for p in result.prompts],
            "timings_ms": result.timings_ms,
            "teacher_encodes": result.teacher_encodes,
        }
        if truth is not None:
            dice, iou = dice_iou(result.mask, truth)
            answer.update(dice=dice, iou=iou)
        answer["_png"] = png  # the mask's PNG, for a caller that keeps it (encoded once)
        return answer

    def reprompt(self, teacher_name: str, image: np.ndarray, points=None, point_labels=None, box=None) -> dict:
        """SAM's mask for a person's clicked points (1 foreground, 0 background) and/or box.
        The image's encoding is cached by content, so after the first call only SAM's
        decoder runs (tens of milliseconds on a CPU)."""
        try:
            prompt = user_prompt_set(image.shape[:2], points, point_labels, box)
        except ValueError as err:
            raise BadInput(str(err)) from None

        def run(items: list[np.ndarray]) -> list[PromptedMask]:  # never batched (no key): one item
            try:
                return [decode_prompts(self.teacher(teacher_name), items[0], [prompt])]
            except ValueError as err:  # e.g. points for a box-only teacher
                raise BadInput(str(err)) from None

        result = self.lane.call(run, image)
        return {"teacher": teacher_name, "width": int(image.shape[1]), "height": int(image.shape[0]),
                "mask_png": base64.b64encode(mask_png(result.mask)).decode(), "iou_pred": result.iou_pred,
                "prompts": [prompt_json(p) for p in result.prompts], "timings_ms": result.timings_ms,
                "teacher_encodes": result.teacher_encodes}

    def prompt_objects(self, teacher_name: str, image: np.ndarray, image_key: str, boxes: list, points: list,
                       labels: list, previous: str | None = None) -> dict:
        """SAM's merged mask for several boxes and points (see :mod:`server.services.sam_objects`)
        as a 1-bit PNG, with a token for the next corrective click (``previous``)."""
        try:
            objects = group_prompts(image.shape[:2], boxes, points, labels)
        except ValueError as err:
            raise BadInput(str(err)) from None
        earlier = self.logits.get(previous, image_key, teacher_name)

        def run(items: list[np.ndarray]):  # never batched (no key): one item
            try:
                return [decode_objects(self.teacher(teacher_name), items[0], objects, earlier)]
            except ValueError as err:  # e.g. points for a box-only teacher
                raise BadInput(str(err)) from None

        result = self.lane.call(run, image)
        token = self.logits.put(Remembered(image_key, teacher_name, result.logits))
        return {"teacher": teacher_name, "width": int(image.shape[1]), "height": int(image.shape[0]),
                "mask_png": base64.b64encode(bit_png(result.mask)).decode(), "pixels": int(result.mask.sum()),
                "iou_pred": result.iou_pred, "objects": len(objects.sets), "reused_logits": result.reused,
                "logits_token": token, "timings_ms": result.timings_ms, "teacher_encodes": result.teacher_encodes}

    def disagreements(self, model: Model, images: Sequence[tuple[str, Callable[[], np.ndarray]]],
                      batch: int = 8) -> list[dict]:
        """For each (sha256, load RGB) of ``images``: how much the model's student and SAM prompted
        by it disagree (:func:`server.core.disagreement.disagreement_record`)."""
        scores: list[dict] = []
        for start in range(0, len(images), batch):  # a batch at a time: other calls run between
            chunk = images[start:start + batch]
            pending = [self.start(model, load(), "sam", None) for _, load in chunk]  # run as one batch
            scores += [disagreement_record(p.finish(p.future.result())[0]) for p in pending]
        return scores


def ranked(session: Session, service: PredictionService, model: Model,
           images: Sequence[tuple[str, Callable[[], np.ndarray]]]) -> list[dict]:
    """Each image's disagreement record: the stored one (the worker scores a split's unlabelled
    images when it trains the model), else computed now and stored."""
    scores = stored_scores(session, model.id, [sha for sha, _ in images])
    todo = list({sha: load for sha, load in images if sha not in scores}.items())
    if todo:
        new = dict(zip((sha for sha, _ in todo), service.disagreements(model, todo)))
        store_scores(session, model.id, new)
        scores.update(new)
    return [scores[sha] for sha, _ in images]


@dataclass
class Pending:
    """A prediction on its way: the lane's future, and what turns its result into the
    (:class:`Prediction`, prompt kinds) pair, to run in the request's thread."""

    future: Future
    finish: Callable[[Any], tuple[Prediction, str]]


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
