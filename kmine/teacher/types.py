"""What a teacher gives and takes: :class:`Encoding`, :class:`Decoded`, and the
:class:`Teacher` protocol every function that takes a teacher is typed with.

Kept apart from the SAM implementation (:mod:`kmine.teacher.base`) and the encoding cache
(:mod:`kmine.teacher.cache`), which both need these types: no import cycle between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from kmine.prompts import PromptSet

if TYPE_CHECKING:  # in annotations only: modules holding the CLI's choice lists import this one
    import torch


@dataclass
class Encoding:
    """One image through the image encoder.

    embedding: (C, 64, 64) float32 on the CPU (C = 256 for every backend here).
    original_size: (H, W) of the image as given.
    input_size: (h', w'), the image resized so its longest side is the model input size,
        before padding.
    key: the cache key (image content + teacher + preprocessing).
    teacher_id: the teacher that produced it; decoding with another teacher is refused.
    """

    embedding: torch.Tensor
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    key: str
    teacher_id: str = ""


@dataclass
class Decoded:
    """The teacher's answer for one image: the union of its prompt sets' masks.

    logits: (H, W) float32 in the original frame; ``logits > 0`` is the mask. The
        pixelwise max over prompt sets, i.e. the union of their masks. Always the
        single-mask output (SAM's first mask token), also when ``multimask=True``.
    iou_pred: the model's predicted IoU. For several prompt sets, the mean of the per-set
        predictions weighted by each set's mask area (plain mean if all masks are empty),
        so a tiny doubtful component does not drag down a confident large one.
    set_iou: (n_sets,) per-set predicted IoU of the single-mask output.
    low_res_logits: (n_sets, h, w) per-set single-mask logits in the teacher's mask-prompt
        frame (256×256, covering the padded input square).
    multimask_logits: (n_sets, 3, H, W) the three multimask outputs per set in the original
        frame, when decoded with ``multimask=True``; else None. Not merged across sets.
    multimask_iou: (n_sets, 3) their predicted IoU, or None.
    multimask_low_res: (n_sets, 3, h, w) the same three outputs in the mask-prompt frame
        (what a corrective click after a multimask answer gives back as its mask prompt), or None.
    """

    logits: torch.Tensor
    iou_pred: float
    set_iou: torch.Tensor
    low_res_logits: torch.Tensor
    multimask_logits: torch.Tensor | None = None
    multimask_iou: torch.Tensor | None = None
    multimask_low_res: torch.Tensor | None = None

    @property
    def mask(self) -> torch.Tensor:
        """(H, W) bool."""
        return self.logits > 0


class EncodingStore(Protocol):
    """Where a teacher keeps encodings (:class:`kmine.teacher.cache.EncodingCache`)."""

    def get(self, key: str) -> Encoding | None: ...

    def put(self, key: str, encoding: Encoding) -> None: ...


class Teacher(Protocol):
    """A frozen promptable segmenter: an expensive, cached ``encode`` and a cheap ``decode``.

    name: registry name; teacher_id: architecture + checkpoint (part of cache keys);
    supports_points: False for box-only teachers (LiteMedSAM); encode_calls / decode_calls:
    images actually encoded and prompt sets decoded so far (for cost accounting).
    """

    name: str
    teacher_id: str
    supports_points: bool
    encode_calls: int
    decode_calls: int

    @property
    def cache(self) -> EncodingStore:
        """Where encodings are kept; read-only here, so any store type satisfies the protocol."""
        ...

    def encode(self, images: Sequence[np.ndarray]) -> list[Encoding]:
        """(H, W[, 3]) uint8 images of any size -> one :class:`Encoding` each (cached)."""
        ...

    def decode(
        self, encodings: Sequence[Encoding], prompts: Sequence[Sequence[PromptSet]], multimask: bool = False
    ) -> list[Decoded | None]:
        """Each image's prompt sets -> the union of their masks; None for an image without prompts."""
        ...

    def predict(
        self, images: Sequence[np.ndarray], prompts: Sequence[Sequence[PromptSet]], multimask: bool = False
    ) -> list[Decoded | None]:
        """``decode(encode(images), prompts, multimask)``."""
        ...
