"""The student network: U-Net++ with a pretrained (or random) encoder.

The names below are imported on first use (see :mod:`kmine._lazy`): importing the package
does not import segmentation_models_pytorch."""

from typing import TYPE_CHECKING

from kmine._lazy import lazy_exports

if TYPE_CHECKING:
    from .checkpoint import (
        load_encoder,
        load_student,
        read_student_checkpoint,
        save_student,
    )
    from .encoders import (
        ENCODERS,
        EncoderSpec,
        efficientnet_pytorch_to_timm,
        encoder_spec,
        use_tf_same_padding,
    )
    from .model import (
        DEFAULT_ENCODER,
        PretrainedWeightsUnavailableWarning,
        Student,
        build_student,
    )
    from .tta import tta_probs
else:
    __all__, __getattr__, __dir__ = lazy_exports(__name__, {
        "checkpoint": ("load_encoder", "load_student", "read_student_checkpoint", "save_student"),
        "encoders": ("ENCODERS", "EncoderSpec", "efficientnet_pytorch_to_timm", "encoder_spec", "use_tf_same_padding"),
        "model": ("DEFAULT_ENCODER", "PretrainedWeightsUnavailableWarning", "Student", "build_student"),
        "tta": ("tta_probs",),
    })
