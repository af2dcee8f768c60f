"""SAM re-prompted with everything a person drew on an image: several boxes and positive and
negative points, answered with a compact mask (a 1-bit PNG of the mask alone) from the image's
cached encoding.

Each box is one object (one SAM prompt set); a point belongs to the smallest box it lies in,
positive points outside every box make one more object, and negative points outside every box
tell every object what it is not. The masks of the objects are merged (their union).

Corrective clicks reuse the previous answer, as SAM's own interactive protocol does: each
answer's per-object logits are kept under a random token for a while, and a request naming
that token (``previous``) gives each object that was already there (the same box, or the free
points) its earlier logits as the mask prompt. Only the server holds them (a 1024² float map
per object is far too big to send to a browser and back on each click)."""

from __future__ import annotations

import io
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from kmine.prompts import PromptSet
from kmine.teacher import Teacher
from kmine.teacher.transforms import postprocess_masks
from kmine.text import shown

FREE = "points"  # the key of the object made of the points that lie in no box
Key = tuple[float, ...] | str


@dataclass
class Objects:
    """The prompt sets decoded for one request, and the key each is remembered by."""

    sets: list[PromptSet]
    keys: list[Key]


def group_prompts(shape: tuple[int, int], boxes: list, points: list, labels: list) -> Objects:
    """Boxes and points (image pixels, (H, W) ``shape``) as SAM prompt sets, one per object.
    Raises ValueError naming the problem: a coordinate outside the image, a box without area,
    or nothing that says where the object is."""
    h, w = shape
    boxes = [_box(b, w, h) for b in boxes]
    pts = np.asarray(points, np.float32).reshape(-1, 2)
    lbl = np.asarray(labels, np.int64).reshape(-1)
    if not np.isfinite(pts).all() or (pts < 0).any() or (pts[:, 0] > w).any() or (pts[:, 1] > h).any():
        raise ValueError(f"points must lie inside the {w}×{h} image")
    owner = [_owner(p, boxes) for p in pts]
    free = [i for i, o in enumerate(owner) if o is None]
    free_neg = [i for i in free if lbl[i] == 0]
    sets: list[PromptSet] = []
    keys: list[Key] = []
    for b, box in enumerate(boxes):
        mine = [i for i, o in enumerate(owner) if o == b] + free_neg
        sets.append(_set(pts, lbl, mine, box))
        keys.append(tuple(float(v) for v in box))
    if any(lbl[i] == 1 for i in free):
        sets.append(_set(pts, lbl, free, None))
        keys.append(FREE)
    if not sets:
        raise ValueError("give a box or an object point: background points alone say nothing about the object")
    return Objects(sets, keys)


def _box(box, w: int, h: int) -> np.ndarray:
    """[x0, y0, x1, y1] with sorted corners, refused unless inside the image and with area."""
    b = np.asarray(box, np.float32).reshape(4)
    if not np.isfinite(b).all() or (b < 0).any() or (b[[0, 2]] > w).any() or (b[[1, 3]] > h).any():
        raise ValueError(f"boxes must lie inside the {w}×{h} image")
    x0, x1 = sorted(b[[0, 2]])
    y0, y1 = sorted(b[[1, 3]])
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise ValueError("a box has no area: drag between two different corners")
    return np.array([x0, y0, x1, y1], np.float32)


def _owner(point: np.ndarray, boxes: list[np.ndarray]) -> int | None:
    """The smallest box holding ``point`` (its index), or None."""
    inside = [(float((b[2] - b[0]) * (b[3] - b[1])), i) for i, b in enumerate(boxes)
              if b[0] <= point[0] <= b[2] and b[1] <= point[1] <= b[3]]
    return min(inside)[1] if inside else None


def _set(pts: np.ndarray, lbl: np.ndarray, index: list[int], box: np.ndarray | None) -> PromptSet:
    if not index:
        return PromptSet(box=box)
    return PromptSet(points=pts[index], point_labels=lbl[index], box=box)


