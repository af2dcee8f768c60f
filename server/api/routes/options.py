"""What a client may choose: prompt kinds, teachers, schedules, modes, and the limits it meets.

The lists come from the engine's own registries, so the UI and client programs offer exactly
what the server accepts; nothing here is written twice."""

from __future__ import annotations

from fastapi import APIRouter

from server.api.deps import SettingsDep
from server.api.schemas.options import Limits, Options
from server.services.export_formats import EXPORT_FORMATS

router = APIRouter(tags=["options"])


@router.get("/options", response_model=Options, summary="Choices and limits a client meets")
def options(settings: SettingsDep) -> Options:
    from kmine.data import MAX_ASPECT, MAX_WORK_PIXELS, MIN_SIDE, SUBSETS
    from kmine.evaluation import FRAMES
    from kmine.predict import MODES
    from kmine.prompts import PROMPT_CHOICES
    from kmine.teacher import DEFAULT_TEACHER, TEACHER_NAMES
    from kmine.training.config import MINING_SCHEDULES, SCHEDULES

    return Options(
        prompt_kinds=list(PROMPT_CHOICES), teachers=list(TEACHER_NAMES), default_teacher=DEFAULT_TEACHER,
        schedules=list(SCHEDULES), mining_schedules=list(MINING_SCHEDULES), modes=list(MODES),
        frames=list(FRAMES), subsets=list(SUBSETS), export_formats=list(EXPORT_FORMATS),
        limits=Limits(**{name: getattr(settings, name) for name in Limits.model_fields if hasattr(settings, name)},
                      min_image_side=MIN_SIDE, max_image_aspect=MAX_ASPECT, max_work_pixels=MAX_WORK_PIXELS),
    )
