"""Prediction on whole images of any size: the student alone, or student → SAM.

The student sees the whole image at the scale it was trained at (shortest side = its
training size), zero-padded right/bottom to a multiple of 32; its probabilities are
brought back to the input's full size before prompts are taken, so prompt coordinates
are the input image's own pixel indices. The teacher encodes the full image (cached by
content) and decodes the prompts there.

Modes (:data:`MODES`): ``student`` alone; ``refine``, the best pseudo-label strategy measured
(BENCHMARKS.md) applied to one image: the student's probabilities averaged over the 4 flips
prompt SAM, and the answer is the pixel vote of the two (``(p_student + p_SAM) / 2 ≥ 0.5``);
``sam``, SAM's own mask for the student's (single-pass) prompts, the paper's refinement. The
raw SAM mask is kept in every mode that runs the teacher. :func:`decode_prompts` decodes
prompts a person gave (clicked points, a dragged box) the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kmine.data import PadMeta, as_rgb_uint8, check_image_shape, resize_shortest_pad, unpad_resize, upscale_mask, work_copy
from kmine.prompts import PromptConfig, PromptSet, extract_prompts, without_points
from kmine.teacher.types import Teacher
from kmine.text import shown

MODES = ("student", "refine", "sam")
TEACHER_MODES = ("refine", "sam")  # the modes that run the teacher


@dataclass
class Prediction:
    """One image's result, at the input image's full (H, W) but for ``prob``.

    prob: float32 student probability at the working size: (H, W), or for an image over
        :data:`kmine.data.MAX_WORK_PIXELS` the size of the scaled-down copy predicted on.
    student_mask: (H, W) bool, ``prob >= 0.5``.
    refined_mask: (H, W) bool: in refine mode the vote of the student and the teacher, in sam
        mode the teacher's mask; None in student mode, or when there was nothing to prompt.
    teacher_mask: (H, W) bool, the teacher's own mask whenever it ran (else None).
    mask: the answer: ``refined_mask`` when there is one, else ``student_mask``.
    prompts: the prompt sets given (or that would be given) to the teacher.
    timings_ms: milliseconds by step: ``student``, and when the teacher ran ``teacher_encode``
    (≈0 when the encoding was cached) and ``teacher_decode``.
    teacher_encodes: images the teacher's encoder ran for the call this prediction came from
    (0: every encoding came from the cache); None when the teacher did not run.
    """

    prob: np.ndarray
    student_mask: np.ndarray
    refined_mask: np.ndarray | None
    prompts: list[PromptSet]
    mode: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    teacher_encodes: int | None = None
    teacher_mask: np.ndarray | None = None

    @property
    def mask(self) -> np.ndarray:
        return self.refined_mask if self.refined_mask is not None else self.student_mask


class Predictor:
    """A student ready to predict whole images, alone or prompting a teacher.

    student: a :class:`kmine.student.Student`; size: the size it was trained at.
    teacher / prompts: the defaults for ``refine`` mode; each call may choose others, so one
    Predictor (one student in memory, one random stream for prompt tie-breaks) serves every
    request without being copied.
    student_batch: images of one padded shape that go through the student in one forward pass.
        1 (the default) on a CPU, where one batched pass measured slower than the same images one
        by one (``benchmarks/tta_batching.py``, ``benchmarks/load.py``); more pays on a GPU.
    trace: run the student as a frozen TorchScript trace: 21 % faster per pass on a 2-core CPU,
        and it takes Python's GIL once per pass instead of once per layer, so threads serving
        requests beside it slow it far less (eager 218 ms against traced 147 ms per 224-px pass
        beside two busy Python threads). The trace is shape-independent for these conv nets
        (checked against eager in the tests); if tracing fails the eager student is used.
    """

    def __init__(
        self,
        student,
        size: int = 224,
        teacher: Teacher | None = None,
        prompts: PromptConfig = PromptConfig(),
        device="cpu",
        seed: int = 0,
        student_batch: int = 1,
        trace: bool = False,
    ):
        import torch  # here, not above: importing this module (the CLI's MODES) must not load torch

        self.student = student.to(device).eval()
        self.size = size
        self.teacher = teacher
        self.prompts = prompts
        self.device = torch.device(device)
        self.rng = np.random.default_rng(seed)
        self.student_batch = max(1, student_batch)
        self._forward = _probabilities(self.student, size, self.device, trace)

    @classmethod
    def from_checkpoint(cls, path, teacher: Teacher | None = None, prompts: PromptConfig | None = None,
                        device="cpu", student_batch: int = 1, trace: bool = False) -> Predictor:
        """Load a ``best.pt`` written by training; its size and prompt settings are reused."""
        from kmine.student import load_student

        student = load_student(path)
        config = student.extra.get("config", {})
        if prompts is None:
            prompts = PromptConfig(**config["prompts"]) if "prompts" in config else PromptConfig()
        return cls(student, size=config.get("size", 224), teacher=teacher, prompts=prompts, device=device,
                   student_batch=student_batch, trace=trace)

    def student_prob(self, image: np.ndarray) -> np.ndarray:
        """(H, W) float32 probabilities at the input's full size."""
        return self.student_probs([image])[0]

    def student_probs(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Each (H, W[, 3]) image's (H, W) float32 probabilities at its full size (the student
        alone; images of one padded shape go through it together, ``student_batch`` at a time)."""
        ready = [Prepared.of(as_rgb_uint8(image), self.size, bounded=False) for image in images]
        return [unpad_resize(out[0].float().cpu().numpy(), r.meta) for r, out in zip(ready, self.forward(ready))]

    def prepare(self, image: np.ndarray) -> Prepared:
        """The CPU work before the student (checks, the bounded copy, scaling, padding): no model
        runs, so a server does it outside the thread that runs its models."""
        image = as_rgb_uint8(image)
        check_image_shape(*image.shape[:2])
        return Prepared.of(image, self.size)

    def forward(self, ready: list[Prepared], flips: bool = False):
        """The student's pass alone, and nothing else, so a thread that runs only this holds
        Python's GIL for as few moments as possible (a traced student releases it for the whole
        pass): each prepared image's (1, padded h, padded w) probability tensor, in order. Images
        of one padded shape go together, ``student_batch`` at a time; :meth:`finish` reads them.
        flips: the mean over the 4 flips of each image (test-time augmentation, refine mode)."""
        import torch

        from kmine.student.tta import view_mean

        groups: dict[tuple[int, ...], list[int]] = {}
        for i, r in enumerate(ready):
            groups.setdefault(tuple(r.x.shape), []).append(i)
        outs: list = [None] * len(ready)
        with torch.inference_mode():
            for members in groups.values():
                for start in range(0, len(members), self.student_batch):
                    chunk = members[start:start + self.student_batch]
                    x = ready[chunk[0]].x if len(chunk) == 1 else torch.cat([ready[i].x for i in chunk])
                    x = x.to(self.device)
                    probs = view_mean(self._forward, x, 4) if flips else self._forward(x)
                    for i, out in zip(chunk, probs.unbind(0)):
                        outs[i] = out
        return outs

    def finish(self, ready: Prepared, out, mode: str, config: PromptConfig | None = None,
               student_ms: float = 0.0) -> Prediction:
        """The CPU work after the student: probabilities at the working size, the mask, the
        prompts. In refine mode the teacher's part (:func:`refine`) comes next; then
        :meth:`full_size`."""
        t0 = time.perf_counter()
        prob = unpad_resize(out[0].float().cpu().numpy(), ready.meta)
        prompts = extract_prompts(prob, config if config is not None else self.prompts, self.rng)
        timings = {"student": student_ms + (time.perf_counter() - t0) * 1e3}
        return Prediction(prob, prob >= 0.5, None, prompts, mode, timings)

    def predict(self, image: np.ndarray, mode: str = "student", *, teacher: Teacher | None = None,
                prompts: PromptConfig | None = None) -> Prediction:
        """Predict one (H, W, 3) uint8 RGB (or (H, W) greyscale) image; see :meth:`predict_batch`."""
        return self.predict_batch([image], mode, teacher=teacher, prompts=prompts)[0]

    def predict_batch(self, images: list[np.ndarray], mode: str = "student", *, teacher: Teacher | None = None,
                      prompts: PromptConfig | None = None) -> list[Prediction]:
        """Predict several images. ``teacher`` and ``prompts`` override this Predictor's own for
        this call. In refine mode the teacher encodes the uncached images in batches and decodes
        every image's prompts in one batched pass; ``timings_ms`` then holds each image's share
        of the batch's teacher time, and ``teacher_encodes`` the batch's count. The steps, for a
        caller that runs them in different threads: :meth:`prepare`, :meth:`forward`,
        :meth:`finish`, :func:`refine`, :func:`full_size`."""
        if mode not in MODES:
            raise ValueError(f"mode {shown(mode)} unknown; choose one of {', '.join(MODES)}")
        refiner = None  # the teacher in refine and sam modes
        if mode in TEACHER_MODES:
            refiner = teacher if teacher is not None else self.teacher
            if refiner is None:
                raise ValueError(f"{mode} mode needs a teacher; pass teacher=build_teacher(...)")
        ready = [self.prepare(image) for image in images]
        t0 = time.perf_counter()
        outs = self.forward(ready, flips=mode == "refine")
        share = (time.perf_counter() - t0) * 1e3 / max(1, len(ready))
        results = [self.finish(r, out, mode, prompts, share) for r, out in zip(ready, outs)]
        if refiner is not None:
            refine(refiner, ready, results, vote=mode == "refine")
        return [full_size(r, result) for r, result in zip(ready, results)]


@dataclass
class Prepared:
    """An image made ready for the student.

    image: (H, W, 3) uint8 RGB, the input; work: it, or for an image over
    :data:`kmine.data.MAX_WORK_PIXELS` a copy scaled down to that many pixels (what is
    predicted on); x: the student's (1, 3, H', W') uint8 input (shortest side its size, padded
    to multiples of 32); meta: how to map the student's output back to ``work``.
    """

    image: np.ndarray
    work: np.ndarray
    x: Any
    meta: PadMeta

    @classmethod
    def of(cls, image: np.ndarray, size: int, bounded: bool = True) -> Prepared:
        import torch

        work = work_copy(image) if bounded else image
        padded, meta = resize_shortest_pad(work, size)
        return cls(image, work, torch.from_numpy(padded).permute(2, 0, 1)[None].contiguous(), meta)


def full_size(ready: Prepared, result: Prediction) -> Prediction:
    """``result`` at the input's own size (a no-op unless it was predicted on a smaller copy)."""
    if ready.work is not ready.image:
        _to_full_size(result, *ready.image.shape[:2])
    return result


