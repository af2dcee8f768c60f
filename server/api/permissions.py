"""Which token role may call which route: the one place that decides it.

Every router under ``/api/v1`` is included with :func:`server.api.deps.authorized_token`,
which asks :func:`refusal` about the request's method and path before the route runs (before
its parameters are read or the resources it names looked up; ``/health`` needs no token). The
lists name routes as the app declares them, ``{…}`` standing for one path segment:

* ``admin``: every route.
* ``user``: every route but :data:`ADMIN_ROUTES` (managing tokens, deleting datasets, the blobs).
* ``worker``: only :data:`WORKER_ROUTES`: who it is, the options, and the blobs its jobs fetch
  and send (:data:`BLOB_ROUTES`). A worker also writes progress, metrics and result rows to the
  database directly, as the design says; no route of the API's data is open to it.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.routing import compile_path

from kmine.text import shown

Route = tuple[str, str]  # (HTTP method, path template as the app declares it)

# what a worker on another machine fetches its job's inputs with and sends its results to
BLOB_ROUTES: frozenset[Route] = frozenset({
    ("GET", "/api/v1/blobs/{digest}"),
    ("HEAD", "/api/v1/blobs/{digest}"),
    ("PUT", "/api/v1/blobs/{digest}"),
    ("DELETE", "/api/v1/blobs/{digest}"),
})
ADMIN_ROUTES: frozenset[Route] = frozenset({
    ("POST", "/api/v1/tokens"),
    ("GET", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{token_id}"),
    ("DELETE", "/api/v1/datasets/{dataset_id}"),
    *BLOB_ROUTES,
})
WORKER_ROUTES: frozenset[Route] = frozenset({
    ("GET", "/api/v1/tokens/me"),
    ("GET", "/api/v1/options"),
    *BLOB_ROUTES,
})


def _matcher(routes: frozenset[Route]) -> Callable[[str, str], bool]:
    patterns = [(method, compile_path(path)[0]) for method, path in routes]

    def matches(method: str, path: str) -> bool:
        return any(m == method and pattern.match(path) for m, pattern in patterns)

    return matches


_admin_only = _matcher(ADMIN_ROUTES)
_worker_may = _matcher(WORKER_ROUTES)
_WORKER_REFUSAL = "a worker token may call only " + ", ".join(f"{m} {p}" for m, p in sorted(WORKER_ROUTES))


def refusal(role: str, method: str, path: str) -> str | None:
    """Why a token of ``role`` may not call ``method path`` (one line), or None when it may."""
    if role == "admin":
        return None
    if role == "user":
        return "this needs an admin token" if _admin_only(method, path) else None
    if role == "worker":
        return None if _worker_may(method, path) else _WORKER_REFUSAL
    return f"a token with role {shown(role)} may call nothing"
