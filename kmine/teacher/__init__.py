"""The frozen SAM teacher: cached image encoding, batched prompt decoding.

    teacher = build_teacher("mobilesam")
    encodings = teacher.encode(images)              # expensive, cached per image
    decoded = teacher.decode(encodings, prompts)    # cheap, batched across images
"""

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

__all__ = [
    "BACKENDS",
    "DEFAULT_TEACHER",
    "TEACHER_NAMES",
    "Decoded",
    "Encoding",
    "EncodingCache",
    "EncodingStore",
    "SamTeacher",
    "Teacher",
    "build_teacher",
    "cache_key",
    "decode_masks",
    "group_by_structure",
    "image_digest",
    "load_model",
    "prompt_structure",
]
