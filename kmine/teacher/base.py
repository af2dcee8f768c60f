"""The frozen teacher: an expensive, cached ``encode`` and a cheap, batched ``decode``.

A :class:`Teacher` wraps a ``Sam``-like model (``image_encoder``, ``prompt_encoder``,
``mask_decoder``, ``preprocess``, ``pixel_mean``/``pixel_std``). Images are encoded once
(see :class:`~kmine.teacher.cache.EncodingCache`) and then decoded as often as the prompts
change, which is what pseudo-label mining does every round.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, cast

import numpy as np
import torch
from torch import nn

from kmine.data.preprocess import as_rgb_uint8
from kmine.prompts import PromptSet
from kmine.teacher.cache import EncodingCache, cache_key
from kmine.teacher.decode import MaskDecoderParts, decode_masks, group_by_structure
from kmine.teacher.transforms import (
    mask_to_prompt_frame,
    postprocess_masks,
    resize_image,
    resized_shape,
    scale_coords,
)
from kmine.teacher.types import Decoded, Encoding


class ImageEncoderParts(Protocol):
    img_size: int  # the square input side S

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


class PromptEncoderParts(Protocol):
    mask_input_size: tuple[int, int]

    def __call__(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]: ...

    def get_dense_pe(self) -> torch.Tensor: ...


class SamParts(Protocol):
    """The ``Sam``-like interface a :class:`SamTeacher` uses (every backend's model has it).

    The model arrives as an ``nn.Module``, whose attribute access a type checker can only
    type ``Tensor | Module``; this protocol is the checked view of the same object.
    """

    image_encoder: ImageEncoderParts
    prompt_encoder: PromptEncoderParts
    mask_decoder: MaskDecoderParts
    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor

    def preprocess(self, x: torch.Tensor) -> torch.Tensor: ...


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class SamTeacher:
    """A frozen SAM-like model with a cached encode and a batched decode.

    model: a ``Sam``-like module; it is put in eval mode and frozen here.
    name: registry name ("mobilesam", "litemedsam", ...).
    teacher_id: identifies architecture + checkpoint; part of every cache key.
    supports_points: False where point prompts ruin the masks (LiteMedSAM); ``decode``
        then refuses prompt sets with points.
    minmax_scale: scale each resized image to [0, 255] by its own min/max before the
        model's mean/std normalisation (LiteMedSAM's preprocessing).
    cache: where encodings are kept; default a fresh in-memory :class:`EncodingCache`.
    encode_batch_size / decode_batch_size: images per encoder pass / prompt sets per
        decoder pass (bound the peak memory).

    ``encode_calls`` counts images actually run through the encoder, ``decode_calls``
    prompt sets decoded and ``decoder_passes`` batched decoder forward passes.
    """

    def __init__(
        self,
        model: nn.Module,
        name: str,
        *,
        teacher_id: str,
        supports_points: bool = True,
        minmax_scale: bool = False,
        cache: EncodingCache | None = None,
        encode_batch_size: int = 4,
        decode_batch_size: int = 32,
    ):
        self.model = model.eval().requires_grad_(False)
        # The same object, typed by the Sam parts used here (see SamParts).
        self._sam = cast(SamParts, self.model)
        self.name = name
        self.teacher_id = teacher_id
        self.supports_points = supports_points
        self.minmax_scale = minmax_scale
        self.cache = cache if cache is not None else EncodingCache()
        self.encode_batch_size = encode_batch_size
        self.decode_batch_size = decode_batch_size
        self.input_size: int = int(self._sam.image_encoder.img_size)
        h, w = self._sam.prompt_encoder.mask_input_size  # a pair, whatever sequence the model keeps
        self.mask_input_size: tuple[int, int] = (h, w)
        self.device = self._sam.pixel_mean.device
        self.encode_calls = 0
        self.decode_calls = 0
        self.decoder_passes = 0

    def __repr__(self) -> str:
        return f"SamTeacher(name={self.name!r}, id={self.teacher_id!r}, input_size={self.input_size})"

    @property
    def preprocess_id(self) -> str:
        """Everything about preprocessing that changes the embedding; part of cache keys."""
        mean = [round(float(v), 4) for v in self._sam.pixel_mean.flatten()]
        std = [round(float(v), 4) for v in self._sam.pixel_std.flatten()]
        return f"S={self.input_size}|resize=pil-bilinear|minmax={self.minmax_scale}|mean={mean}|std={std}"

    def cache_key(self, image: np.ndarray) -> str:
        """Cache key of ``image`` (HxW or HxWx3 uint8) for this teacher."""
        return cache_key(as_rgb_uint8(image), self.teacher_id, self.preprocess_id)

    # ----------------------------------------------------------------- encode

    def encode(self, images: Sequence[np.ndarray]) -> list[Encoding]:
        """Encode images, (H, W, 3) or (H, W) uint8 of any size, one :class:`Encoding` each.

        Cached encodings are reused; the rest (each distinct image once, even if it appears
        twice in ``images``) run through the encoder ``encode_batch_size`` at a time.
        """
        rgbs = [as_rgb_uint8(image) for image in images]
        keys = [cache_key(rgb, self.teacher_id, self.preprocess_id) for rgb in rgbs]
        out: list[Encoding | None] = [None] * len(rgbs)
        pending: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            if key in pending:
                pending[key].append(i)
                continue
            hit = self.cache.get(key)
            if hit is None:
                pending[key] = [i]
            else:
                out[i] = hit
        for chunk in _chunks(list(pending.items()), self.encode_batch_size):
            encodings = self._encode_batch([rgbs[idx[0]] for _, idx in chunk], [key for key, _ in chunk])
            for (key, idx), encoding in zip(chunk, encodings):
                self.cache.put(key, encoding)
                for i in idx:
                    out[i] = encoding
        return out  # type: ignore[return-value]

    def _preprocess(self, rgb: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> (3, S, S) normalised, padded model input."""
        x = torch.from_numpy(resize_image(rgb, self.input_size)).permute(2, 0, 1).float()
        if self.minmax_scale:
            lo, hi = x.min(), x.max()
            x = (x - lo) / torch.clamp(hi - lo, min=1e-8) * 255.0
        return self._sam.preprocess(x.to(self.device))  # normalise, pad bottom/right

    def _encode_batch(self, rgbs: list[np.ndarray], keys: list[str]) -> list[Encoding]:
        with torch.inference_mode():
            batch = torch.stack([self._preprocess(rgb) for rgb in rgbs])
            embeddings = self._sam.image_encoder(batch).cpu()
        self.encode_calls += len(rgbs)
        return [
            Encoding(
                # clone outside inference mode: a normal tensor with its own storage (a
                # slice would keep, and torch.save would write, the whole batch).
                embedding=embeddings[i].clone(),
                original_size=(rgb.shape[0], rgb.shape[1]),
                input_size=resized_shape((rgb.shape[0], rgb.shape[1]), self.input_size),
                key=key,
                teacher_id=self.teacher_id,
            )
            for i, (rgb, key) in enumerate(zip(rgbs, keys))
        ]

    # ----------------------------------------------------------------- decode

    def decode(
        self,
        encodings: Sequence[Encoding],
        prompts: Sequence[Sequence[PromptSet]],
        multimask: bool = False,
    ) -> list[Decoded | None]:
        """Masks for each image from its prompt sets; None where an image has none.

        prompts[i] lists the prompt sets (one object each) for encodings[i], in the
        original image frame; their masks are merged into one union (see :class:`Decoded`).
        All prompt sets of all images with the same token structure decode in one
        batched pass (up to ``decode_batch_size``).

        ``mask_logits`` refine a box or points; alone they are a weak prompt (on a 180×300
        disc, MobileSAM with a mask prompt only gave Dice 0.14–0.96 depending on the logit
        scale, with a box 0.999). ``low_res_logits`` (an earlier answer's, in the mask-prompt
        frame) are the mask prompt as they are: SAM's corrective-click protocol.
        """
        if len(encodings) != len(prompts):
            raise ValueError(f"{len(encodings)} encodings but {len(prompts)} prompt lists")
        jobs: list[tuple[int, PromptSet]] = []  # image-major, so each image's sets are contiguous
        for i, (encoding, sets) in enumerate(zip(encodings, prompts)):
            self._check_encoding(encoding)
            for prompt in sets:
                self._check_prompt(prompt, encoding)
                jobs.append((i, prompt))

        low_res: list[torch.Tensor] = [None] * len(jobs)  # type: ignore[list-item]
        ious: list[torch.Tensor] = [None] * len(jobs)  # type: ignore[list-item]
        with torch.inference_mode():
            groups = group_by_structure([prompt for _, prompt in jobs])
            for indices in groups.values():
                for chunk in _chunks(indices, self.decode_batch_size):
                    masks, iou = self._decode_group([jobs[j] for j in chunk], encodings)
                    for row, j in enumerate(chunk):
                        low_res[j], ious[j] = masks[row], iou[row]

            results: list[Decoded | None] = []
            start = 0
            for encoding, sets in zip(encodings, prompts):
                n = len(sets)
                if n == 0:
                    results.append(None)
                    continue
                stop = start + n
                results.append(
                    self._merge(encoding, torch.stack(low_res[start:stop]), torch.stack(ious[start:stop]), multimask)
                )
                start = stop
        self.decode_calls += len(jobs)
        return [None if r is None else _detach_inference(r) for r in results]

    def _check_encoding(self, encoding: Encoding) -> None:
        if encoding.teacher_id != self.teacher_id:
            raise ValueError(
                f"encoding from teacher {encoding.teacher_id!r} cannot be decoded by {self.teacher_id!r}"
            )

    def _check_prompt(self, prompt: PromptSet, encoding: Encoding) -> None:
        if prompt.points is None and prompt.box is None and prompt.mask_logits is None and prompt.low_res_logits is None:
            raise ValueError("a PromptSet needs points, a box or mask_logits; pass [] for an image without prompts")
        if prompt.points is not None:
            if not self.supports_points:
                raise ValueError(
                    f"teacher {self.name!r} takes box (and mask) prompts only: point prompts ruin its "
                    "masks. Strip the points from the PromptSets (check Teacher.supports_points)."
                )
            if prompt.point_labels is None or len(prompt.point_labels) != len(prompt.points):
                raise ValueError("PromptSet.point_labels must give one label per point")
            if np.asarray(prompt.points).reshape(len(prompt.points), -1).shape[1] != 2:
                raise ValueError(f"PromptSet.points must be (K, 2), got {np.shape(prompt.points)}")
        if prompt.box is not None and np.asarray(prompt.box).size != 4:
            raise ValueError(f"PromptSet.box must be (x0, y0, x1, y1), got {np.shape(prompt.box)}")
        if prompt.mask_logits is not None and tuple(np.shape(prompt.mask_logits)) != tuple(encoding.original_size):
            raise ValueError(
                f"PromptSet.mask_logits has shape {np.shape(prompt.mask_logits)}, "
                f"the image is {tuple(encoding.original_size)}"
            )
        if prompt.low_res_logits is not None:
            self._check_low_res(prompt.low_res_logits, prompt.mask_logits is not None)

    def _check_low_res(self, low_res: np.ndarray, with_mask_logits: bool) -> None:
        if with_mask_logits:
            raise ValueError("give PromptSet.mask_logits or PromptSet.low_res_logits, not both")
        if tuple(np.shape(low_res)) != self.mask_input_size:
            raise ValueError(
                f"PromptSet.low_res_logits has shape {np.shape(low_res)}, "
                f"the teacher's mask-prompt frame is {self.mask_input_size}"
            )

    def _decode_group(
        self, jobs: list[tuple[int, PromptSet]], encodings: Sequence[Encoding]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt sets of one token structure -> (n, M, 256, 256) low-res logits, (n, M) IoU."""
        first = jobs[0][1]
        points = boxes = masks = None
        if first.points is not None:
            coords = [
                scale_coords(np.asarray(p.points).reshape(-1, 2), encodings[i].original_size, encodings[i].input_size)
                for i, p in jobs
            ]
            labels = [np.asarray(p.point_labels).reshape(-1) for _, p in jobs]
            points = (
                torch.as_tensor(np.stack(coords), dtype=torch.float32, device=self.device),
                torch.as_tensor(np.stack(labels), dtype=torch.int, device=self.device),
            )
        if first.box is not None:
            corners = [
                scale_coords(np.asarray(p.box).reshape(2, 2), encodings[i].original_size, encodings[i].input_size)
                for i, p in jobs
            ]
            boxes = torch.as_tensor(np.stack(corners).reshape(-1, 4), dtype=torch.float32, device=self.device)
        if first.mask_logits is not None or first.low_res_logits is not None:
            masks = torch.stack([self._mask_prompt(p, encodings[i]) for i, p in jobs])
        sparse, dense = self._sam.prompt_encoder(points=points, boxes=boxes, masks=masks)
        embeddings = torch.stack([encodings[i].embedding for i, _ in jobs]).to(self.device)
        self.decoder_passes += 1
        return decode_masks(
            self._sam.mask_decoder, embeddings, self._sam.prompt_encoder.get_dense_pe(), sparse, dense
        )

    def _mask_prompt(self, prompt: PromptSet, encoding: Encoding) -> torch.Tensor:
        """A prompt set's (1, h, w) mask prompt in the mask-prompt frame."""
        if prompt.low_res_logits is not None:  # already in the frame: used as they are
            return torch.as_tensor(np.asarray(prompt.low_res_logits), dtype=torch.float32, device=self.device)[None]
        return mask_to_prompt_frame(
            torch.as_tensor(np.asarray(prompt.mask_logits), device=self.device),
            encoding.input_size,
            self.input_size,
            self.mask_input_size,
        )

    def _merge(self, encoding: Encoding, low_res: torch.Tensor, iou: torch.Tensor, multimask: bool) -> Decoded:
        """One image's (n, M, h, w) low-res logits and (n, M) IoU -> :class:`Decoded`."""
        # Only upsample the multimask outputs when asked: at 1024² they dominate the cost.
        chosen = low_res if multimask else low_res[:, :1]
        full = postprocess_masks(chosen, encoding.input_size, self.input_size, encoding.original_size)
        per_set = full[:, 0]
        set_iou = iou[:, 0]
        area = (per_set > 0).flatten(1).sum(1).float()
        if area.sum() > 0:
            iou_pred = float((set_iou * area).sum() / area.sum())
        else:
            iou_pred = float(set_iou.mean())
        return Decoded(
            logits=per_set.max(dim=0).values.float().cpu(),
            iou_pred=iou_pred,
            set_iou=set_iou.cpu(),
            low_res_logits=low_res[:, 0].cpu(),
            multimask_logits=full[:, 1:].cpu() if multimask else None,
            multimask_iou=iou[:, 1:].cpu() if multimask else None,
            multimask_low_res=low_res[:, 1:].cpu() if multimask else None,
        )

    def predict(
        self, images: Sequence[np.ndarray], prompts: Sequence[Sequence[PromptSet]], multimask: bool = False
    ) -> list[Decoded | None]:
        """``decode(encode(images), prompts, multimask)``."""
        return self.decode(self.encode(images), prompts, multimask=multimask)


def _detach_inference(decoded: Decoded) -> Decoded:
    """Copy inference-mode tensors into normal ones: callers use them as training targets,
    and autograd refuses to save inference tensors for backward."""
    def plain(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.clone()

    return Decoded(
        logits=decoded.logits.clone(),
        iou_pred=decoded.iou_pred,
        set_iou=decoded.set_iou.clone(),
        low_res_logits=decoded.low_res_logits.clone(),
        multimask_logits=plain(decoded.multimask_logits),
        multimask_iou=plain(decoded.multimask_iou),
        multimask_low_res=plain(decoded.multimask_low_res),
    )
