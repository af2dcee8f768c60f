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
    max_waiting_predictions: int = Field(description="model calls that may wait; beyond, 503 with Retry-After")
    min_image_side: int = Field(description="shortest side an image may have, in pixels")
    max_image_aspect: float = Field(description="most times one side of an image may be longer than the other")
    max_work_pixels: int = Field(description="a larger image is predicted on a copy scaled down to this many pixels "
                                             "(the answer still has the image's own size)")


class Options(BaseModel):
    prompt_kinds: list[str] = Field(description="how the student prompts SAM: per-component or one set around everything")
    teachers: list[str] = Field(description="SAM teachers this server knows")
    default_teacher: str
    schedules: list[str] = Field(description="training schedules (one-time and continuous mine SAM)")
    mining_schedules: list[str] = Field(description="the schedules that make pseudo-labels")
    modes: list[str] = Field(description="prediction modes: the student alone, or student → SAM")
    frames: list[str] = Field(description="evaluation frames: the paper's centre crop or the full image")
    subsets: list[str] = Field(description="parts of a split an evaluation can score")
    export_formats: list[str] = Field(description="what GET /datasets/{id}/export writes: masks (zip), coco (JSON)")
    limits: Limits
