"""Every error answer is an :class:`~server.api.schemas.common.ErrorBody`: HTTP errors (404,
401, 405 …), refused input (:class:`~server.core.errors.BadInput`) and validation problems
(422; a body FastAPI cannot parse, which it answers with 400, is one too). ``detail`` is
always one readable line, whatever the client sent (NaN, binary, line breaks), and building
it never fails."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.api.schemas.common import ErrorBody, ErrorItem
from server.core.errors import BadInput

MAX_DETAIL = 2000
_OBJECT_REPR = re.compile(r"<[^<>]*? at 0x[0-9a-fA-F]+>")
_TEMP_PATH = re.compile(re.escape(tempfile.gettempdir().rstrip("/")) + r"/[^\s:;,)]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_PREFIXES = ("Value error, ", "Assertion failed, ")


def one_line(text: Any, limit: int = MAX_DETAIL) -> str:
    """``text`` as one line for a person: no line breaks or control characters, no object
    addresses (``<… at 0x…>``) or temporary paths (a message that names one is a slip: this is
    the net under it), at most ``limit`` characters."""
    text = _TEMP_PATH.sub("(a temporary file)", _OBJECT_REPR.sub("(an object)", str(text)))
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_response(status: int, detail: Any, errors: list[ErrorItem] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(detail=one_line(detail) or "error", errors=errors)
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=status, headers=headers)


def validation_items(problems: Sequence[dict]) -> list[ErrorItem]:
    """pydantic's problems as :class:`ErrorItem` s: where, what (one line) and the type; the
    input itself is left out (it may be huge, binary or NaN)."""
    items = []
    for problem in problems:
        loc = [p if isinstance(p, int) and not isinstance(p, bool) else one_line(p, 200) for p in problem.get("loc", ())]
        msg = str(problem.get("msg", "invalid"))
        for prefix in _PREFIXES:
            msg = msg.removeprefix(prefix)
        items.append(ErrorItem(loc=loc, msg=one_line(msg, 500), type=one_line(problem.get("type", "invalid"), 100)))
    return items


def install(app: FastAPI) -> None:
    @app.exception_handler(BadInput)
    async def _bad_input(_request: Request, exc: BadInput) -> JSONResponse:
        headers = None if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
        return error_response(exc.status, exc, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI could not parse the body (JSON or multipart): an invalid request
            return error_response(422, f"invalid request: {exc.detail}", [ErrorItem(loc=["body"], msg=one_line(exc.detail, 500),
                                                                                   type="body_unreadable")])
        return error_response(exc.status_code, exc.detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        items = validation_items(exc.errors())
        problems = "; ".join(f"{'.'.join(str(p) for p in item.loc)}: {item.msg}" for item in items)
        return error_response(422, f"invalid request: {problems or 'the request could not be read'}", items)
