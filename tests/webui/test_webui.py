"""The web UI in a real browser (Debian's chromium driven by Playwright) against a real
``kmine serve`` with a small trained model: datasets, predict with overlay and Dice, label three
images (SAM re-prompted with a box and points, a brush correction, keyboard shortcuts), launch a
short job and watch its progress and curves. Screenshots of every view are kept in
tests/webui/artifacts/ (look at them)."""

from __future__ import annotations

import base64
import io
import re
import time
from pathlib import Path

import canvas_actions as canvas
import httpx
import numpy as np
import pytest
from PIL import Image

from live_ui import ARGS, CHROMIUM, PATIENCE_S, live_server, sign_in
from service_fixtures import covid_zip
from shared_data import COVID, WEIGHTS, require

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real ``kmine serve`` (UI mounted at /ui) with the covid sample, a split and a trained model."""
    pytest.importorskip("gradio")
    require(WEIGHTS)
    require(COVID)
    with live_server(tmp_path_factory.mktemp("webui")) as s:
        yield s


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

    # a new image forgets the picked one's ground truth, overlay and metrics; no Dice without one
    other = sorted((COVID / "images").iterdir())[-1]
    page.locator("#predict-image input[type=file]").set_input_files(str(other))
    metrics.get_by_text("New image").wait_for()
    assert page.locator("#predict-truth img").count() == 0 and page.locator("#show-truth input:checked").count() == 0
    assert page.locator("#predict-overlay img").count() == 0
    page.locator("#predict-run").click()
    metrics.get_by_text("add a ground-truth mask").wait_for()
    assert not re.findall(r"\bDice\s*\|", metrics.inner_text())
    page.screenshot(path=str(ARTIFACTS / "predict-forgot.png"), full_page=True)


def _label_info(page, text: str):
    page.locator("#label-info").get_by_text(text).wait_for()
    return page.locator("#label-info").inner_text()


def _image_id(info: str) -> int:
    return int(re.search(r"image #(\d+)", info).group(1))


def _saved_mask(c, ds: int, image_id: int, which: str = "mask") -> np.ndarray:
    r = c.get(f"/datasets/{ds}/images/{image_id}/{which}")
    assert r.status_code == 200, r.text
    return np.asarray(Image.open(io.BytesIO(r.content)).convert("L")) >= 128


def _shot(page, name: str):
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_label_canvas_prompts_undo_brush_save_and_undo_save(server, page):
    """On the canvas: two dragged boxes, two object and two background points (each answer on
    screen before the next click; corrections start from the previous answer), Ctrl+Z, an
    erasing brush stroke; the saved label is the mask on screen; Undo save brings the imported
    ground truth back (in the API too); an empty mask is refused by the S key."""
    c, split_id, ds = server["client"], server["split"]["id"], server["dataset"]["id"]
    tab(page, "Label")
    page.locator("#label-find").click()
    image_id = canvas.wait_opened(page, 0)
    info = _label_info(page, "candidate 1 of")
    assert "⚠" not in info and "started from SAM prompted by the student" in info and _image_id(info) == image_id
    note = page.locator("#label-sam-note")

    canvas.key(page, "b")
    canvas.prompt(page, lambda: canvas.drag(page, (0.12, 0.12), (0.48, 0.9)))  # the lung on the image's left
    note.get_by_text("from 1 box(es), 0 object and 0 background point(s)").wait_for()
    assert "encoding cached" in note.inner_text()
    shown = [canvas.mask_pixels(page)]
    canvas.prompt(page, lambda: canvas.drag(page, (0.9, 0.9), (0.55, 0.12)))  # a second object, dragged up-left
    note.get_by_text("from 2 box(es), 0 object").wait_for()
    shown.append(canvas.mask_pixels(page))
    assert shown[1] > shown[0]  # both objects' masks
    _shot(page, "label-box")
    canvas.key(page, "p")
    for fx, fy in ((0.3, 0.45), (0.32, 0.7)):
        canvas.prompt(page, lambda fx=fx, fy=fy: canvas.click(page, fx, fy))
        shown.append(canvas.mask_pixels(page))
    canvas.prompt(page, lambda: canvas.click(page, 0.5, 0.05, shift=True))  # Shift+click: a background point
    shown.append(canvas.mask_pixels(page))
    canvas.key(page, "o")
    canvas.prompt(page, lambda: canvas.click(page, 0.03, 0.5))
    note.get_by_text("from 2 box(es), 2 object and 2 background point(s)").wait_for()
    assert "from the previous answer" in note.inner_text()  # SAM's logits of the last answer were the mask prompt
    assert canvas.history(page) == 6 and all(n > 0 for n in shown)
    _shot(page, "label-points")

    canvas.key(page, "Control+z")  # the last background point goes; its mask is the one before, at once
    page.wait_for_function("() => document.querySelector('#kmine-canvas').dataset.history === '5'")
    assert canvas.mask_pixels(page) == shown[-1] and canvas.data(page, "pending") == "0"
    _shot(page, "label-undo")

    canvas.key(page, "e")  # the eraser across the middle of the image
    canvas.drag(page, (0.05, 0.5), (0.95, 0.5), steps=20)
    page.wait_for_function("() => document.querySelector('#kmine-canvas').dataset.history === '6'")
    on_screen = canvas.mask_pixels(page)
    assert 0 < on_screen < shown[-1]
    _shot(page, "label-brush")

    shown = canvas.opened(page)
    page.locator("#label-save").click()
    next_id = canvas.wait_opened(page, shown)
    info = _label_info(page, "1 saved")
    assert "replacing the imported ground truth" in info
    saved = _saved_mask(c, ds, image_id)
    assert abs(int(saved.sum()) - on_screen) <= on_screen // 100  # what the canvas showed (edge pixels aside)
    assert not saved[saved.shape[0] // 2].any()  # the eraser's band
    version = c.get(f"/datasets/{ds}/images/{image_id}/masks").json()["items"][0]
    assert (version["kind"], version["origin"]) == ("human", "brush")
    assert image_id in {i["id"] for i in c.get(f"/splits/{split_id}").json()["parts"]["labelled"]}
    assert next_id != image_id
    _shot(page, "label-saved")

    shown = canvas.opened(page)
    page.locator("#label-undo-save").click()
    assert canvas.wait_opened(page, shown) == image_id
    _label_info(page, "Undid the save")
    truth = _saved_mask(c, ds, image_id, "ground-truth")
    assert (_saved_mask(c, ds, image_id) == truth).all()  # the earlier label is the label again, in the API
    versions = c.get(f"/datasets/{ds}/images/{image_id}/masks").json()
    assert versions["items"][0]["reverted_at"] and versions["label_id"] == versions["items"][1]["id"]
    assert image_id in {i["id"] for i in c.get(f"/splits/{split_id}").json()["parts"]["unlabelled"]}
    page.wait_for_function("(n) => window.kmineLabel.maskPixels() === n", arg=int(truth.sum()))  # shown to edit
    _shot(page, "label-undo-save")

    page.locator("#label-start").get_by_text("stored pseudo-label").click()  # none stored yet: an empty mask
    shown = canvas.opened(page)
    page.locator("#label-next").click()
    assert canvas.wait_opened(page, shown) == next_id
    assert canvas.mask_pixels(page) == 0
    before = c.get(f"/datasets/{ds}/images/{next_id}/masks").json()["items"]
    canvas.key(page, "s")
    page.locator("#label-save-note").get_by_text("The mask is empty: nothing was saved").wait_for()
    assert c.get(f"/datasets/{ds}/images/{next_id}/masks").json()["items"] == before
    _shot(page, "label-empty-refused")
    page.locator("#label-start").get_by_text("SAM mask (student → SAM)").click()


def test_jobs_launch_progress_curves_and_table(server, page):
    tab(page, "Jobs")
    page.locator("#jobs-split input").first.wait_for()
    page.locator("#jobs-schedule").get_by_text("continuous", exact=True).click()
    for field, value in (("#jobs-epochs", "3"), ("#jobs-mining-epochs", "2"), ("#jobs-size", "64")):
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
    # the second phase ran to its own cap, apart from the first's
    assert job["config"]["mining_epochs"] == 2 and [m["phase"] for m in job["metrics"]].count("mining") == 2
    assert job["result"]["pseudo_labels_saved"] >= 1  # each unlabelled image's latest, for the Label view
    # the header counts its model without a reload (the dataset keeps its active model: the first one)
    n_models = len(server["client"].get("/models").json())
    page.locator("#kmine-status").get_by_text(re.compile(rf"\b{n_models} model\(s\)")).wait_for()

    # a second launch, with the paper's recipe, cancelled from the view while it runs
    page.locator("#jobs-epochs input").fill("50")
    page.locator("#jobs-paper input").check()
    page.locator("#jobs-launch").click()
    page.locator("#jobs-message").get_by_text(f"#{job_id + 1}").wait_for()
    paper = server["client"].get(f"/jobs/{job_id + 1}").json()["config"]
    assert (paper["lam"], paper["perturb"], paper["strategy"]["label"]) == (0.25, "none", "teacher")
    assert "paper's recipe" in page.locator("#jobs-message").inner_text() and "lam" not in job["config"]
    detail.get_by_text("running").wait_for()
    page.get_by_text("Cancel selected job").click()
    page.locator("#jobs-cancel-message").get_by_text(f"Asked job #{job_id + 1} to cancel").wait_for()
    detail.get_by_text("cancelled").wait_for()
    assert server["client"].get(f"/jobs/{job_id + 1}").json()["status"] == "cancelled"
    # The hidden true masks score the student's, SAM's and the pseudo-label's masks per epoch.
    scored = [q for q in job["pseudo_label_quality"] if q["n"]]
    assert scored and all(0 <= q[k] <= 1 for q in scored for k in ("student_dice", "teacher_dice", "pseudo_dice"))
    page.screenshot(path=str(ARTIFACTS / "jobs.png"), full_page=True)


def test_label_starts_from_stored_pseudo_label_and_undo_restores_it(server, page):
    """After the continuous job above, on a second visit to Label (the old editor made it hang),
    an unlabelled image opens with its stored pseudo-label; an object point asks SAM, Ctrl+Z
    brings the pseudo-label back without asking again."""
    c, split_id, ds = server["client"], server["split"]["id"], server["dataset"]["id"]
    unlabelled = [i["id"] for i in c.get(f"/splits/{split_id}").json()["parts"]["unlabelled"]]
    stored = [i for i in unlabelled if c.get(f"/datasets/{ds}/images/{i}/pseudo-label").status_code == 200]
    assert stored, "the continuous job stored no pseudo-label"
    tab(page, "Label")
    page.locator("#label-start").get_by_text("stored pseudo-label").click()
    opened = canvas.opened(page)
    page.locator("#label-find").click()
    shown = canvas.wait_opened(page, opened)
    for _ in range(len(unlabelled)):  # skip (N) to an image that has one
        if shown in stored:
            break
        opened = canvas.opened(page)
        canvas.key(page, "n")
        shown = canvas.wait_opened(page, opened)
    info = _label_info(page, f"image #{shown}")
    assert "started from the stored pseudo-label" in info, info
    pseudo = _saved_mask(c, ds, shown, "pseudo-label")
    page.wait_for_function("(n) => window.kmineLabel.maskPixels() === n", arg=int(pseudo.sum()))
    span = canvas.at(page, 0.6, 0.5)[0] - canvas.at(page, 0.3, 0.5)[0]
    canvas.key(page, "=")  # (the + key unshifted) zoomed in about the centre (1.25× a step); the click lands on the same image point
    canvas.key(page, "=")
    page.wait_for_function("(w) => { const a = window.kmineLabel.toPage(0, 0), s = window.kmineLabel.size(),"
                           " b = window.kmineLabel.toPage(0.3 * s.w, 0); return (b.x - a.x) > 1.5 * w; }", arg=span)
    canvas.key(page, "p")
    answered = canvas.prompt(page, lambda: canvas.click(page, 0.45, 0.5))
    page.locator("#label-sam-note").get_by_text("from 0 box(es), 1 object").wait_for()
    _shot(page, "label-pseudo-point")
    canvas.key(page, "0")
    canvas.key(page, "Control+z")
    page.wait_for_function("(n) => window.kmineLabel.maskPixels() === n", arg=int(pseudo.sum()))
    assert canvas.answers(page) == answered and canvas.data(page, "pending") == "0"  # nothing asked again
    _shot(page, "label-pseudo")
