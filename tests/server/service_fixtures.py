"""Fixtures on real services (shared by tests/server and tests/worker): a fresh PostgreSQL
database and a Redis db number per run, an API app on them, and a real ``kmine worker`` process."""

from __future__ import annotations

import io
import os
import secrets
import signal
import stat
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from shared_data import COVID, WEIGHTS, require

ROOT = Path(__file__).resolve().parents[2]
PG_HOST = os.environ.get("KMINE_TEST_PG", "127.0.0.1:5432")
REDIS = os.environ.get("KMINE_TEST_REDIS", "127.0.0.1:6379")


def _pg_admin():
    import psycopg

    last = None
    for user in ("postgres", "root"):
        try:
            return psycopg.connect(f"postgresql://{user}@{PG_HOST}/test", autocommit=True, connect_timeout=5), user
        except psycopg.OperationalError as err:
            last = err
    pytest.skip(f"PostgreSQL at {PG_HOST} is not reachable: {last}")


def create_pg_database() -> tuple[str, callable]:
    conn, user = _pg_admin()
    name = f"kmine_test_{secrets.token_hex(4)}"
    conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.close()

    return f"postgresql+psycopg://{user}@{PG_HOST}/{name}", drop



def make_zip(entries: dict[str, bytes], link: str | None = None, compression=zipfile.ZIP_STORED) -> bytes:
    """A zip of ``entries``; ``link``: also a symbolic link entry of that name (a hostile upload)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as z:
        for name, data in entries.items():
            z.writestr(name, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, "/etc/passwd")
    return buf.getvalue()

@pytest.fixture(scope="session")
def pg_database():
    url, drop = create_pg_database()
    try:
        yield url
    finally:
        from server.core.db import _engine_for

        _engine_for.cache_clear()
        drop()


@pytest.fixture(scope="session")
def redis_url():
    import redis

    db = secrets.randbelow(14) + 2
    client = redis.Redis.from_url(f"redis://{REDIS}/{db}")
    try:
        client.ping()
    except redis.ConnectionError as err:
        pytest.skip(f"Redis at {REDIS} is not reachable: {err}")
    yield f"redis://{REDIS}/{db}"
    client.flushdb()


@pytest.fixture(scope="session")
def prod_env(pg_database, redis_url, tmp_path_factory) -> dict[str, str]:
    """KMINE_* variables of a production-mode installation on the test services."""
    require(WEIGHTS)
    return {
        "KMINE_MODE": "production",
        "KMINE_DATABASE_URL": pg_database,
        "KMINE_BROKER_URL": redis_url,
        "KMINE_QUEUE": f"kmine-test-{secrets.token_hex(3)}",
        "KMINE_SECRET_KEY": secrets.token_hex(24),
        "KMINE_DATA_DIR": str(tmp_path_factory.mktemp("kmine-data")),
        "KMINE_WEIGHTS_DIR": str(WEIGHTS),
        "KMINE_DEVICE": "cpu",
        "KMINE_JOB_LEASE_SECONDS": "20",
    }


@pytest.fixture(scope="session")
def settings(prod_env):
    from server.core.settings import Settings

    saved = {k: os.environ.get(k) for k in prod_env}
    os.environ.update(prod_env)
    try:
        yield Settings()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def client(settings):
    from fastapi.testclient import TestClient

    from server.app import create_app

    with TestClient(create_app(settings)) as c:
        token = settings.admin_token_file.read_text().strip()
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


@pytest.fixture(scope="session")
def migrated(settings):
    """The test database migrated to head, with its admin token (what a server start does)."""
    from server.bootstrap import prepare

    prepare(settings, echo=lambda *_: None)
    return settings


@pytest.fixture()
def db_session(migrated):
    """A session on the test database for calling services directly."""
    from server.core.db import session_factory

    session = session_factory(migrated)()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


@pytest.fixture()
def quiet_settings(migrated):
    """The test settings with a queue of their own that no worker consumes: jobs submitted
    with them are recorded and sent, but never run."""
    return migrated.model_copy(update={"queue": f"kmine-unconsumed-{secrets.token_hex(3)}"})


@pytest.fixture()
def quiet_client(quiet_settings, client):
    """An API client (admin token) whose jobs go to a queue no worker consumes."""
    from fastapi.testclient import TestClient

    from server.app import create_app

    with TestClient(create_app(quiet_settings, prepare=False), headers=client.headers) as c:
        yield c


def covid_entries(n: int | None = None) -> list[tuple[str, bytes]]:
    """The COVID-QU-Ex sample as ``images/…`` and ``masks/…`` entries (the first ``n`` stems)."""
    require(COVID)
    stems = sorted(p.stem for p in (COVID / "images").iterdir())[:n]
    entries = []
    for folder in ("images", "masks"):
        for path in sorted((COVID / folder).iterdir()):
            if path.stem in stems:
                entries.append((f"{folder}/{path.name}", path.read_bytes()))
    return entries


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "worker", "--loglevel=INFO"], cwd=ROOT,
                            env={**os.environ, **env, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"},
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kmine worker exited: {log_path.read_text()[-3000:]}")
        if b"ready." in log_path.read_bytes():
            return proc
        time.sleep(0.5)
    stop_process(proc)
    raise RuntimeError(f"kmine worker not ready in 90 s: {log_path.read_text()[-3000:]}")


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def worker_process(prod_env, client, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    proc = start_worker(prod_env, log_path)
    yield proc
    stop_process(proc)


def covid_zip(top: str = "covid") -> bytes:
    require(COVID)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for folder in ("images", "masks"):
            for path in sorted((COVID / folder).iterdir()):
                z.write(path, f"{top}/{folder}/{path.name}")
        z.writestr(f"{top}/README.txt", "not data")
    return buf.getvalue()


def assert_error(r, status: int, words: str = "") -> dict:
    """``r`` is an error answer of ``status`` whose body is an ErrorBody with ``words`` in its one-line ``detail``."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) <= {"detail", "errors"} and isinstance(body["detail"], str), body
    detail = body["detail"]
    assert detail and "\n" not in detail and " at 0x" not in detail and "Value error," not in detail, detail
    assert words in detail, (words, detail)
    if status == 422 and "errors" in body:
        assert all(set(e) == {"loc", "msg", "type"} for e in body["errors"]), body["errors"]
    return body


def wait_for_job(client, job_id: int, until=("succeeded", "failed", "cancelled"), timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in until:
            return job
        time.sleep(1)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s: {job}")


class Gate:
    """A first call that holds the lane until opened, so the next calls wait together."""

    def __init__(self, lane):
        self.entered, self.opened = threading.Event(), threading.Event()
        self.future = lane.submit(self._run, None)
        assert self.entered.wait(60)

    def _run(self, items):
        self.entered.set()
        self.opened.wait(60)
        return items

    def open(self):
        self.opened.set()
        self.future.result(60)


def png(mask):
    """A (H, W) bool mask as PNG bytes (0/255)."""
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buf, format="PNG")
    return buf.getvalue()


def pixels(data: bytes):
    """PNG bytes as a (H, W) bool mask (foreground >= 128)."""
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("L")) >= 128
