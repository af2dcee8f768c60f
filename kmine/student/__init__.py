"""The student network: U-Net++ with a pretrained (or random) encoder."""

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

__all__ = [
    "Student", "build_student", "DEFAULT_ENCODER", "PretrainedWeightsUnavailableWarning",
    "ENCODERS", "EncoderSpec", "encoder_spec", "efficientnet_pytorch_to_timm",
    "use_tf_same_padding", "save_student", "load_student", "load_encoder", "read_student_checkpoint", "tta_probs",
]
