"""Models: one per finished training (or uploaded checkpoint)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from server.api.schemas.common import Answer, IsoDatetime


class ModelOut(Answer):
    id: int
    name: str
    dataset_id: int | None
    job_id: int | None = Field(description="the training job that made it; null for an upload")
    active: bool = Field(description="the model prediction and labelling use for its dataset")
    sha256: str = Field(description="checksum of the checkpoint, checked before every load")
    checkpoint_path: str
    metrics: dict[str, Any] = Field(description="the best epoch's validation metrics")
    config: dict[str, Any] = Field(description="the training settings it was made with")
    created_at: IsoDatetime
