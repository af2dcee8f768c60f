"""A SAM teacher answering clicks on one image, as an annotator's session does.

Each object is one prompt set (its points, maybe a box) plus its latest answer. A click is
added to the prompts of the object it corrects and only that object is decoded again, with
its previous answer's low-resolution logits as the mask prompt (SAM's interactive protocol,
``PromptSet.low_res_logits``). The image's mask is the union of the objects' masks.

Which object a click corrects:
- negative: every object whose mask covers the clicked pixel (the false positive is theirs);
  those objects lose their box, if they had one;
- positive: the object whose box contains it (the smallest such box), else the object
  without a box whose positive point is nearest the click, else the nearest object whose box, grown by half its size on
  every side, contains it: that box is stretched to the click (a point outside a box barely
  moves SAM's mask for that box, and a missed rim just outside it is that object's). A click
  farther from every box starts a new click-only object. (Starting a new object for a rim
  click instead made SAM's lone-point answer swallow the image: Dice 0.95 → 0.15 on a polyp.)
A click-only object with a single point is ambiguous (part or whole?): SAM's three candidate
masks are decoded and the best rated kept, as SAM's authors advise; later clicks use the
single-mask output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from kmine.clicks import Click
from kmine.prompts import PromptSet
from kmine.teacher.transforms import postprocess_masks
from kmine.teacher.types import Decoded, Encoding, Teacher


@dataclass
class _Object:
    """One object's prompts and its latest answer.

    points: (x, y) per click; labels: 1/0 per point; box: (4,) or None;
    low_res: (h, w) logits of the latest answer in the mask-prompt frame, or None;
    mask: (H, W) bool latest answer.
    """

    points: list[tuple[float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    box: np.ndarray | None = None
    low_res: np.ndarray | None = None
    mask: np.ndarray | None = None

    def prompt(self) -> PromptSet:
        has_points = bool(self.points)
        return PromptSet(
            points=np.asarray(self.points, np.float32).reshape(-1, 2) if has_points else None,
            point_labels=np.asarray(self.labels, np.int64) if has_points else None,
            box=self.box,
            low_res_logits=self.low_res,
        )

    def ambiguous(self) -> bool:
        return self.box is None and self.low_res is None and len(self.points) == 1

    def stretch(self, x: int, y: int) -> None:
        """Grow the box just enough to hold (x, y)."""
        assert self.box is not None
        x0, y0, x1, y1 = self.box
        self.box = np.array([min(x0, x), min(y0, y), max(x1, x), max(y1, y)], np.float32)

    def contains(self, x: int, y: int) -> bool:
        if self.box is None:
            return False
        x0, y0, x1, y1 = self.box
        return bool(x0 <= x <= x1 and y0 <= y <= y1)


class ClickSession:
    """Clicks on one image answered by a point-taking SAM teacher.

    teacher: a :class:`~kmine.teacher.types.Teacher` with ``supports_points``;
    image: (H, W[, 3]) uint8, encoded once (the teacher's cache keeps it);
    start: the first prompt sets (e.g. a ground-truth box, or the student's prompts as in
    kmine's refine mode); none for clicks alone. Their ``points`` and ``box`` are kept,
    other fields ignored.
    """

    def __init__(self, teacher: Teacher, image: np.ndarray, start: list[PromptSet] | None = None):
        if not teacher.supports_points:
            raise ValueError(f"teacher {teacher.name!r} takes no point prompts: it cannot answer clicks")
        self.teacher = teacher
        (self.encoding,) = teacher.encode([image])
        self.objects: list[_Object] = [_from_prompt(p) for p in (start or [])]
        self._decode(self.objects)

    @property
    def shape(self) -> tuple[int, int]:
        return self.encoding.original_size

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool: the union of the objects' masks."""
        out = np.zeros(self.shape, bool)
        for obj in self.objects:
            if obj.mask is not None:
                out |= obj.mask
        return out

    def click(self, click: Click) -> np.ndarray:
        """Add ``click`` to the object(s) it corrects, decode them; the new (H, W) bool mask."""
        touched = self._route(click)
        for obj in touched:
            obj.points.append((float(click.x), float(click.y)))
            obj.labels.append(1 if click.positive else 0)
            if not click.positive:
                # "Not here" inside an object's answer: its box stops binding it (with the box
                # kept, SAM keeps a spurious component of the student's however often it is
                # clicked off); its points and previous answer carry the object on.
                obj.box = None
        self._decode(touched)
        return self.mask

    def _route(self, click: Click) -> list[_Object]:
        if not click.positive:
            covering = [o for o in self.objects if o.mask is not None and o.mask[click.y, click.x]]
            return covering or list(self.objects)
        boxed = [o for o in self.objects if o.contains(click.x, click.y)]
        if boxed:
            return [min(boxed, key=_box_area)]
        free = [o for o in self.objects if o.box is None]
        if free:
            return [min(free, key=lambda o: _point_distance(o, click.x, click.y))]
        near = [o for o in self.objects if _near(o, click.x, click.y)]
        if near:
            obj = min(near, key=lambda o: _box_distance(o, click.x, click.y))
            obj.stretch(click.x, click.y)
            return [obj]
        self.objects.append(_Object())
        return [self.objects[-1]]

    def _decode(self, objects: list[_Object]) -> None:
        if not objects:
            return
        multimask = any(o.ambiguous() for o in objects)
        (decoded,) = self.teacher.decode([self.encoding], [[o.prompt() for o in objects]], multimask=multimask)
        assert decoded is not None  # objects is not empty
        for i, obj in enumerate(objects):
            obj.low_res, logits = _answer(decoded, i, obj.ambiguous(), self.encoding)
            obj.mask = logits > 0


def _from_prompt(prompt: PromptSet) -> _Object:
    points = [] if prompt.points is None else [(float(x), float(y)) for x, y in np.asarray(prompt.points)]
    labels = [] if prompt.point_labels is None else [int(v) for v in np.asarray(prompt.point_labels)]
    box = None if prompt.box is None else np.asarray(prompt.box, np.float32)
    return _Object(points, labels, box)


def _near(obj: _Object, x: int, y: int) -> bool:
    """Whether (x, y) lies in ``obj``'s box grown by half its width/height on each side."""
    if obj.box is None:
        return False
    x0, y0, x1, y1 = obj.box
    dx, dy = (x1 - x0) / 2, (y1 - y0) / 2
    return bool(x0 - dx <= x <= x1 + dx and y0 - dy <= y <= y1 + dy)


def _point_distance(obj: _Object, x: int, y: int) -> float:
    """Distance from (x, y) to ``obj``'s nearest positive point (inf without one)."""
    positives = [p for p, label in zip(obj.points, obj.labels) if label == 1]
    return min((float(np.hypot(px - x, py - y)) for px, py in positives), default=float("inf"))


def _box_distance(obj: _Object, x: int, y: int) -> float:
    assert obj.box is not None
    x0, y0, x1, y1 = obj.box
    return float(np.hypot(max(x0 - x, 0, x - x1), max(y0 - y, 0, y - y1)))


def _box_area(obj: _Object) -> float:
    assert obj.box is not None
    return float((obj.box[2] - obj.box[0]) * (obj.box[3] - obj.box[1]))


def _answer(decoded: Decoded, i: int, ambiguous: bool, encoding: Encoding) -> tuple[np.ndarray, np.ndarray]:
    """Set ``i``'s (h, w) low-res logits and (H, W) full-size logits: the best-rated of the
    three candidates for an ambiguous set, else the single-mask output."""
    if ambiguous and decoded.multimask_low_res is not None and decoded.multimask_iou is not None:
        low = decoded.multimask_low_res[i, int(decoded.multimask_iou[i].argmax())]
    else:
        low = decoded.low_res_logits[i]
    # The input frame's longest side is the model's input size S (ResizeLongestSide).
    full = postprocess_masks(low[None, None].float(), encoding.input_size, max(encoding.input_size),
                             encoding.original_size)[0, 0]
    return low.numpy(), _numpy(full)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()
