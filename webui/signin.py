"""The web UI's door: a sign-in page (paste an API token), sign-out, and the checks that keep
everything behind it (the page and every one of Gradio's routes: its config, queue, uploads,
files and API) from anyone not signed in.

Gradio's own ``auth`` asks for a user name and password, which kmine does not have; its
``auth_dependency`` (external authentication) is given :func:`gate`, so Gradio itself answers
401 to any request without a session. The page's own address is also redirected to the
sign-in page by :class:`PageGate` (Gradio would answer it with a bare 401), which also signs
out a visitor whose token was revoked meanwhile."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from webui.sessions import MAX_AGE_S, CannotCheck, Sessions, SignInRefused

COOKIE = "kmine-ui-session"
DEFAULT_HINT = ("Ask the server's admin for an API token: an admin makes one per person with "
                "`kmine token create NAME --role user` or `POST /api/v1/tokens`.")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>kmine · sign in</title>
<style>
body {{font-family: system-ui, sans-serif; background:#f1f5f9; color:#0f172a; margin:0}}
main {{max-width:30rem; margin:12vh auto; background:#fff; padding:2rem; border-radius:12px;
       box-shadow:0 1px 4px #0002}}
h1 {{font-size:1.4rem; margin:0 0 .3rem}} p {{line-height:1.45}}
input {{width:100%; box-sizing:border-box; padding:.6rem; font-size:1rem; border:1px solid #94a3b8; border-radius:6px}}
button {{margin-top:.8rem; padding:.6rem 1.4rem; font-size:1rem; background:#2563eb; color:#fff; border:0; border-radius:6px}}
.problem {{color:#b42318; font-weight:600}} .done {{color:#166534; font-weight:600}}
code {{background:#f1f5f9; padding:0 .2rem; border-radius:4px}} .hint {{color:#475569; font-size:.92rem}}
</style></head>
<body><main>
<h1>kmine</h1>
<p>Sign in with your API token to use the web UI.</p>
{message}
<form method="post" action="{action}">
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="off" autofocus required>
<button id="sign-in" type="submit">Sign in</button>
</form>
<p class="hint">{hint}</p>
</main></body></html>
"""


def page(action: str, hint: str, message: str = "", done: str = "", status: int = 200) -> HTMLResponse:
    """The sign-in page: a problem (red) or a confirmation (green) above the token box."""
    shown = (f"<p class='problem' id='sign-in-problem'>{html.escape(message)}</p>" if message else
             f"<p class='done'>{html.escape(done)}</p>" if done else "")
    return HTMLResponse(PAGE.format(message=shown, action=action, hint=with_code(hint)), status_code=status,
                        headers={"Cache-Control": "no-store"})


def with_code(text: str) -> str:
    """Escaped text whose `backquoted` parts are shown as code."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def gate(sessions: Sessions) -> Callable[[Request], str | None]:
    """Gradio's ``auth_dependency``: the visitor's handle for a request with a live session, else
    None (Gradio then refuses it with 401)."""

    def handle(request: Request) -> str | None:
        visitor = sessions.visitor(request.cookies.get(COOKIE))
        return visitor.handle if visitor else None

    return handle


def install(app: FastAPI, sessions: Sessions, path: str, hint: str = DEFAULT_HINT) -> None:
    """Add the sign-in and sign-out routes under ``path`` (before the UI is mounted there, so they
    are matched first) and the page gate."""
    app.include_router(router(sessions, path, hint or DEFAULT_HINT))
    app.add_middleware(PageGate, sessions=sessions, path=path)


def router(sessions: Sessions, path: str, hint: str) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    action, home = f"{path}/sign-in", f"{path}/"

    def signed_in(request: Request, token: str) -> Response:
        try:
            secret, _ = sessions.sign_in(token)
        except SignInRefused as why:
            return page(action, hint, str(why), status=401)
        response = RedirectResponse(home, status_code=303)
        response.set_cookie(COOKIE, secret, max_age=MAX_AGE_S, path=path or "/", httponly=True, samesite="lax",
                            secure=request.url.scheme == "https")
        return response

    @routes.get(action)
    def sign_in_page(request: Request, code: str = "") -> Response:
        """The sign-in box; with ``code`` (a one-time link ``kmine serve`` printed), signed in at once."""
        if not code:
            return page(action, hint)
        token = sessions.redeem(code)
        if token is None:
            return page(action, hint, "That sign-in link was used already or is too old: paste a token instead.",
                        status=401)
        return signed_in(request, token)

    @routes.post(action)
    def sign_in(request: Request, token: Annotated[str, Form()] = "") -> Response:
        return signed_in(request, token)

    @routes.post(f"{path}/sign-out")
    def sign_out(request: Request) -> Response:
        sessions.sign_out(request.cookies.get(COOKIE))
        response = page(action, hint, done="You are signed out.")
        response.delete_cookie(COOKIE, path=path or "/")
        return response

    return routes


class PageGate:
    """ASGI middleware: the UI's page (``path`` and ``path/``) opens only with a live session
    whose token is still valid; else the browser is sent to the sign-in page. Every other
    request passes untouched (Gradio's routes check :func:`gate` themselves)."""

    def __init__(self, app, sessions: Sessions, path: str):
        self.app, self.sessions, self.path = app, sessions, path
        self.pages = {path or "/", f"{path}/"}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and scope["path"] in self.pages:
            secret = Request(scope).cookies.get(COOKIE)
            if not await run_in_threadpool(self.still_valid, secret):  # it asks the API: not on the event loop
                await RedirectResponse(f"{self.path}/sign-in", status_code=303)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def still_valid(self, secret: str | None) -> bool:
        """Whether the session lives and its token still signs in (a revoked token's session ends);
        a server that cannot be asked now does not end it."""
        visitor = self.sessions.visitor(secret)
        if visitor is None:
            return False
        try:
            self.sessions.check(visitor.token)
        except CannotCheck:
            return True
        except SignInRefused:
            self.sessions.sign_out(secret)
            return False
        return True
