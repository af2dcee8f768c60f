"""What a client may choose, and the limits it meets."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
