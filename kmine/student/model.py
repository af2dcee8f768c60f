"""The student: a U-Net++ (segmentation-models-pytorch) with one logit channel."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import segmentation_models_pytorch as smp
import torch
from torch import nn

from kmine.text import shown

from ..weights import weight_path
from .encoders import encoder_spec

DEFAULT_ENCODER = "timm-tf_efficientnet_lite0"
SIZE_MULTIPLE = 32  # U-Net++ downsamples 5 times and concatenates skips of matching size


class PretrainedWeightsUnavailableWarning(UserWarning):
    """``pretrained=True`` was asked for an encoder with no obtainable ImageNet checkpoint."""


class Student(nn.Module):
    """U-Net++ plus the input normalisation its encoder expects.

    ``forward(images)``: images (B, 3, S, S) RGB, uint8 or float with values in [0, 255]
    (not [0, 1]); S divisible by 32. Returns logits (B, 1, S, S) float32.
    """

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor
    extra: dict[str, Any]  # the checkpoint's ``extra``, set by load_student only

    def __init__(self, model: nn.Module, encoder: str, pretrained: bool):
        super().__init__()
        spec = encoder_spec(encoder)
        self.model = model
        self.config: dict[str, Any] = {"arch": "UnetPlusPlus", "encoder": encoder, "pretrained": bool(pretrained),
                                       "classes": 1}
        # Scaled to [0, 255] inputs; not persistent: the config recreates them.
        mean = torch.tensor(spec.mean).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(spec.std).view(1, 3, 1, 1) * 255.0
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    @property
    def encoder_name(self) -> str:
        return self.config["encoder"]

    def check_input(self, images: torch.Tensor) -> None:
        """Raise ``ValueError`` saying how to fix a batch the network cannot take."""
        if images.ndim != 4:
            raise ValueError(f"images must be a (B, 3, S, S) batch; got shape {tuple(images.shape)}"
                             f" (add a batch axis with images[None] for one image)")
        if images.shape[1] != 3:
            hint = " (channels-last? use images.permute(0, 3, 1, 2))" if images.shape[-1] == 3 else ""
            raise ValueError(f"images must have 3 RGB channels on axis 1; got shape "
                             f"{tuple(images.shape)}{hint}")
        height, width = images.shape[-2:]
        if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
            size = height if height == width else f"{height}x{width}"
            raise ValueError(f"input size {size} must be divisible by {SIZE_MULTIPLE} for U-Net++ "
                             f"(try 224 or 256)")

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 255] RGB (uint8 or float) -> the encoder's normalised float input."""
        return (images.to(self.mean.dtype) - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.check_input(images)
        return self.model(self.normalise(images))


def _load_imagenet_weights(encoder: nn.Module, name: str, weights_dir) -> None:
    spec = encoder_spec(name)
    if spec.weights is None or spec.convert is None:
        raise ValueError(f"encoder {shown(name)} has no ImageNet checkpoint to load")
    checkpoint = torch.load(weight_path(spec.weights, weights_dir), map_location="cpu",
                            weights_only=True)
    # strict: a missing or unused tensor means the key mapping is wrong, never "close enough".
    encoder.load_state_dict(spec.convert(encoder, checkpoint), strict=True)


def build_student(encoder: str = DEFAULT_ENCODER, pretrained: bool = True,
                  weights_dir: str | Path | None = None) -> Student:
    """A U-Net++ student with one output channel (logits).

    encoder: a key of :data:`kmine.student.ENCODERS` (``"timm-tf_efficientnet_lite0"``, the
        default, with ImageNet weights; ``"resnet34"``, the paper's, random init only).
    pretrained: load the encoder's ImageNet checkpoint (verified by SHA-256, from
        ``weights_dir`` or :func:`kmine.weights.default_weights_dir`). For an encoder without
        one, warns (:class:`PretrainedWeightsUnavailableWarning`) and starts from random weights.
    """
    spec = encoder_spec(encoder)
    with warnings.catch_warnings():
        # smp 0.6 flags its "timm-" encoders as deprecated in favour of "tu-" ones; the
        # version is pinned, and the warning would only confuse users of kmine.
        warnings.filterwarnings("ignore", message=".*encoders are deprecated",
                                category=DeprecationWarning)
        model = smp.UnetPlusPlus(encoder_name=spec.smp_name, encoder_weights=None, classes=1,
                                 activation=None)
    if spec.adapt is not None:
        spec.adapt(model.encoder)
    if pretrained and spec.weights is None:
        warnings.warn(f"encoder {shown(encoder)} has no ImageNet checkpoint obtainable here: the "
                      f"student starts from RANDOM weights. Pass pretrained=False to say so "
                      f"explicitly, or use an encoder with weights ("
                      f"{DEFAULT_ENCODER}).", PretrainedWeightsUnavailableWarning, stacklevel=2)
    elif pretrained:
        _load_imagenet_weights(model.encoder, encoder, weights_dir)
    # config records whether ImageNet weights were really loaded, not what was asked.
    return Student(model, encoder, pretrained and spec.weights is not None)


__all__ = ["Student", "build_student", "DEFAULT_ENCODER", "SIZE_MULTIPLE",
           "PretrainedWeightsUnavailableWarning"]
