"""The web UI in a real browser (Debian's chromium driven by Playwright) against a real
``kmine serve`` with a small trained model: datasets, predict with overlay and Dice, label three
images (SAM re-prompted with a box and points, a brush correction, keyboard shortcuts), launch a
short job and watch its progress and curves. Screenshots of every view are kept in
tests/webui/artifacts/ (look at them)."""

from __future__ import annotations

import base64
import io
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from service_fixtures import covid_zip
from shared_data import COVID, WEIGHTS, require, stop_process_group

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# How long a test waits on an event (a page, an answer, a job) before calling it lost. Every wait
# is on the event itself; this only bounds a hang, and is long because a loaded 2-core machine
# (a training job beside the suite) renders Gradio's pages and answers many times slower.
PATIENCE_S = 900
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_job(c: httpx.Client, job_id: int, timeout: float = 2 * PATIENCE_S) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(1)
    raise AssertionError(f"job {job_id} did not finish: {job}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real ``kmine serve`` (UI mounted at /ui) with the covid sample, a split and a trained model."""
    pytest.importorskip("gradio")
    require(WEIGHTS)
    require(COVID)
    tmp = tmp_path_factory.mktemp("webui")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMINE_")}
    env.update(KMINE_DATA_DIR=str(tmp / "data"), KMINE_WEIGHTS_DIR=str(WEIGHTS), KMINE_DEVICE="cpu",
               OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", GRADIO_ANALYTICS_ENABLED="False")
    log_path = tmp / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--no-demo"],
                            cwd=tmp, env=env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + PATIENCE_S
        while time.monotonic() < deadline:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            try:
                if httpx.get(f"{base}/health/live").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        token = (tmp / "data" / "admin_token").read_text().strip()
        c = httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=300)
        ds = c.post("/datasets", data={"name": "covid"}, files={"archive": ("c.zip", covid_zip())}).json()
        split = c.post(f"/datasets/{ds['id']}/splits",
                       json={"val_fraction": 0.2, "test_fraction": 0.2, "labelled_fraction": 0.5}).json()
        job = c.post("/jobs", json={"kind": "train", "split_id": split["id"], "config": {
            "schedule": "supervised", "max_epochs": 8, "size": 128, "batch_size": 4, "lr": 1e-3,
            "prompts": {"kinds": "points+box", "per_component": True}}}).json()
        job = wait_job(c, job["id"])
        assert job["status"] == "succeeded", job
        tokens = {role: c.post("/tokens", json={"name": f"webui {role}", "role": role}).json()["token"]
                  for role in ("user", "worker")}
        yield {"base": base, "client": c, "dataset": ds, "split": split, "tmp": tmp, "log": log_path,
               "tokens": tokens}
    finally:
        stop_process_group(proc)


@pytest.fixture(scope="module")
def page(server):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        pg = browser.new_page(viewport={"width": 1440, "height": 1000})
        pg.set_default_timeout(PATIENCE_S * 1000)
        pg.goto(server["base"] + "/")  # redirects to /ui/, which sends a visitor to sign in first
        sign_in(pg, server["tokens"]["user"])  # a user token: everything these tests do but manage tokens
        pg.get_by_text("semi-supervised segmentation").wait_for()
        yield pg
        browser.close()


def sign_in(page, token: str):
    """Paste ``token`` in the sign-in box the UI shows a visitor without a session, and send it."""
    page.locator("#token").fill(token)
    page.locator("#sign-in").click()


def new_page(browser, server):
    """A new browser context (no cookie: an anonymous visitor) on the UI's address."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(PATIENCE_S * 1000)
    pg.goto(server["base"] + "/ui/")
    return context, pg


def tab(page, name: str):
    page.get_by_role("tab", name=name).click()


def test_root_redirects_to_ui(server):
    r = httpx.get(server["base"] + "/", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"].startswith("/ui")


def test_anonymous_visitor_sees_only_the_sign_in_box(server, page):
    """No credential: the page is the sign-in box (saying where the first admin token is), and
    neither a raw request nor a gradio_client reaches the UI's functions."""
    context, anonymous = new_page(page.context.browser, server)
    try:
        anonymous.locator("#token").wait_for()
        assert anonymous.url.endswith("/ui/sign-in")
        assert "admin_token" in anonymous.locator("main").inner_text()
        assert anonymous.get_by_text("semi-supervised segmentation").count() == 0
        anonymous.screenshot(path=str(ARTIFACTS / "sign-in.png"), full_page=True)
    finally:
        context.close()
    base = server["base"] + "/ui"
    body = {"data": [], "fn_index": 0, "session_hash": "anonymous", "event_data": None, "trigger_id": None}
    assert httpx.post(f"{base}/gradio_api/queue/join", json=body).status_code == 401
    assert httpx.get(f"{base}/config").status_code == 401
    gradio_client = pytest.importorskip("gradio_client")
    with pytest.raises(Exception):  # noqa: B017 (whatever it raises, it gets nothing)
        gradio_client.Client(base + "/", verbose=False).predict(fn_index=0)


def test_worker_token_is_refused_at_sign_in(server, page):
    context, visitor = new_page(page.context.browser, server)
    try:
        sign_in(visitor, server["tokens"]["worker"])
        visitor.locator("#sign-in-problem").get_by_text("That is a worker token").wait_for()
        assert visitor.get_by_text("semi-supervised segmentation").count() == 0
    finally:
        context.close()


def test_user_is_signed_in_and_signs_out(server, page):
    """The module's page acts as the user it signed in as; a second visitor signs in with the
    one-time-free way (a token) and out again, and is then asked to sign in."""
    page.locator("#kmine-status").get_by_text("Signed in as webui user (user)").wait_for()
    context, visitor = new_page(page.context.browser, server)
    try:
        sign_in(visitor, server["tokens"]["user"])
        visitor.get_by_text("semi-supervised segmentation").wait_for()
        visitor.locator("#sign-out").click()
        visitor.get_by_text("You are signed out").wait_for()
        visitor.goto(server["base"] + "/ui/")
        visitor.locator("#token").wait_for()
    finally:
        context.close()


def test_datasets_view(server, page):
    tab(page, "Datasets")
    table = page.locator("#datasets-table")
    table.get_by_text("covid").first.wait_for()
    buf = io.BytesIO(covid_zip("second"))
    zip_path = server["tmp"] / "second.zip"
    zip_path.write_bytes(buf.getvalue())
    page.locator("#upload-name textarea, #upload-name input").first.fill("second covid")
    page.locator("#upload-zip input[type=file]").set_input_files(str(zip_path))
    page.locator("#upload-zip").get_by_text("second.zip").wait_for()  # uploaded to the UI's server
    page.locator("#upload-run").click()
    page.locator("#upload-message").get_by_text("Imported").wait_for()
    table.get_by_text("second covid").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "datasets-uploaded.png"), full_page=True)
    page.locator("#kmine-status").get_by_text(re.compile("2 dataset")).wait_for()  # the header follows the upload
    page.locator("#split-run").click()  # the new dataset has no split yet: make one
    page.locator("#split-message").get_by_text("Made split").wait_for()
    page.screenshot(path=str(ARTIFACTS / "datasets.png"), full_page=True)


