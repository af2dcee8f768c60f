"""The FastAPI application: ``/api/v1`` (datasets, splits, jobs, models, predict), ``/health``
and ``/docs``. ``create_app()`` reads the settings from the environment."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.responses import RedirectResponse

from server.api import docs as api_docs
from server.api import errors as api_errors
from server.api import permissions
from server.api.deps import authorized_token
from server.api.routes import blobs, datasets, health, jobs, label, models, options, predict, splits, tokens
from server.api.schemas.common import ErrorBody, errors
from server.core.settings import Settings, get_settings
from server.services.predict import PredictionService

log = logging.getLogger(__name__)


class _TooLarge(Exception):
    """The body went past the limit while the app was reading it."""


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets 413 before it is read whole.

    A body without Content-Length (chunked) is counted as it arrives; once past the limit the
    app's own answer (a parser's 400, a 500 from the cut-off read) is dropped and the 413 sent."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await _too_large(send, self.limit)
        seen, over, started = 0, False, False

        async def limited_receive():
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    over = True
                    raise _TooLarge()
            return message

        async def guarded_send(message):
            nonlocal started
            if over:
                return
            started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not started:
            await _too_large(send, self.limit)


async def _too_large(send, limit: int):
    body = ErrorBody(detail=f"request body larger than the {limit}-byte limit").model_dump_json(exclude_none=True).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _reaper(settings: Settings, stop: threading.Event, every: float) -> None:
    """Put jobs whose worker died back in the queue (bounded attempts)."""
    from server.core.queue import resend_stale

    while not stop.wait(every):
        try:
            resend_stale(settings)
        except Exception:  # keep reaping; the next round may succeed
            log.exception("requeueing stale jobs failed")


def create_app(settings: Settings | None = None, prepare: bool = True) -> FastAPI:
    settings = settings or get_settings()
    settings.check_production()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if prepare:
            from server.bootstrap import prepare as prepare_install

            prepare_install(settings)
        stop = threading.Event()
        thread = threading.Thread(target=_reaper, args=(settings, stop, max(5.0, settings.job_lease_seconds / 4)),
                                  daemon=True, name="kmine-reaper")
        thread.start()
        yield
        stop.set()

    app = FastAPI(
        title="kmine",
        version="1",
        description="Segmentation students trained by mining SAM for pseudo-labels. Every endpoint under "
                    "`/api/v1` needs `Authorization: Bearer <token>` (the first start writes an admin token to "
                    "`<data_dir>/admin_token`). A token's role decides what it may call (403 otherwise): `admin` "
                    "everything, `user` all but managing tokens and deleting datasets, `worker` only "
                    + ", ".join(f"`{m} {p}`" for m, p in sorted(permissions.WORKER_ROUTES)) + ".",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc come from server.api.docs: their assets served here, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.predictions = PredictionService(settings)

    api_errors.install(app)
    api_docs.install(app)

    # Every route under /api/v1 (but health) needs a token whose role may call it (server.api.permissions),
    # and any of them may answer 401, 403 or 422.
    api_deps = [Depends(authorized_token)]
    for router in (datasets.router, splits.router, jobs.router, models.router, predict.router, label.router,
                   options.router, tokens.router, blobs.router):
        app.include_router(router, prefix="/api/v1", dependencies=api_deps, responses=errors(401, 403, 422))
    app.include_router(health.router)
    app.include_router(health.router, prefix="/api/v1")

    @app.get("/", include_in_schema=False)
    def root():
        return RedirectResponse("/ui/" if getattr(app.state, "ui_mounted", False) else "/docs")

    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes + 1024 * 1024)
    return app

