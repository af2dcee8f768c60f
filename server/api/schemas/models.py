"""Models: one per finished training (or uploaded checkpoint)."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from typing_extensions import Self

from server.api.schemas.common import EPOCHS_FROM_1, Answer, IsoDatetime, api_record


class ModelOut(Answer):
    id: int
    name: str
    dataset_id: int | None
    job_id: int | None = Field(description="the training job that made it; null for an upload")
    active: bool = Field(description="the model prediction and labelling use for its dataset")
    sha256: str = Field(description="checksum of the checkpoint, checked before every load")
    metrics: dict[str, Any] = Field(description=f"the best epoch's record: its validation metrics, its phase and "
                                                f"its epoch ({EPOCHS_FROM_1})")
    config: dict[str, Any] = Field(description="the training settings it was made with")
    created_at: IsoDatetime

    @classmethod
    def of(cls, model) -> Self:
        """From a stored model, whose metrics hold the engine's record (its epoch counted from 0)."""
        fields = {name: getattr(model, name) for name in cls.model_fields if name != "metrics"}
        return cls(**fields, metrics=api_record(model.metrics) or {})