def test_predict_overlay_and_dice(server, page):
    tab(page, "Predict")
    image = sorted((COVID / "images").iterdir())[0]
    mask = COVID / "masks" / image.name
    page.locator("#predict-image input[type=file]").set_input_files(str(image))
    # a new image forgets the last one's ground truth: the mask goes in once that is done
    page.locator("#predict-metrics").get_by_text("New image").wait_for()
    page.locator("#predict-truth input[type=file]").set_input_files(str(mask))
    page.locator("#predict-truth img").wait_for()
    page.locator("#show-truth input:checked").wait_for()  # the server has the mask too
    page.locator("#predict-run").click()
    metrics = page.locator("#predict-metrics")
    metrics.get_by_text("student (ms)").wait_for()  # the answer's table, not the hint
    text = metrics.inner_text()
    numbers = [float(x) for x in re.findall(r"\b[01]\.\d{3}\b", text)]
    assert len(numbers) >= 4, text  # Dice and IoU for the student and for SAM
    assert all(0 <= n <= 1 for n in numbers)
    page.locator("#predict-overlay img").wait_for()
    assert "⚠" not in text
    page.screenshot(path=str(ARTIFACTS / "predict.png"), full_page=True)

    # each layer is toggleable: SAM's mask off changes the overlay, on again restores it
    shown = _overlay_src(page)
    page.locator("#show-sam input").click()
    hidden = _wait_overlay_change(page, shown)
    assert not np.array_equal(_overlay_pixels(page, hidden), _overlay_pixels(page, shown))
    page.locator("#show-sam input").click()
    again = _wait_overlay_change(page, hidden)
    np.testing.assert_array_equal(_overlay_pixels(page, again), _overlay_pixels(page, shown))


