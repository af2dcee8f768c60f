"""What a client may choose: prompt kinds, teachers, schedules, modes, and the limits it meets.

The lists come from the engine's own registries, so the UI and client programs offer exactly
what the server accepts; nothing here is written twice."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from server.api.deps import SettingsDep

router = APIRouter(tags=["options"])


class Limits(BaseModel):
    max_upload_bytes: int = Field(description="largest request body (a zip, an image, a checkpoint)")
    max_files: int = Field(description="most files in one dataset upload (zip entries or form files)")
    max_unpacked_bytes: int = Field(description="most bytes a zip may expand to")
    max_zip_ratio: float = Field(description="largest compression ratio of one zip entry")
    max_image_pixels: int = Field(description="largest width × height of an image")
    max_checkpoint_bytes: int = Field(description="largest uploaded model checkpoint")


class Options(BaseModel):
    prompt_kinds: list[str] = Field(description="how the student prompts SAM: per-component or one set around everything")
    teachers: list[str] = Field(description="SAM teachers this server knows")
    default_teacher: str
    schedules: list[str] = Field(description="training schedules (one-time and continuous mine SAM)")
    mining_schedules: list[str] = Field(description="the schedules that make pseudo-labels")
    modes: list[str] = Field(description="prediction modes: the student alone, or student → SAM")
    frames: list[str] = Field(description="evaluation frames: the paper's centre crop or the full image")
    subsets: list[str] = Field(description="parts of a split an evaluation can score")
    limits: Limits


@router.get("/options", response_model=Options, summary="Choices and limits a client meets")
def options(settings: SettingsDep) -> Options:
    from kmine.data import SUBSETS
    from kmine.evaluation import FRAMES
    from kmine.predict import MODES
    from kmine.prompts import PROMPT_CHOICES
    from kmine.teacher import DEFAULT_TEACHER, TEACHER_NAMES
    from kmine.training.config import MINING_SCHEDULES, SCHEDULES

    return Options(
        prompt_kinds=list(PROMPT_CHOICES), teachers=list(TEACHER_NAMES), default_teacher=DEFAULT_TEACHER,
        schedules=list(SCHEDULES), mining_schedules=list(MINING_SCHEDULES), modes=list(MODES),
        frames=list(FRAMES), subsets=list(SUBSETS),
        limits=Limits(**{name: getattr(settings, name) for name in Limits.model_fields}),
    )
