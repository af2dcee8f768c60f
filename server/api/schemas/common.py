"""What every router shares: the one error body, the error answers a route declares, bounded
ids, ISO times and epoch numbers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

MAX_ID = 2**31 - 1  # ids are 32-bit integers in the database
DbId = Annotated[int, Field(ge=1, le=MAX_ID)]
Seed = Annotated[int, Field(ge=0, le=MAX_ID)]
# Times answer as ``datetime.isoformat()`` (``…+00:00``), as they always have.
IsoDatetime = Annotated[datetime, PlainSerializer(lambda v: v.isoformat(), return_type=str, when_used="json"),
                        WithJsonSchema({"type": "string", "format": "date-time"})]


# Epochs: the engine and the database count an epoch from 0 within its phase; every answer
# counts it from 1, as the job log, the engine's messages and its command line do. These two
# renumber on the way out, once, where an answer is built from stored rows.
EPOCHS_FROM_1 = "counted from 1 within its phase, as in the job's log"


def api_epoch(epoch: int | None) -> int | None:
    """A stored (0-based) epoch as the API counts it: from 1."""
    return None if epoch is None else epoch + 1


def api_record(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """An engine record (an epoch's metrics, e.g. the best one) with its ``epoch`` counted from 1."""
    if isinstance(record, dict) and type(record.get("epoch")) is int:
        return {**record, "epoch": record["epoch"] + 1}
    return record


class Answer(BaseModel):
    """Base of the response schemas: read from ORM rows or dicts alike."""

    model_config = ConfigDict(from_attributes=True)


class ErrorItem(BaseModel):
    loc: list[str | int] = Field(description="where: e.g. ['body', 'config', 'size']")
    msg: str = Field(description="what is wrong, one line")
    type: str = Field(description="pydantic's error type, e.g. 'greater_than_equal'")


class ErrorBody(BaseModel):
    """Every error answer: ``detail`` is one readable line; validation problems (422) also
    list each problem in ``errors``."""

    detail: str = Field(description="what went wrong, one line for a person")
    errors: list[ErrorItem] | None = Field(None, description="each validation problem (422 only)")


_DESCRIPTIONS = {
    401: "No or an unknown API token (send `Authorization: Bearer <token>`)",
    403: "The token's role may not call this (an admin token is needed, or a worker token went past its routes)",
    404: "A dataset, image, mask, split, job or model named in the request does not exist",
    409: "The request conflicts with the current state (e.g. no model yet, a job already finished)",
    413: "An upload is over a size or count limit (see GET /api/v1/options)",
    422: "The request is invalid: a parameter, a body field or an uploaded file",
    503: "A service the request needs (the job broker, storage) cannot be reached, or too many predictions "
         "wait (then `Retry-After` gives the seconds to wait)",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error status codes, all with :class:`ErrorBody`."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        out[code] = {"model": ErrorBody, "description": _DESCRIPTIONS[code]}
        if code == 401:
            out[code]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`"}}
        if code == 503:
            out[code]["headers"] = {"Retry-After": {"schema": {"type": "string"},
                                                    "description": "seconds to wait (when overloaded)"}}
    return out


def binary(media_type: str, description: str, headers: dict[str, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entry for a 200 answer that is a file (PNG, checkpoint)."""
    answer: dict[str, Any] = {"description": description,
                              "content": {media_type: {"schema": {"type": "string", "format": "binary"}}}}
    if headers:
        answer["headers"] = {name: {"schema": {"type": "string"}, "description": text} for name, text in headers.items()}
    return {200: answer}