def _overlay_src(page) -> str:
    return page.locator("#predict-overlay img").get_attribute("src")


def _wait_overlay_change(page, before: str) -> str:
    """The overlay's new image address, once the browser has shown a new, fully loaded image."""
    page.wait_for_function(
        "(before) => { const img = document.querySelector('#predict-overlay img');"
        " return img && img.src !== before && img.complete && img.naturalWidth > 0; }", arg=before)
    return _overlay_src(page)


def _overlay_pixels(page, src: str) -> np.ndarray:
    """The pixels of the overlay image the server sent for ``src`` (decoded: the same picture
    compares equal whatever file it was served from)."""
    if src.startswith("data:"):
        body = base64.b64decode(src.split(",", 1)[1])
    else:
        body = page.request.get(src if src.startswith("http") else page.url.split("/ui")[0] + src).body()
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))


def test_predict_picks_an_image_from_a_dataset(server, page):
    """The dataset picker loads the image and its ground truth; Student mode shows one column."""
    tab(page, "Predict")
    page.get_by_text("Pick from a dataset").click()
    page.locator("#predict-pick input").click()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.locator("#show-truth input:checked").wait_for()  # its ground truth came with it
    page.locator("#predict-mode").get_by_text("Student", exact=True).click()
    metrics = page.locator("#predict-metrics")
    page.locator("#predict-run").click()
    # the last prediction (student → SAM) named its prompts; a student-only answer does not
    page.wait_for_function("() => { const t = document.querySelector('#predict-metrics').innerText;"
                           " return t.includes('IoU') && !t.includes('prompts:') && !/processing|queue/.test(t); }",
)
    page.wait_for_timeout(500)
    text = metrics.inner_text()
    assert "Student → SAM" not in text and "⚠" not in text, text
    assert len(re.findall(r"\b[01]\.\d{3}\b", text)) == 2, text  # Dice and IoU of the student


def _pixels(text: str) -> int:
    return int(re.search(r"(\d+) px", text).group(1))


def _label_info(page, text: str):
    page.locator("#label-info").get_by_text(text).wait_for()
    return page.locator("#label-info").inner_text()


def _click_image(page, fx: float, fy: float):
    image = page.locator("#label-prompt img")
    box = image.bounding_box()
    image.click(position={"x": box["width"] * fx, "y": box["height"] * fy})


def _brush_remove_stroke(page):
    """Pick the brush, its red (remove) colour, and drag across the middle of the canvas."""
    editor = page.locator("#label-editor")
    editor.get_by_role("button", name="Brush", exact=True).click()
    editor.get_by_role("button", name="Color", exact=True).click()
    editor.locator("[style*='rgb(255, 45, 85)']").first.click()
    canvas = editor.locator("canvas").first.bounding_box()
    y = canvas["y"] + canvas["height"] * 0.5
    page.mouse.move(canvas["x"] + canvas["width"] * 0.15, y)
    page.mouse.down()
    for i in range(1, 21):
        page.mouse.move(canvas["x"] + canvas["width"] * (0.15 + 0.035 * i), y)
    page.mouse.up()
    page.wait_for_timeout(500)


def _image_id(info: str) -> int:
    return int(re.search(r"image #(\d+)", info).group(1))


