"""Tokens with roles, on the real app and a PostgreSQL database of their own: an admin creates,
lists and revokes tokens through the API and with ``kmine token`` (a subprocess, as the console
script runs); each role is held to its routes (server.api.permissions); a revoked token gets
401; the last admin token cannot be revoked; the database holds only the tokens' hashes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import select

from service_fixtures import ROOT, assert_error, create_pg_database


@pytest.fixture(scope="module")
def own(settings, prod_env, tmp_path_factory):
    """Settings and ``KMINE_*`` variables of an installation on a database of its own (tokens
    are revoked here that other tests' clients must keep)."""
    from server.core.db import get_engine

    url, drop = create_pg_database()
    data_dir = tmp_path_factory.mktemp("tokens")
    mine = settings.model_copy(update={"database_url": url, "data_dir": data_dir})
    try:
        yield mine, {**prod_env, "KMINE_DATABASE_URL": url, "KMINE_DATA_DIR": str(data_dir)}
    finally:
        get_engine(mine).dispose()
        drop()


@pytest.fixture(scope="module")
def api(own):
    """A client of the app on that database, with the first start's admin token."""
    from fastapi.testclient import TestClient

    from server.app import create_app

    settings, _ = own
    with TestClient(create_app(settings)) as c:
        c.headers["Authorization"] = f"Bearer {settings.admin_token_file.read_text().strip()}"
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create(api, name: str, role: str) -> dict:
    r = api.post("/api/v1/tokens", json={"name": name, "role": role})
    assert r.status_code == 201, r.text
    return r.json()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``python -m server.cli token *args`` with the installation's variables, as ``kmine token`` runs."""
    return subprocess.run([sys.executable, "-m", "server.cli", "token", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, timeout=120)


def test_admin_creates_and_lists_tokens_shown_once(api, own):
    from server.core.db import session_scope
    from server.core.models import ApiToken
    from server.core.security import hash_token

    settings, _ = own
    made = create(api, "annotator anna", "user")
    assert made["role"] == "user" and made["name"] == "annotator anna" and not made["revoked"]
    assert re.fullmatch(r"km_[A-Za-z0-9_-]{40,}", made["token"])
    assert made["created_by"] == api.get("/api/v1/tokens/me").json()["id"]
    assert api.get("/api/v1/tokens/me", headers=bearer(made["token"])).json() == {"id": made["id"], "name": "annotator anna",
                                                                                   "role": "user"}
    listing = api.get("/api/v1/tokens")
    assert listing.status_code == 200
    assert made["token"] not in listing.text and "hash" not in listing.text
    row = next(t for t in listing.json() if t["id"] == made["id"])
    assert set(row) == {"id", "name", "role", "created_at", "created_by", "last_used_at", "revoked", "revoked_at"}
    assert row["last_used_at"] is not None  # it was used for /tokens/me just now
    # The database keeps the HMAC of each token, never the token itself.
    with session_scope(settings) as session:
        stored = session.get(ApiToken, made["id"])
        assert stored is not None and stored.token_hash == hash_token(made["token"], settings)
        for token in session.scalars(select(ApiToken)):
            assert made["token"] not in repr([getattr(token, c.key) for c in ApiToken.__table__.columns])
    # Refused requests: a bad role or name, extra fields.
    assert_error(api.post("/api/v1/tokens", json={"name": "x", "role": "root"}), 422, "role")
    assert_error(api.post("/api/v1/tokens", json={"name": "  ", "role": "user"}), 422, "name")
    assert_error(api.post("/api/v1/tokens", json={"name": "a\nb", "role": "user"}), 422, "name")
    assert_error(api.post("/api/v1/tokens", json={"name": "x", "role": "user", "token": "km_mine"}), 422, "token")


def test_last_used_is_written_at_most_once_a_minute(own):
    from server.core.db import session_scope
    from server.core.models import ApiToken, utcnow
    from server.core.security import create_token, mark_used

    settings, _ = own
    with session_scope(settings) as session:
        row, _ = create_token(session, settings, "clock", "user")
    start = utcnow()
    with session_scope(settings) as session:
        token = session.get(ApiToken, row.id)
        mark_used(session, token, start)
        mark_used(session, token, start + timedelta(seconds=59))  # within the minute: no write
    with session_scope(settings) as session:
        token = session.get(ApiToken, row.id)
        assert token.last_used_at == start
        mark_used(session, token, start + timedelta(seconds=61))
    with session_scope(settings) as session:
        assert session.get(ApiToken, row.id).last_used_at == start + timedelta(seconds=61)


def test_revoked_token_gets_401_and_the_last_admin_stays(api):
    user = create(api, "short-lived", "user")
    assert api.get("/api/v1/datasets", headers=bearer(user["token"])).status_code == 200
    assert api.delete(f"/api/v1/tokens/{user['id']}").status_code == 204
    r = api.get("/api/v1/datasets", headers=bearer(user["token"]))
    assert_error(r, 401, "revoked")
    assert r.headers["www-authenticate"] == "Bearer"
    assert_error(api.get("/api/v1/tokens/me", headers=bearer(user["token"])), 401, "revoked")
    listed = {t["id"]: t for t in api.get("/api/v1/tokens").json()}
    assert listed[user["id"]]["revoked"] and listed[user["id"]]["revoked_at"]
    assert_error(api.delete(f"/api/v1/tokens/{user['id']}"), 409, "already revoked")
    assert_error(api.delete("/api/v1/tokens/987654"), 404, "token 987654 not found")

    # A second admin may be revoked; the last live one may not.
    me = api.get("/api/v1/tokens/me").json()
    second = create(api, "second admin", "admin")
    assert api.delete(f"/api/v1/tokens/{second['id']}").status_code == 204
    live_admins = [t for t in api.get("/api/v1/tokens").json() if t["role"] == "admin" and not t["revoked"]]
    assert [t["id"] for t in live_admins] == [me["id"]]
    assert_error(api.delete(f"/api/v1/tokens/{me['id']}"), 409, "last admin token")
    assert api.get("/api/v1/tokens/me").json() == me


def _each_operation(api):
    """(method, concrete path) of every operation under /api/v1 in the app's own document."""
    for path, item in api.app.openapi()["paths"].items():
        if path.startswith("/api/v1"):
            for method in item:
                yield method.upper(), re.sub(r"\{[^}]+\}", "1", path)


def test_each_role_is_held_to_its_routes(api):
    from server.api.permissions import ADMIN_ROUTES, WORKER_ROUTES

    worker = create(api, "gpu-worker-1", "worker")["token"]
    user = create(api, "annotator bob", "user")["token"]
    # Worker: its allowed routes, and /health with or without its token.
    assert api.get("/api/v1/tokens/me", headers=bearer(worker)).json()["role"] == "worker"
    assert api.get("/api/v1/options", headers=bearer(worker)).status_code == 200
    for path in ("/health/live", "/api/v1/health/live"):
        assert api.get(path, headers=bearer(worker)).status_code == 200
    # Every other operation (user's and admin's routes) is refused before anything else is checked.
    allowed = {(m, re.sub(r"\{[^}]+\}", "1", p)) for m, p in WORKER_ROUTES}
    admin_only = {(m, re.sub(r"\{[^}]+\}", "1", p)) for m, p in ADMIN_ROUTES}
    refused_user = 0
    for method, path in _each_operation(api):
        if "/health/" in path:
            continue
        if (method, path) not in allowed:
            refused(api.request(method, path, headers=bearer(worker)), "a worker token may call only")
        if (method, path) in admin_only:
            refused(api.request(method, path, headers=bearer(user)), "this needs an admin token")
            refused_user += 1
    assert refused_user == len(ADMIN_ROUTES)
    # A user may do everything else, e.g. read datasets and the options, and learn its role.
    for path in ("/api/v1/datasets", "/api/v1/options", "/api/v1/jobs"):
        assert api.get(path, headers=bearer(user)).status_code == 200, path
    assert api.get("/api/v1/tokens/me", headers=bearer(user)).json()["role"] == "user"
    assert api.get("/api/v1/datasets/987654", headers=bearer(user)).status_code == 404


def refused(r, words: str) -> None:
    """403 with ``words`` in its message (a HEAD answer has the status only)."""
    if r.request.method == "HEAD":
        assert r.status_code == 403
    else:
        assert_error(r, 403, words)


def test_the_permission_lists_name_real_routes(api):
    """A renamed route must not silently leave the lists (and so lose its protection)."""
    from server.api.permissions import ADMIN_ROUTES, WORKER_ROUTES

    declared = {(m.upper(), p) for p, item in api.app.openapi()["paths"].items() for m in item}
    assert ADMIN_ROUTES <= declared and WORKER_ROUTES <= declared


def test_kmine_token_commands(api, own):
    settings, env = own
    made = cli(env, "create", "gpu-worker-2", "--role", "worker")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert re.fullmatch(r"km_[A-Za-z0-9_-]{40,}", token) and "shown only this once" in made.stderr
    me = api.get("/api/v1/tokens/me", headers=bearer(token)).json()
    assert me["name"] == "gpu-worker-2" and me["role"] == "worker"
    assert api.get("/api/v1/datasets", headers=bearer(token)).status_code == 403

    listing = cli(env, "list")
    assert listing.returncode == 0, listing.stderr
    assert token not in listing.stdout + listing.stderr
    line = next(line for line in listing.stdout.splitlines() if "gpu-worker-2" in line)
    assert line.split()[0] == str(me["id"]) and "worker" in line
    assert listing.stdout.splitlines()[0].split()[:3] == ["id", "name", "role"]

    revoked = cli(env, "revoke", str(me["id"]))
    assert revoked.returncode == 0 and "revoked token" in revoked.stdout, revoked.stderr
    assert_error(api.get("/api/v1/tokens/me", headers=bearer(token)), 401, "revoked")
    again = cli(env, "revoke", str(me["id"]))
    assert again.returncode == 1 and "already revoked" in again.stderr

    admin_id = api.get("/api/v1/tokens/me").json()["id"]
    last = cli(env, "revoke", str(admin_id))
    assert last.returncode == 1 and "last admin token" in last.stderr and "Traceback" not in last.stderr
    bad = cli(env, "create", "x", "--role", "root")
    assert bad.returncode == 2 and "Invalid value for '--role'" in bad.stderr
    # An admin token made on the command line works through the API.
    admin = cli(env, "create", "ops", "--role", "admin").stdout.strip()
    assert api.get("/api/v1/tokens", headers=bearer(admin)).status_code == 200
