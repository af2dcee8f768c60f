"""Supported student encoders and how to give them ImageNet weights offline.

Adding an encoder is one :data:`ENCODERS` entry: its segmentation-models-pytorch name,
input normalisation and, when a checkpoint is obtainable here, the :mod:`kmine.weights`
name plus a function mapping that checkpoint onto the smp encoder's state dict.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from kmine.text import shown

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Keys of the efficientnet_pytorch checkpoint that have no place in a segmentation encoder.
EFFICIENTNET_DROPPED_KEYS = ("_fc.weight", "_fc.bias")  # the ImageNet classifier

# efficientnet_pytorch module names -> timm ones. The first block is a depthwise-separable
# block (no expansion), the others inverted residuals, so their batch norms number differently.
_TOP_LEVEL = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2"}
_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR_BLOCK = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
             "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)$")


def efficientnet_pytorch_to_timm(state_dict: dict[str, torch.Tensor],
                                 stage_depths: list[int]) -> dict[str, torch.Tensor]:
    """Rename an ``efficientnet_pytorch`` EfficientNet(-Lite) state dict to timm's naming.

    ``_blocks.N`` (flat numbering) becomes ``blocks.stage.j`` using ``stage_depths`` (blocks
    per stage, e.g. ``[1, 2, 2, 3, 3, 4, 1]`` for Lite0). :data:`EFFICIENTNET_DROPPED_KEYS`
    are left out; any other unknown key raises ``KeyError``.
    """
    flat = [(stage, j) for stage, depth in enumerate(stage_depths) for j in range(depth)]
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        if key in EFFICIENTNET_DROPPED_KEYS:
            continue
        match = _BLOCK_KEY.match(key)
        if match:
            n, module, param = int(match[1]), match[2], match[3]
            if n >= len(flat):
                raise KeyError(f"{key}: block {n} beyond the {len(flat)} blocks of stages {stage_depths}")
            table = _DS_BLOCK if n == 0 else _IR_BLOCK
            stage, j = flat[n]
            new_key = f"blocks.{stage}.{j}.{table[module]}.{param}"
        else:
            module, _, param = key.partition(".")
            if module not in _TOP_LEVEL:
                raise KeyError(f"{key}: not an efficientnet_pytorch EfficientNet key "
                               f"(expected _conv_stem, _bn0, _blocks.N, _conv_head, _bn1, _fc)")
            new_key = f"{_TOP_LEVEL[module]}.{param}"
        if new_key in out:
            raise KeyError(f"{key} maps onto {new_key}, which another key already took")
        out[new_key] = tensor
    return out


def use_tf_same_padding(encoder: nn.Module, bn_eps: float = 1e-3) -> nn.Module:
    """Make a timm EfficientNet built with PyTorch padding compute like its TensorFlow
    original: "same" padding on strided convs and batch-norm eps 1e-3.

    smp's ``timm-tf_efficientnet_lite0`` builds timm's PyTorch-style variant (symmetric
    padding, eps 1e-5), but the ImageNet weights were trained in TensorFlow: on even input
    sizes TF pads strided convs bottom/right only, so without this every stride-2 layer sees
    its input shifted by half a pixel. Stride-1 convs with odd kernels pad the same either
    way. In place; returns ``encoder``.
    """
    from timm.layers import Conv2dSame

    for name, conv in list(encoder.named_modules()):
        if isinstance(conv, nn.Conv2d) and not isinstance(conv, Conv2dSame) and conv.stride != (1, 1):
            same = Conv2dSame(conv.in_channels, conv.out_channels, _pair(conv.kernel_size), _pair(conv.stride),
                              padding=0, dilation=_pair(conv.dilation), groups=conv.groups,
                              bias=conv.bias is not None)
            same.load_state_dict(conv.state_dict())
            parent_name, _, child = name.rpartition(".")
            setattr(encoder.get_submodule(parent_name) if parent_name else encoder, child, same)
    for module in encoder.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eps = bn_eps
    return encoder


def _pair(size: tuple[int, ...]) -> tuple[int, int]:
    """A Conv2d's (h, w) setting: torch types them as tuples of any length."""
    h, w = size
    return h, w


def _efficientnet_lite_weights(encoder: nn.Module, checkpoint: dict[str, torch.Tensor]) -> dict:
    # timm's EfficientNet: ``blocks`` holds one Sequential per stage (nn.Module attribute
    # access is typed Tensor | Module, hence the cast).
    stages = cast(Iterable[nn.Sequential], encoder.blocks)
    return efficientnet_pytorch_to_timm(checkpoint, [len(stage) for stage in stages])


@dataclass(frozen=True)
class EncoderSpec:
    """How to build and initialise one encoder.

    smp_name: ``encoder_name`` for segmentation-models-pytorch.
    mean, std: per-channel input normalisation on [0, 1] RGB.
    weights: :data:`kmine.weights.KNOWN_WEIGHTS` key of its ImageNet checkpoint, or None
        when none is obtainable (the encoder then always starts from random weights).
    convert: maps (encoder, checkpoint state dict) to the encoder's state dict.
    adapt: changes the built encoder before weights load (e.g. TF padding), always applied,
        so a saved student reloads into the same architecture.
    """

    smp_name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights: str | None = None
    convert: Callable[[nn.Module, dict], dict] | None = None
    adapt: Callable[[nn.Module], nn.Module] | None = None


ENCODERS: dict[str, EncoderSpec] = {
    # The paper's encoder. No ImageNet ResNet-34 checkpoint is reachable from these machines.
    "resnet34": EncoderSpec("resnet34", IMAGENET_MEAN, IMAGENET_STD),
    # TF EfficientNet-Lite0: ImageNet weights in efficientnet_pytorch naming, inputs scaled
    # to [-1, 1] as in the TF original.
    "timm-tf_efficientnet_lite0": EncoderSpec(
        "timm-tf_efficientnet_lite0", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5),
        weights="efficientnet_lite0", convert=_efficientnet_lite_weights,
        adapt=use_tf_same_padding),
}


def encoder_spec(name: str) -> EncoderSpec:
    """The :data:`ENCODERS` entry for ``name``; ``ValueError`` listing the choices."""
    try:
        return ENCODERS[name]
    except KeyError:
        raise ValueError(f"unknown student encoder {shown(name)}; supported: {', '.join(ENCODERS)}") from None


__all__ = [
    "ENCODERS", "EncoderSpec", "encoder_spec", "IMAGENET_MEAN", "IMAGENET_STD",
    "EFFICIENTNET_DROPPED_KEYS", "efficientnet_pytorch_to_timm", "use_tf_same_padding",
]
