"""Prediction on whole images of any size: the student alone, or student → SAM.

The student sees the whole image at the scale it was trained at (shortest side = its
training size), zero-padded right/bottom to a multiple of 32; its probabilities are
brought back to the input's full size before prompts are taken, so prompt coordinates
are the input image's own pixel indices. Refinement encodes the full image with the
teacher (cached by content) and decodes the prompts there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from kmine.data import resize_shortest_pad, unpad_resize
from kmine.prompts import PromptConfig, PromptSet, extract_prompts, without_points

MODES = ("student", "refine")


@dataclass
class Prediction:
    """One image's result, everything at the input image's full (H, W).

    prob: (H, W) float32 student probability.
    student_mask: (H, W) bool, ``prob >= 0.5``.
    refined_mask: (H, W) bool teacher mask, or None (student mode, or nothing to prompt).
    mask: the answer: ``refined_mask`` in refine mode when there is one, else ``student_mask``.
    prompts: the prompt sets given (or that would be given) to the teacher.
    """

    prob: np.ndarray
    student_mask: np.ndarray
    refined_mask: np.ndarray | None
    prompts: list[PromptSet]
    mode: str
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def mask(self) -> np.ndarray:
        return self.refined_mask if self.refined_mask is not None else self.student_mask


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    return image


class Predictor:
    """Student (and optionally teacher) ready to predict.

    student: a :class:`kmine.student.Student`; size: the size it was trained at.
    teacher: a :class:`kmine.teacher.Teacher` for ``refine`` mode, or None.
    """

    def __init__(self, student, size: int = 224, teacher=None, prompts: PromptConfig = PromptConfig(), device="cpu", seed: int = 0):
        self.student = student.to(device).eval()
        self.size = size
        self.teacher = teacher
        self.prompts = prompts
        self.device = torch.device(device)
        self.rng = np.random.default_rng(seed)

    @classmethod
    def from_checkpoint(cls, path, teacher=None, prompts: PromptConfig | None = None, device="cpu") -> "Predictor":
        """Load a ``best.pt`` written by training; its size and prompt settings are reused."""
        from kmine.student import load_student

        student = load_student(path)
        config = student.extra.get("config", {})
        if prompts is None:
            prompts = PromptConfig(**config["prompts"]) if "prompts" in config else PromptConfig()
        return cls(student, size=config.get("size", 224), teacher=teacher, prompts=prompts, device=device)

    def student_prob(self, image: np.ndarray) -> np.ndarray:
        """(H, W) float32 probabilities at the input's full size."""
        padded, meta = resize_shortest_pad(image, self.size)
        x = torch.from_numpy(padded).permute(2, 0, 1)[None].to(self.device)
        with torch.inference_mode():
            prob = torch.sigmoid(self.student(x).float())[0, 0].cpu().numpy()
        return unpad_resize(prob, meta)

    def predict(self, image: np.ndarray, mode: str = "student") -> Prediction:
        """Predict one (H, W, 3) uint8 RGB (or (H, W) greyscale) image."""
        return self.predict_batch([image], mode)[0]

    def predict_batch(self, images: list[np.ndarray], mode: str = "student") -> list[Prediction]:
        """Predict several images. In refine mode the teacher encodes the uncached ones in
        batches and decodes every image's prompts in one batched pass; ``timings_ms`` then
        holds each image's share of the batch's teacher time."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} unknown; choose one of {', '.join(MODES)}")
        if mode == "refine" and self.teacher is None:
            raise ValueError("refine mode needs a teacher; build the Predictor with teacher=build_teacher(...)")
        images = [_as_rgb(image) for image in images]
        results = [self._student(image, mode) for image in images]
        if mode == "refine":
            self._refine(images, results)
        return results

    def _student(self, image: np.ndarray, mode: str) -> Prediction:
        t0 = time.perf_counter()
        prob = self.student_prob(image)
        prompts = extract_prompts(prob, self.prompts, self.rng)
        timings = {"student": (time.perf_counter() - t0) * 1e3}
        return Prediction(prob, prob >= 0.5, None, prompts, mode, timings)

    def _refine(self, images: list[np.ndarray], results: list[Prediction]) -> None:
        prompts = [r.prompts if self.teacher.supports_points else without_points(r.prompts) for r in results]
        todo = [i for i, p in enumerate(prompts) if p]  # nothing to prompt with: no SAM mask
        if not todo:
            return
        calls = self.teacher.encode_calls
        t0 = time.perf_counter()
        encodings = self.teacher.encode([images[i] for i in todo])
        t1 = time.perf_counter()
        decoded = self.teacher.decode(encodings, [prompts[i] for i in todo])
        t2 = time.perf_counter()
        share = {
            "teacher_encode": (t1 - t0) * 1e3 / len(todo),
            "teacher_decode": (t2 - t1) * 1e3 / len(todo),
            "teacher_encodes_run": float(self.teacher.encode_calls - calls),
        }
        for i, d in zip(todo, decoded):
            results[i].refined_mask = (d.logits > 0).cpu().numpy()
            results[i].timings_ms.update(share)
