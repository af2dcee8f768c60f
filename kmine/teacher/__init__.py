"""The frozen SAM teacher: cached image encoding, batched prompt decoding.

    teacher = build_teacher("mobilesam")
    encodings = teacher.encode(images)              # expensive, cached per image
    decoded = teacher.decode(encodings, prompts)    # cheap, batched across images

The names below are imported on first use (see :mod:`kmine._lazy`): ``from kmine.teacher
import TEACHER_NAMES`` does not import torch or segment_anything.
"""

from typing import TYPE_CHECKING

from kmine._lazy import lazy_exports

if TYPE_CHECKING:
    from kmine.teacher.backends import (
        BACKENDS,
        DEFAULT_TEACHER,
        TEACHER_NAMES,
        build_teacher,
        load_model,
    )
    from kmine.teacher.base import SamTeacher
    from kmine.teacher.cache import EncodingCache, cache_key, image_digest
    from kmine.teacher.decode import decode_masks, group_by_structure, prompt_structure
    from kmine.teacher.types import Decoded, Encoding, EncodingStore, Teacher
else:
    __all__, __getattr__, __dir__ = lazy_exports(__name__, {
        "backends": ("BACKENDS", "DEFAULT_TEACHER", "TEACHER_NAMES", "build_teacher", "load_model"),
        "base": ("SamTeacher",),
        "cache": ("EncodingCache", "cache_key", "image_digest"),
        "decode": ("decode_masks", "group_by_structure", "prompt_structure"),
        "types": ("Decoded", "Encoding", "EncodingStore", "Teacher"),
    })
