"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) served with no request leaving the machine.

FastAPI's own pages load their JavaScript and CSS from a CDN (and ReDoc's Google Fonts), so on
an air-gapped network they stay blank. These are FastAPI's self-hosted docs pages ("Custom Docs
UI Static Assets"): the same HTML, its assets from the ``fastapi-offline`` package mounted at
``/docs/static``, ReDoc in the browser's own fonts. Like FastAPI's pages they need no token and
are not in the OpenAPI document; the document itself (``/openapi.json``) needs no token either.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

# swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js and favicon.png
ASSETS = Path(str(files("fastapi_offline") / "static"))
STATIC = "/docs/static"
# What the pages may load: from this server only (their own inline script and styles, the icons
# Swagger's CSS inlines as data: URLs, ReDoc's search worker from a blob: URL). The browser then
# refuses any other host before asking the network: ReDoc's side menu, for one, always shows
# Redocly's logo from cdn.redoc.ly (that image is simply left out).
POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
          "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'")


def _local_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = POLICY
    return page


def install(app: FastAPI) -> None:
    """Add ``/docs``, ``/docs/oauth2-redirect`` and ``/redoc`` to ``app``, which must have been
    created with ``docs_url=None, redoc_url=None`` (and the default ``/openapi.json``)."""
    if not app.openapi_url or app.docs_url or app.redoc_url:
        raise ValueError("create the app with docs_url=None, redoc_url=None and an openapi_url")
    openapi_url = app.openapi_url
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"
    app.mount(STATIC, StaticFiles(directory=ASSETS), name="docs-static")

    def prefix(request: Request) -> str:
        """The root path the app is served under (behind a proxy), as FastAPI's pages use it."""
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = prefix(request)
        return _local_only(get_swagger_ui_html(
            openapi_url=root + openapi_url, title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=root + redirect_url, init_oauth=app.swagger_ui_init_oauth,
            # validatorUrl None: never a validator badge from validator.swagger.io (Swagger's default)
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
            swagger_js_url=f"{root}{STATIC}/swagger-ui-bundle.js", swagger_css_url=f"{root}{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC}/favicon.png",
        ))

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return _local_only(get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = prefix(request)
        return _local_only(get_redoc_html(
            openapi_url=root + openapi_url, title=f"{app.title} - ReDoc", with_google_fonts=False,
            redoc_js_url=f"{root}{STATIC}/redoc.standalone.js", redoc_favicon_url=f"{root}{STATIC}/favicon.png",
        ))
