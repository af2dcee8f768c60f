"""Batched mask decoding across images and prompt sets.

``segment_anything``'s ``MaskDecoder.predict_masks`` repeats ONE image embedding for all
prompts (``repeat_interleave(image_embeddings, n_prompts)``), so decoding prompts for many
images takes one call per image. :func:`decode_masks` runs the same submodules with image
embeddings aligned one-to-one with prompt sets, so N prompt sets from any mix of images
decode in one forward pass. Prompt sets are grouped by token structure first because the
sparse prompt tokens of one batch must have the same length.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

import torch
from torch import nn

from kmine.prompts import PromptSet

# (number of points, has box, has mask prompt): prompt sets with equal keys batch together.
Structure = tuple[int, bool, bool]


class MaskDecoderParts(Protocol):
    """The submodules of ``segment_anything``'s ``MaskDecoder`` that :func:`decode_masks` runs.

    Every backend's decoder is that class; typed here because ``nn.Module`` attribute access
    is ``Tensor | Module`` to a type checker.
    """

    iou_token: nn.Embedding
    mask_tokens: nn.Embedding
    num_mask_tokens: int
    transformer: nn.Module
    output_upscaling: nn.Module
    output_hypernetworks_mlps: nn.ModuleList
    iou_prediction_head: nn.Module


def prompt_structure(prompt: PromptSet) -> Structure:
    """The token structure of a prompt set, the key :func:`group_by_structure` uses."""
    n_points = 0 if prompt.points is None else int(len(prompt.points))
    has_mask = prompt.mask_logits is not None or prompt.low_res_logits is not None
    return n_points, prompt.box is not None, has_mask


def group_by_structure(prompts: Sequence[PromptSet]) -> dict[Structure, list[int]]:
    """Indices into ``prompts`` grouped by :func:`prompt_structure`, in first-seen order."""
    groups: dict[Structure, list[int]] = defaultdict(list)
    for i, prompt in enumerate(prompts):
        groups[prompt_structure(prompt)].append(i)
    return dict(groups)


def decode_masks(
    mask_decoder: MaskDecoderParts,
    image_embeddings: torch.Tensor,
    image_pe: torch.Tensor,
    sparse_prompt_embeddings: torch.Tensor,
    dense_prompt_embeddings: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode N prompt sets, each against its own image embedding, in one pass.

    image_embeddings: (N, C, h, w), row i belongs to prompt set i (index per-image
        embeddings to align them; the same image may appear in several rows).
    image_pe: (1, C, h, w) dense positional encoding (``prompt_encoder.get_dense_pe()``).
    sparse_prompt_embeddings: (N, T, C) point/box tokens; T may be 0.
    dense_prompt_embeddings: (N, C, h, w) mask-prompt embedding (or the no-mask embedding).

    Returns ``masks`` (N, M, 4h, 4w) low-res logits and ``iou_pred`` (N, M) for all
    M = ``num_mask_tokens`` outputs: index 0 is the single-mask output, 1: the multimask
    outputs (what ``MaskDecoder.forward`` slices for ``multimask_output``).
    """
    n = image_embeddings.shape[0]
    output_tokens = torch.cat([mask_decoder.iou_token.weight, mask_decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat((output_tokens.unsqueeze(0).expand(n, -1, -1), sparse_prompt_embeddings), dim=1)

    # No repeat_interleave: embeddings are already one per prompt set.
    src = image_embeddings + dense_prompt_embeddings
    pos_src = image_pe.expand(n, -1, -1, -1)
    b, c, h, w = src.shape

    hs, src = mask_decoder.transformer(src, pos_src, tokens)
    iou_token_out = hs[:, 0, :]
    mask_tokens_out = hs[:, 1 : 1 + mask_decoder.num_mask_tokens, :]

    upscaled = mask_decoder.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
    hyper_in = torch.stack(
        [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(mask_decoder.output_hypernetworks_mlps)],
        dim=1,
    )
    b, c, h, w = upscaled.shape
    masks = (hyper_in @ upscaled.reshape(b, c, h * w)).reshape(b, -1, h, w)
    iou_pred = mask_decoder.iou_prediction_head(iou_token_out)
    return masks, iou_pred
