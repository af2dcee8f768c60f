"""``/docs`` and ``/redoc`` work on an air-gapped network: the real app (embedded, in a
temporary folder) served by uvicorn, the pages opened in Debian's chromium (Playwright) with
every request to another host aborted; Swagger UI and ReDoc must still render the API, and no
request may have tried to leave the machine."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
LOCAL = {"127.0.0.1", "localhost"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The real app (its startup migrates SQLite and writes the admin token) served by uvicorn
    in a thread; its base URL."""
    import uvicorn

    from server.app import create_app
    from server.core.db import get_engine
    from server.core.settings import Settings

    settings = Settings(_env_file=None, mode="embedded", data_dir=tmp_path_factory.mktemp("docs"), database_url=None,
                        broker_url=None, device="cpu")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True, name="docs-uvicorn")
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)  # uvicorn's own flag: set once it listens
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)
    get_engine(settings).dispose()


def test_docs_pages_are_self_contained(base):
    """No token needed, not in the OpenAPI document, and no URL of another host in their HTML."""
    spec = httpx.get(f"{base}/openapi.json").json()
    assert not {"/docs", "/docs/oauth2-redirect", "/redoc"} & set(spec["paths"])
    assert not any(path.startswith("/docs/") for path in spec["paths"])
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        r = httpx.get(base + path)  # no Authorization header
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), (path, r.status_code)
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert not re.search(r"https?:|//[\w.-]+\.\w", r.text), (path, r.text)
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"):
        assert httpx.get(f"{base}/docs/static/{asset}").status_code == 200, asset


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def offline_page(browser):
    """A page with the network off: its requests for any host but this one are aborted and
    recorded (``outside``); ``failed``: every request that failed, as (URL, why)."""
    context = browser.new_context()
    outside: list[str] = []

    def gate(route):
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and urlsplit(url).hostname not in LOCAL:
            outside.append(url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    context.route("**/*", gate)
    page = context.new_page()
    page.set_default_timeout(30_000)
    failed: list[tuple[str, str | None]] = []
    page.on("requestfailed", lambda request: failed.append((request.url, request.failure)))
    yield page, outside, failed
    context.close()


def test_swagger_ui_renders_offline(base, offline_page):
    page, outside, failed = offline_page
    page.goto(f"{base}/docs")
    page.locator(".opblock-summary-path[data-path='/api/v1/options']").wait_for()
    assert page.locator(".info .title").inner_text().startswith("kmine")
    assert page.locator(".opblock").count() >= 25
    assert page.locator(".opblock-summary-path[data-path='/api/v1/datasets']").count() >= 1
    page.wait_for_load_state("networkidle")
    assert outside == [] and failed == [], (outside, failed)


def test_redoc_renders_offline(base, offline_page):
    page, outside, failed = offline_page
    page.goto(f"{base}/redoc")
    # The operation list: the side menu's entries (under collapsed tags) and each operation's heading.
    page.locator("[data-item-id*='operation/']").first.wait_for(state="attached")
    assert page.locator("[data-item-id*='operation/']").count() >= 25
    page.get_by_role("heading", name="Choices and limits a client meets").wait_for()
    assert page.locator("h1").first.inner_text().startswith("kmine")
    page.wait_for_load_state("networkidle")
    # ReDoc's side menu always shows Redocly's logo from its CDN: the page's Content-Security-Policy
    # has the browser refuse it before any request is made (nothing reached the network gate).
    assert outside == [], outside
    assert failed == [("https://cdn.redoc.ly/redoc/logo-mini.svg", "csp")], failed
