"""Liveness and readiness."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from server.api.schemas.common import ErrorBody


class Live(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    checks: dict[str, str] = Field(description="database, broker, weights: each 'ok'")


class NotReady(ErrorBody):
    """The 503 answer: the error body plus each check's state."""

    status: Literal["not ready"]
    checks: dict[str, str] = Field(description="database, broker, weights: 'ok' or what is wrong")
