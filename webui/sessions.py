"""Who is signed in to the web UI: each visitor's own API token, held here on the UI's server
(the browser gets an opaque session cookie, never the token), and the one-time sign-in codes
``kmine serve`` prints. Every API call the UI makes for a visitor uses that visitor's token:
there is no process-wide token (see :meth:`Sessions.current_token`)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from webui.client import ApiClient, ApiError

MAX_AGE_S = 7 * 24 * 3600  # a session ends a week after its sign-in at the latest
CODE_AGE_S = 3600  # a one-time sign-in link works once, within the hour after it was printed
# Which roles a person may sign in with: a worker token is a machine's credential.
PERSON_ROLES = ("admin", "user")

NOT_SIGNED_IN = "You are not signed in (or your session ended): reload the page and sign in."
WORKER_REFUSED = ("That is a worker token: it lets a job worker take work from the server, not a person use "
                  "the web UI. Sign in with a user or admin token.")
INVALID = "That token is not valid: it is unknown or has been revoked. Check it, or ask an admin for a new one."


class SignInRefused(Exception):
    """Why a token may not sign in, in words for the sign-in page."""


class CannotCheck(SignInRefused):
    """The server could not be asked about the token (it says nothing about the token itself)."""


@dataclass(frozen=True)
class Visitor:
    token: str
    name: str
    role: str
    handle: str  # what Gradio knows this visitor by (its "username", shown to the page): not the cookie
    since: float


class Sessions:
    def __init__(self, api_url: str, client_for: Callable[[str], ApiClient] | None = None):
        """``client_for``: the API client of a token (default: one over HTTP to ``api_url``)."""
        self.api_url = api_url
        self.client_for = client_for or (lambda token: ApiClient(api_url, token, timeout=30))
        self._by_secret: dict[str, Visitor] = {}
        self._by_handle: dict[str, Visitor] = {}
        self._codes: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    # ---- signing in and out ----
    def check(self, token: str) -> dict:
        """The token's name and role when a person may sign in with it; else :class:`SignInRefused`."""
        token = token.strip()
        if not token:
            raise SignInRefused("Paste an API token to sign in.")
        try:
            me = self.client_for(token).me()
        except ApiError as err:
            if "Not signed in" in str(err):  # the API's 401
                raise SignInRefused(INVALID) from None
            raise CannotCheck(f"Cannot check the token now: {err}") from None
        if me["role"] not in PERSON_ROLES:
            raise SignInRefused(WORKER_REFUSED if me["role"] == "worker" else INVALID)
        return me

    def sign_in(self, token: str) -> tuple[str, Visitor]:
        """A new session for a valid person's token: (the cookie's secret, the visitor)."""
        me = self.check(token)
        secret, now = secrets.token_urlsafe(32), time.time()
        visitor = Visitor(token.strip(), me["name"], me["role"], secrets.token_urlsafe(12), now)
        with self._lock:
            self._prune(now)
            self._by_secret[secret] = visitor
            self._by_handle[visitor.handle] = visitor
        return secret, visitor

    def sign_out(self, secret: str | None) -> None:
        with self._lock:
            visitor = self._by_secret.pop(secret or "", None)
            if visitor:
                self._by_handle.pop(visitor.handle, None)

    def _prune(self, now: float) -> None:
        for secret, visitor in list(self._by_secret.items()):
            if now - visitor.since > MAX_AGE_S:
                del self._by_secret[secret]
                self._by_handle.pop(visitor.handle, None)
        for code, (_, until) in list(self._codes.items()):
            if until < now:
                del self._codes[code]

    # ---- one-time sign-in links ----
    def one_time_code(self, token: str) -> str:
        """A code that signs in with ``token`` once, within :data:`CODE_AGE_S` (what ``kmine serve``
        prints as a link, as Jupyter does, so the first admin needs no copying)."""
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = (token, time.time() + CODE_AGE_S)
        return code

    def redeem(self, code: str) -> str | None:
        """The token of a one-time code, which is then spent; None when unknown, spent or too old."""
        with self._lock:
            token, until = self._codes.pop(code, ("", 0.0))
        return token if until >= time.time() else None

    # ---- who a request is for ----
    def visitor(self, secret: str | None) -> Visitor | None:
        """The visitor of a session cookie, while the session lasts."""
        visitor = self._by_secret.get(secret or "")
        if visitor is None or time.time() - visitor.since > MAX_AGE_S:
            return None
        return visitor

    def by_handle(self, handle: str | None) -> Visitor | None:
        return self._by_handle.get(handle or "")

    def current_token(self) -> str:
        """The token of the visitor whose event is running now (the UI's ApiClient asks at every
        call). Gradio runs each event with its request in ``LocalContext``, whose ``username`` is
        what :func:`webui.signin.gate` answered for it; outside an event, or for a visitor whose
        session ended, there is none and the call is refused."""
        from gradio.context import LocalContext

        request = LocalContext.request.get(None)
        visitor = self.by_handle(getattr(request, "username", None))
        if visitor is None:
            raise ApiError(NOT_SIGNED_IN)
        return visitor.token