def _probabilities(student, size: int, device, trace: bool):
    """``student`` with its sigmoid, one call from input to probabilities; with ``trace`` as a
    frozen TorchScript trace (eager when it cannot be traced). torch flags trace and freeze as
    deprecated and warns that a shape check inside the model is traced as a constant (inputs
    are always padded to multiples of 32, so it holds): those warnings say nothing to a user
    and are kept out of the log."""
    import warnings

    import torch

    class Probabilities(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.student = student

        def forward(self, x):
            return self.student(x).float().sigmoid()

    model = Probabilities().eval()
    if not trace:
        return model
    example = torch.zeros(1, 3, size, size, dtype=torch.uint8, device=device)
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.jit.freeze(torch.jit.trace(model, example, check_trace=False))
    except Exception:  # an unusual student: eager is always right
        return model


def _to_full_size(result: Prediction, height: int, width: int) -> None:
    """Bring a prediction made on a scaled-down copy back to the image's own size: masks
    upscaled, prompt points and boxes in the image's pixels (``prob`` stays at the copy's size)."""
    h, w = result.student_mask.shape
    sx, sy = width / w, height / h
    result.student_mask = upscale_mask(result.student_mask, height, width)
    if result.refined_mask is not None:
        result.refined_mask = upscale_mask(result.refined_mask, height, width)
    if result.teacher_mask is not None:
        result.teacher_mask = upscale_mask(result.teacher_mask, height, width)
    for p in result.prompts:
        if p.points is not None:
            p.points = (p.points * np.array([sx, sy], np.float32)).astype(np.float32)
        if p.box is not None:
            p.box = (p.box * np.array([sx, sy, sx, sy], np.float32)).astype(np.float32)


def refine(teacher: Teacher, ready: list[Prepared], results: list[Prediction], vote: bool = True) -> None:
    """The teacher's masks for the students' prompts (on the working images), written into
    ``results``: ``teacher_mask`` always, ``refined_mask`` the pixel vote of the student's
    probabilities and the teacher's (``vote``) or the teacher's mask itself."""
    images = [r.work for r in ready]
    prompts = [r.prompts if teacher.supports_points else without_points(r.prompts) for r in results]
    from kmine.training.strategy import vote as pixel_vote  # here: importing this module loads no torch

    todo = [i for i, p in enumerate(prompts) if p]  # nothing to prompt with: no SAM mask
    if not todo:
        return
    decoded, share, encodes = _teacher_pass(teacher, [images[i] for i in todo], [prompts[i] for i in todo])
    for i, d in zip(todo, decoded):
        logits = d.logits.float().cpu().numpy()
        results[i].teacher_mask = logits > 0
        if vote:
            results[i].refined_mask = pixel_vote(results[i].prob, logits)
        else:
            results[i].refined_mask = results[i].teacher_mask
        results[i].timings_ms.update(share)
        results[i].teacher_encodes = encodes


@dataclass
class PromptedMask:
    """The teacher's answer to explicit prompts, at the input image's full (H, W).

    mask: (H, W) bool; iou_pred: the teacher's own estimate of the mask's IoU;
    timings_ms: milliseconds to ``teacher_encode`` (≈0 when the encoding was cached) and to
    ``teacher_decode``; teacher_encodes: images the encoder ran (0 or 1: 0 when cached).
    """

    mask: np.ndarray
    prompts: list[PromptSet]
    iou_pred: float
    timings_ms: dict[str, float]
    teacher_encodes: int


def user_prompt_set(shape: tuple[int, int], points=None, point_labels=None, box=None) -> PromptSet:
    """A :class:`PromptSet` from plain lists a person clicked, checked against the image ``shape`` (H, W).

    points: ``[[x, y], …]`` in image pixels; point_labels: 1 (foreground) or 0 (background)
    per point, default all 1; box: ``[x0, y0, x1, y1]`` in any corner order (a dragged box may
    start at any corner). Raises ValueError naming the problem.
    """
    h, w = shape
    pts, lbl = _user_points(points, point_labels, h, w) if points is not None and len(points) else (None, None)
    bx = _user_box(box, h, w) if box is not None else None
    if pts is None and bx is None:
        raise ValueError("give at least one point or a box")
    if lbl is not None and not (lbl == 1).any() and bx is None:
        raise ValueError("background points alone say nothing about the object: add a foreground point or a box")
    return PromptSet(points=pts, point_labels=lbl, box=bx)


def _user_points(points, point_labels, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(K, 2) float32 points inside the h×w image and their (K,) int64 labels (default all 1)."""
    pts = np.asarray(points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must be [[x, y], …], got shape {pts.shape}")
    if not np.isfinite(pts).all() or (pts < 0).any() or (pts[:, 0] > w - 1).any() or (pts[:, 1] > h - 1).any():
        raise ValueError(f"points must lie inside the {w}×{h} image")
    lbl = np.ones(len(pts), np.int64) if point_labels is None else np.asarray(point_labels, dtype=np.int64)
    if lbl.shape != (len(pts),) or not np.isin(lbl, (0, 1)).all():
        raise ValueError("point_labels must give 1 (foreground) or 0 (background) for each point")
    return pts, lbl


def _user_box(box, h: int, w: int) -> np.ndarray:
    """[x0, y0, x1, y1] float32, corners sorted and clipped to the h×w image."""
    b = np.asarray(box, dtype=np.float32).reshape(-1)
    if b.size != 4 or not np.isfinite(b).all():
        raise ValueError("box must be [x0, y0, x1, y1]")
    x0, x1 = sorted(np.clip(b[[0, 2]], 0, w - 1))
    y0, y1 = sorted(np.clip(b[[1, 3]], 0, h - 1))
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise ValueError("box is empty: drag (or click) two different corners")
    return np.array([x0, y0, x1, y1], np.float32)


def decode_prompts(teacher: Teacher, image: np.ndarray, prompts: list[PromptSet]) -> PromptedMask:
    """The teacher's mask for explicit prompts on one image; its encoding comes from the
    teacher's content-keyed cache when the image was seen before, so only the cheap decoder
    runs. A single point alone is ambiguous (part or whole?): then SAM's three candidate
    masks are decoded and the one it rates best is kept, as SAM's authors advise."""
    image = as_rgb_uint8(image)
    if not prompts:
        raise ValueError("no prompts to decode")
    if not teacher.supports_points and any(p.points is not None for p in prompts):
        raise ValueError(f"teacher {shown(teacher.name)} takes box prompts only: draw a box instead of points")
    first = prompts[0]
    single_point = len(prompts) == 1 and first.box is None and first.points is not None and len(first.points) == 1
    (decoded,), timings, encodes = _teacher_pass(teacher, [image], [prompts], multimask=single_point)
    if single_point:
        best = int(decoded.multimask_iou[0].argmax())
        logits, iou = decoded.multimask_logits[0, best], float(decoded.multimask_iou[0, best])
    else:
        logits, iou = decoded.logits, decoded.iou_pred
    return PromptedMask((logits > 0).cpu().numpy(), prompts, iou, timings, encodes)


def _teacher_pass(teacher: Teacher, images: list[np.ndarray], prompts: list[list[PromptSet]], multimask: bool = False):
    """Encode (cached) and decode; returns the decoded masks, each image's share of the time in
    milliseconds, and how many images the encoder ran (the rest came from its cache)."""
    calls = teacher.encode_calls
    t0 = time.perf_counter()
    encodings = teacher.encode(images)
    t1 = time.perf_counter()
    decoded = teacher.decode(encodings, prompts, multimask=multimask)
    t2 = time.perf_counter()
    share = {
        "teacher_encode": (t1 - t0) * 1e3 / len(images),
        "teacher_decode": (t2 - t1) * 1e3 / len(images),
    }
    return decoded, share, teacher.encode_calls - calls
