"""The web UI in a real browser (Debian's chromium driven by Playwright) against a real
``kmine serve`` with a small trained model: datasets, predict with overlay and Dice, correct and
save a mask, launch a short job and watch its progress move. Screenshots of every view are kept
in tests/webui/artifacts/ (look at them)."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from service_fixtures import covid_zip  # noqa: E402
from shared_data import COVID, WEIGHTS, require, stop_process_group  # noqa: E402

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_job(c: httpx.Client, job_id: int, timeout: float = 600) -> dict:
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
    proc = subprocess.Popen([sys.executable, "-m", "kmine.cli", "serve", "--port", str(port), "--no-demo"],
                            cwd=tmp, env=env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
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
                       json={"val_fraction": 0.2, "test_fraction": 0.2, "labelled_fraction": 0.75}).json()
        job = c.post("/jobs", json={"kind": "train", "split_id": split["id"], "config": {
            "schedule": "supervised", "max_epochs": 8, "size": 128, "batch_size": 4, "lr": 1e-3,
            "prompts": {"kinds": "points+box", "per_component": True}}}).json()
        job = wait_job(c, job["id"])
        assert job["status"] == "succeeded", job
        yield {"base": base, "client": c, "dataset": ds, "split": split, "tmp": tmp, "log": log_path}
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
        pg.set_default_timeout(60_000)
        pg.goto(server["base"] + "/")  # redirects to /ui/
        pg.get_by_text("semi-supervised segmentation").wait_for()
        yield pg
        browser.close()


def tab(page, name: str):
    page.get_by_role("tab", name=name).click()


def test_root_redirects_to_ui(server):
    r = httpx.get(server["base"] + "/", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"].startswith("/ui")


def test_datasets_view(server, page):
    tab(page, "Datasets")
    table = page.locator("#datasets-table")
    table.get_by_text("covid").first.wait_for()
    buf = io.BytesIO(covid_zip("second"))
    zip_path = server["tmp"] / "second.zip"
    zip_path.write_bytes(buf.getvalue())
    page.locator("#upload-name textarea, #upload-name input").first.fill("second covid")
    page.locator("#upload-zip input[type=file]").set_input_files(str(zip_path))
    page.wait_for_timeout(1000)
    page.locator("#upload-run").click()
    page.locator("#datasets-message").get_by_text("Imported").wait_for()
    table.get_by_text("second covid").first.wait_for()
    page.locator("#split-run").click()  # the new dataset has no split yet: make one
    page.locator("#datasets-message").get_by_text("Made split").wait_for()
    page.screenshot(path=str(ARTIFACTS / "datasets.png"), full_page=True)


def test_predict_overlay_and_dice(server, page):
    tab(page, "Predict")
    image = sorted((COVID / "images").iterdir())[0]
    mask = COVID / "masks" / image.name
    page.locator("#predict-image input[type=file]").set_input_files(str(image))
    page.locator("#predict-truth input[type=file]").set_input_files(str(mask))
    page.wait_for_timeout(1500)
    page.locator("#predict-run").click()
    metrics = page.locator("#predict-metrics")
    metrics.get_by_text("Dice").wait_for(timeout=180_000)
    text = metrics.inner_text()
    numbers = [float(x) for x in re.findall(r"\b[01]\.\d{3}\b", text)]
    assert len(numbers) >= 4, text  # Dice and IoU for the student and for SAM
    assert all(0 <= n <= 1 for n in numbers)
    page.locator("#predict-overlay img").wait_for()
    assert "⚠" not in text
    page.screenshot(path=str(ARTIFACTS / "predict.png"), full_page=True)