@dataclass
class Remembered:
    """One answer's per-object logits (original frame, float16), for the next corrective click."""

    image: str
    teacher: str
    logits: dict[Key, np.ndarray]
    nbytes: int = field(init=False)

    def __post_init__(self):
        self.nbytes = sum(v.nbytes for v in self.logits.values())


class LogitsMemory:
    """The last answers' logits by token, least recently used out first, at most ``budget`` bytes."""

    def __init__(self, budget: int = 256 * 2**20):
        self.budget = budget
        self._items: OrderedDict[str, Remembered] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, item: Remembered) -> str:
        token = secrets.token_hex(16)
        with self._lock:
            self._items[token] = item
            while sum(i.nbytes for i in self._items.values()) > self.budget and len(self._items) > 1:
                self._items.popitem(last=False)
        return token

    def get(self, token: str | None, image: str, teacher: str) -> dict[Key, np.ndarray]:
        """The logits kept under ``token`` if they are this image's and teacher's, else none."""
        with self._lock:
            item = self._items.get(token or "")
            if item is None or (item.image, item.teacher) != (image, teacher):
                return {}
            self._items.move_to_end(token or "")
            return item.logits


@dataclass
class ObjectsMask:
    """The merged mask of the objects and what a client is told about it."""

    mask: np.ndarray
    iou_pred: float
    logits: dict[Key, np.ndarray]
    reused: int  # objects whose earlier logits were the mask prompt
    timings_ms: dict[str, float]
    teacher_encodes: int


def decode_objects(teacher: Teacher, image: np.ndarray, objects: Objects, previous: dict[Key, np.ndarray]) -> ObjectsMask:
    """SAM's mask for ``objects`` on ``image`` (the encoding cached by content). Objects with
    earlier logits in ``previous`` get them as their mask prompt. A lone positive point is
    ambiguous (part or whole?): without earlier logits, SAM's three candidates are decoded and
    the one it rates best is kept, as SAM's authors advise."""
    if not teacher.supports_points and any(s.points is not None for s in objects.sets):
        raise ValueError(f"teacher {shown(teacher.name)} takes box prompts only: draw a box instead of points")
    sets = [PromptSet(s.points, s.point_labels, s.box, _prompt(previous.get(k))) for s, k in zip(objects.sets, objects.keys)]
    only = sets[0]
    single = (len(sets) == 1 and only.box is None and only.mask_logits is None and only.points is not None
              and len(only.points) == 1)
    calls, t0 = teacher.encode_calls, time.perf_counter()
    (encoding,) = teacher.encode([image])
    t1 = time.perf_counter()
    (decoded,) = teacher.decode([encoding], [sets], multimask=single)
    assert decoded is not None  # sets is never empty
    if single:
        best = int(decoded.multimask_iou[0].argmax())  # type: ignore[index]
        per_object = decoded.multimask_logits[:, best]  # type: ignore[index]
        iou = float(decoded.multimask_iou[0, best])  # type: ignore[index]
    else:
        long_side = int(teacher.input_size)  # type: ignore[attr-defined]  # every teacher is a SamTeacher
        per_object = postprocess_masks(decoded.low_res_logits[:, None], encoding.input_size, long_side,
                                       encoding.original_size)[:, 0]
        iou = decoded.iou_pred
    t2 = time.perf_counter()
    kept = {k: per_object[i].to(torch.float16).numpy() for i, k in enumerate(objects.keys)}
    return ObjectsMask((per_object > 0).any(0).numpy(), iou, kept, sum(s.mask_logits is not None for s in sets),
                       {"teacher_encode": (t1 - t0) * 1e3, "teacher_decode": (t2 - t1) * 1e3},
                       teacher.encode_calls - calls)


def _prompt(logits: np.ndarray | None) -> np.ndarray | None:
    return None if logits is None else logits.astype(np.float32)


def bit_png(mask: np.ndarray) -> bytes:
    """A bool mask as a 1-bit PNG: the smallest lossless form a browser decodes by itself."""
    buf = io.BytesIO()
    Image.fromarray(mask.astype(bool)).convert("1").save(buf, format="PNG", optimize=True)
    return buf.getvalue()
