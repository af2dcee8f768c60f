"""The web UI's sign-in, in process: the server app with the UI mounted as ``kmine serve``
mounts it (embedded mode, SQLite in a temporary folder). Nothing of the UI (its page, config,
queue, uploads, files, API) answers a visitor without a session; a user or admin token signs
in, a worker token and a wrong one are refused in plain words, sign-out ends the session, a
revoked token's session ends at the next page load, and every API call is made with the token
of the visitor whose event runs (no process-wide token)."""

from __future__ import annotations

import pytest

pytest.importorskip("gradio")

from webui.client import ApiClient, ApiError  # noqa: E402
from webui.sessions import INVALID, NOT_SIGNED_IN, WORKER_REFUSED  # noqa: E402
from webui.signin import COOKIE  # noqa: E402

BASE = "http://testserver"


@pytest.fixture(scope="module")
def served(settings):
    """(a client of the app with the UI at /ui, the sessions, tokens by role)."""
    from starlette.testclient import TestClient

    from server.app import create_app
    from server.core.db import get_engine
    from webui.app import mount

    app = create_app(settings, prepare=True)
    sessions = mount(app, BASE, "/ui", hint="The first admin token is in `data/admin_token`.")
    # the UI's calls to the API go to this same app, in process (kmine serve's go over HTTP)
    sessions.client_for = lambda token: ApiClient(BASE, token, http=TestClient(
        app, base_url=f"{BASE}/api/v1", headers={"Authorization": f"Bearer {token}"}))
    with TestClient(app, base_url=BASE) as http:
        admin = settings.admin_token_file.read_text().strip()
        auth = {"Authorization": f"Bearer {admin}"}
        tokens = {"admin": admin}
        for role in ("user", "worker"):
            made = http.post("/api/v1/tokens", json={"name": f"a {role}", "role": role}, headers=auth).json()
            tokens[role] = made["token"]
        yield http, sessions, tokens
    get_engine(settings).dispose()


def sign_in(http, token: str):
    return http.post("/ui/sign-in", data={"token": token}, follow_redirects=False)


@pytest.mark.parametrize("path", ["/ui/config", "/ui/gradio_api/info", "/ui/gradio_api/openapi.json",
                                  "/ui/gradio_api/queue/data?session_hash=x"])
def test_nothing_answers_an_anonymous_visitor(served, path):
    http, _, _ = served
    http.cookies.clear()
    assert http.get(path).status_code == 401


def test_an_anonymous_call_of_the_uis_functions_is_refused(served):
    """What a gradio_client does to call a function: join the queue (and upload a file)."""
    http, _, _ = served
    http.cookies.clear()
    body = {"data": [], "fn_index": 0, "session_hash": "anonymous", "event_data": None, "trigger_id": None}
    assert http.post("/ui/gradio_api/queue/join", json=body).status_code == 401
    assert http.post("/ui/gradio_api/run/predict", json={"data": []}).status_code == 401
    assert http.post("/ui/gradio_api/upload", files={"files": ("a.zip", b"x")}).status_code == 401


def test_the_page_sends_an_anonymous_visitor_to_sign_in(served):
    http, _, _ = served
    http.cookies.clear()
    for path in ("/ui", "/ui/"):
        r = http.get(path)
        assert str(r.url) == f"{BASE}/ui/sign-in" and r.history[-1].status_code == 303
    page = http.get("/ui/sign-in")
    assert page.status_code == 200 and 'name="token"' in page.text
    assert "<code>data/admin_token</code>" in page.text  # where the first admin token is
    assert "semi-supervised" not in page.text  # nothing of the UI


@pytest.mark.parametrize(("role", "message"), [("worker", WORKER_REFUSED), ("wrong", INVALID),
                                             ("", "Paste an API token")])
def test_a_worker_or_wrong_token_is_refused_in_plain_words(served, role, message):
    import html

    http, _, tokens = served
    http.cookies.clear()
    r = sign_in(http, tokens.get(role, "not-a-token" if role else ""))
    assert r.status_code == 401 and html.escape(message) in r.text and COOKIE not in r.cookies
    assert http.get("/ui/config").status_code == 401


@pytest.mark.parametrize("role", ["user", "admin"])
def test_a_person_signs_in_and_out(served, role):
    http, _, tokens = served
    http.cookies.clear()
    r = sign_in(http, tokens[role])
    assert r.status_code == 303 and r.headers["location"] == "/ui/"
    assert http.cookies.get(COOKIE) and tokens[role] not in http.cookies.get(COOKIE)  # an opaque session
    assert http.get("/ui/").status_code == 200
    assert http.get("/ui/config").status_code == 200
    out = http.post("/ui/sign-out")
    assert out.status_code == 200 and "signed out" in out.text
    http.cookies.clear()  # the browser drops it as told; the session is gone on the server too
    assert http.get("/ui/config").status_code == 401


def test_a_stolen_cookie_is_useless_after_sign_out(served):
    http, _, tokens = served
    http.cookies.clear()
    sign_in(http, tokens["user"])
    secret = http.cookies.get(COOKIE)
    http.post("/ui/sign-out")
    http.cookies.clear()
    http.cookies.set(COOKIE, secret)
    assert http.get("/ui/config").status_code == 401
    http.cookies.clear()


def test_a_one_time_link_signs_in_once(served):
    http, sessions, tokens = served
    http.cookies.clear()
    code = sessions.one_time_code(tokens["admin"])
    r = http.get(f"/ui/sign-in?code={code}", follow_redirects=False)
    assert r.status_code == 303 and http.cookies.get(COOKIE)
    http.cookies.clear()
    again = http.get(f"/ui/sign-in?code={code}", follow_redirects=False)
    assert again.status_code == 401 and "used already" in again.text and not http.cookies.get(COOKIE)


def test_a_revoked_tokens_session_ends_at_the_next_page_load(served):
    http, _, tokens = served
    http.cookies.clear()
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    made = http.post("/api/v1/tokens", json={"name": "short-lived", "role": "user"}, headers=admin).json()
    sign_in(http, made["token"])
    assert http.get("/ui/", follow_redirects=False).status_code == 200
    assert http.delete(f"/api/v1/tokens/{made['id']}", headers=admin).status_code == 204
    r = http.get("/ui/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/sign-in"
    assert http.get("/ui/config").status_code == 401
    http.cookies.clear()


def test_every_call_uses_the_token_of_the_visitor_whose_event_runs(served):
    """The UI's client asks for the running event's visitor at each call: two visitors get their
    own names from the API, and a call outside any visitor's event is refused."""
    import gradio as gr
    from gradio.context import LocalContext

    _, sessions, tokens = served
    api = ApiClient(BASE, sessions.current_token)
    api._http = sessions.client_for("")._http  # in process; the header is the visitor's, per call
    api._http.headers.pop("Authorization")
    _, user = sessions.sign_in(tokens["user"])
    _, admin = sessions.sign_in(tokens["admin"])
    try:
        for visitor, name in ((user, "a user"), (admin, "admin")):
            LocalContext.request.set(gr.Request(username=visitor.handle))
            assert api.me()["name"] == name
        LocalContext.request.set(None)
        with pytest.raises(ApiError, match="not signed in"):
            api.datasets()
        assert NOT_SIGNED_IN.startswith("You are not signed in")
    finally:
        LocalContext.request.set(None)