def test_label_three_images(server, page):
    c, split_id, ds = server["client"], server["split"]["id"], server["dataset"]["id"]
    assert len(c.get(f"/splits/{split_id}").json()["parts"]["unlabelled"]) >= 4
    tab(page, "Label")
    page.locator("#label-find").click()
    info = _label_info(page, "candidate 1 of")
    assert "⚠" not in info and "started from SAM prompted by the student" in info
    saved = [_image_id(info)]
    note = page.locator("#label-sam-note")

    # 1: a box by two corners, then an object point (SAM answers from its cached encoding),
    # then a red brush stroke removes a band; save with the button
    page.locator("#label-click-mode").get_by_text("box: click two corners").click()
    _click_image(page, 0.08, 0.1)
    note.get_by_text("First corner set").wait_for()
    _click_image(page, 0.5, 0.92)
    note.get_by_text("from 0 point(s) and a box").wait_for()
    page.locator("#label-click-mode").get_by_text("object point").click()
    _click_image(page, 0.3, 0.5)
    note.get_by_text("from 1 point(s) and a box").wait_for()
    assert "encoding cached" in note.inner_text()
    sam_pixels = _pixels(note.inner_text())
    _brush_remove_stroke(page)
    page.screenshot(path=str(ARTIFACTS / "label.png"), full_page=True)
    page.locator("#label-save").click()
    info = _label_info(page, "1 saved")
    saved.append(_image_id(info))
    first = c.get(f"/datasets/{ds}/images/{saved[0]}/mask")
    assert first.headers["x-mask-kind"] == "human"
    first_mask = np.asarray(Image.open(io.BytesIO(first.content))) >= 128
    assert 0 < first_mask.sum() < sam_pixels  # the red stroke removed a band of SAM's mask
    gap = np.flatnonzero(~first_mask[first_mask.shape[0] // 2])  # the stroke runs across the middle row
    assert gap.size > 0

    # 2: keep the start mask as it is and save with the keyboard (S)
    page.locator("#label-info").click()  # focus out of any field: shortcuts ignore typing
    page.keyboard.press("s")
    info = _label_info(page, "2 saved")
    saved.append(_image_id(info))

    # 3: one object point asks SAM afresh, then S again; N skips the last candidate
    page.locator("#label-click-mode").get_by_text("object point").click()
    _click_image(page, 0.7, 0.5)
    note.get_by_text("from 1 point(s):").wait_for()
    page.locator("#label-info").click()
    page.keyboard.press("s")
    info = _label_info(page, "3 saved")
    assert page.locator("#label-queue").inner_text().count("✔") >= 3  # (Gradio also keeps a hidden copy)
    page.screenshot(path=str(ARTIFACTS / "label-after-three.png"), full_page=True)
    page.locator("#label-info").click()
    page.keyboard.press("n")
    _label_info(page, "End of the list: 3 of")

    parts = c.get(f"/splits/{split_id}").json()["parts"]
    labelled = {i["id"] for i in parts["labelled"]}
    assert set(saved[:3]) <= labelled and not set(saved[:3]) & {i["id"] for i in parts["unlabelled"]}
    for image_id in saved[:3]:
        r = c.get(f"/datasets/{ds}/images/{image_id}/mask")
        assert r.headers["x-mask-kind"] == "human"
        assert (np.asarray(Image.open(io.BytesIO(r.content))) >= 128).any()


def test_jobs_launch_progress_curves_and_table(server, page):
    tab(page, "Jobs")
    page.locator("#jobs-split input").first.wait_for()
    page.locator("#jobs-schedule").get_by_text("continuous", exact=True).click()
    for field, value in (("#jobs-epochs", "3"), ("#jobs-size", "64")):
        page.locator(f"{field} input").fill(value)
    page.locator("#jobs-launch").click()
    page.locator("#jobs-message").get_by_text("Queued job").wait_for()
    job_id = int(re.search(r"#(\d+)", page.locator("#jobs-message").inner_text()).group(1))
    detail = page.locator("#jobs-detail")
    seen, deadline = set(), time.monotonic() + 2 * PATIENCE_S
    while time.monotonic() < deadline:
        text = detail.inner_text()
        if f"Job #{job_id}" in text:
            seen.add(re.search(r"(\d+)%", text).group(1))
            if "succeeded" in text or "failed" in text:
                break
        page.wait_for_timeout(500)
    assert "succeeded" in text, text
    assert len(seen) >= 3 and "100" in seen, seen  # the bar moved, not just jumped to the end
    for plot in ("#plot-loss", "#plot-val", "#plot-pseudo"):  # a later refresh draws the final curves
        page.wait_for_function("(sel) => { const img = document.querySelector(sel);"
                               " return img && img.complete && img.naturalWidth > 0; }", arg=f"{plot} img")
    table = page.locator("#jobs-table1").inner_text()
    assert "continuous · mobilesam · per-component" in table and f"#{job_id}" in table
    job = server["client"].get(f"/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and len(job["metrics"]) >= 2 and job["pseudo_label_quality"]
    assert job["result"]["pseudo_labels_saved"] >= 1  # each unlabelled image's latest, for the Label view
    # the header counts its model without a reload (the dataset keeps its active model: the first one)
    n_models = len(server["client"].get("/models").json())
    page.locator("#kmine-status").get_by_text(re.compile(rf"\b{n_models} model\(s\)")).wait_for()

    # a second launch, cancelled from the view while it runs
    page.locator("#jobs-epochs input").fill("50")
    page.locator("#jobs-launch").click()
    page.locator("#jobs-message").get_by_text(f"#{job_id + 1}").wait_for()
    detail.get_by_text("running").wait_for()
    page.get_by_text("Cancel selected job").click()
    page.locator("#jobs-cancel-message").get_by_text(f"Asked job #{job_id + 1} to cancel").wait_for()
    detail.get_by_text("cancelled").wait_for()
    assert server["client"].get(f"/jobs/{job_id + 1}").json()["status"] == "cancelled"
    # The hidden true masks score the student's, SAM's and the pseudo-label's masks per epoch.
    scored = [q for q in job["pseudo_label_quality"] if q["n"]]
    assert scored and all(0 <= q[k] <= 1 for q in scored for k in ("student_dice", "teacher_dice", "pseudo_dice"))
    page.screenshot(path=str(ARTIFACTS / "jobs.png"), full_page=True)


@pytest.fixture
def fresh_page(page, server):
    """A new browser tab on the UI, as a user coming back later would open. The module's page is
    closed first: showing Gradio's image editor again costs headless chromium's software-rendered
    canvas 10-40 s on 2 busy cores (a tab switch back to Label took 39 s), which the clicks would
    wait behind."""
    browser = page.context.browser
    page.close()  # free its renderer: the module's last test uses this fixture
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(PATIENCE_S * 1000)
    pg.goto(server["base"] + "/ui/")
    sign_in(pg, server["tokens"]["user"])
    pg.get_by_text("semi-supervised segmentation").wait_for()
    yield pg
    context.close()


def test_label_starts_from_stored_pseudo_label_undo_and_clear(server, fresh_page):
    """After the continuous job above, an unlabelled image opens with its stored pseudo-label;
    Undo takes the last click back (SAM answers from the remaining ones), Clear drops them all."""
    c, split_id, ds = server["client"], server["split"]["id"], server["dataset"]["id"]
    unlabelled = [i["id"] for i in c.get(f"/splits/{split_id}").json()["parts"]["unlabelled"]]
    stored = [i for i in unlabelled if c.get(f"/datasets/{ds}/images/{i}/pseudo-label").status_code == 200]
    assert stored, "the continuous job stored no pseudo-label"
    page = fresh_page
    tab(page, "Label")
    page.locator("#label-start").get_by_text("stored pseudo-label").click()
    page.locator("#label-find").click()
    info = _label_info(page, "candidate 1 of")
    for _ in range(len(unlabelled)):  # skip to an image that has one
        if _image_id(info) in stored:
            break
        page.locator("#label-next").click()
        page.wait_for_timeout(1500)
        info = page.locator("#label-info").inner_text()
    assert "started from the stored pseudo-label" in info, info
    note = page.locator("#label-sam-note")
    page.locator("#label-click-mode").get_by_text("object point").click()
    _click_image(page, 0.3, 0.5)
    note.get_by_text("from 1 point(s)").wait_for()
    page.locator("#label-click-mode").get_by_text("background point").click()
    _click_image(page, 0.5, 0.1)
    note.get_by_text("from 2 point(s)").wait_for()
    page.locator("#label-undo").click()
    note.get_by_text("from 1 point(s)").wait_for()
    page.locator("#label-clear").click()
    note.get_by_text("Clicks cleared").wait_for()
    page.screenshot(path=str(ARTIFACTS / "label-pseudo.png"), full_page=True)
