"""The web UI's tests against the real API: the server app in embedded mode, in-process
(SQLite in a temporary folder), driven through an :class:`ApiClient` (the fixtures ``settings``
and ``api``, one app per test module)."""

import pytest


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    from server.core.settings import Settings

    # embedded, whatever KMINE_* the environment sets: the database and broker URLs default
    # to SQLite files in data_dir
    return Settings(mode="embedded", data_dir=tmp_path_factory.mktemp("kmine-data"), database_url=None,
                    broker_url=None, device="cpu")


@pytest.fixture(scope="module")
def api(settings):
    """An ApiClient of the real server app: its startup migrates the database and writes the
    admin token, which the client then sends."""
    from starlette.testclient import TestClient

    from server.app import create_app
    from server.core.db import get_engine
    from webui.client import ApiClient

    with TestClient(create_app(settings, prepare=True), base_url="http://testserver/api/v1") as http:
        token = settings.admin_token_file.read_text().strip()
        http.headers["Authorization"] = f"Bearer {token}"
        yield ApiClient("http://testserver", token, http=http)
    get_engine(settings).dispose()
