"""The ``kmine`` command end to end, as a user runs it: real processes, real files."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from shared_data import COVID, KVASIR, WEIGHTS, require

pytestmark = pytest.mark.slow


def kmine(*args, ok=True):
    proc = subprocess.run([sys.executable, "-m", "kmine.cli", *map(str, args)], capture_output=True, text=True, timeout=900)
    if ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """split → train (continuous mining, tiny) on the 12 COVID-QU-Ex sample images."""
    require(COVID)
    require(WEIGHTS / "mobile_sam.pt")
    root = tmp_path_factory.mktemp("cli")
    out = kmine("split", COVID, "--out", root / "split.json", "--val", 0.17, "--test", 0.17, "--labelled", 0.5, "--seed", 3)
    assert "labelled 4, unlabelled 4" in out.stdout
    out = kmine(
        "train", COVID, "--out", root / "run", "--split", root / "split.json", "--schedule", "continuous",
        "--epochs", 1, "--size", 128, "--batch-size", 4, "--lr", 1e-3, "--device", "cpu",
    )
    assert "mining epoch 1" in out.stdout and "best (mining" in out.stdout
    return root


def test_train_defaults_to_the_balanced_recipe_and_paper_is_one_switch(trained, tmp_path):
    config = json.loads((trained / "run" / "result.json").read_text())["config"]
    recipe = ("lam", "lam_rampup", "perturb", "labelled_share")
    assert [config[k] for k in recipe] == [1.0, 1.0, "pseudo", 0.5]
    assert (config["strategy"]["label"], config["strategy"]["doubt_weight"]) == ("fuse", 0.5)
    assert (config["strategy"]["tta"], config["strategy"]["tta_views"]) == (True, 4)  # the four flips
    kmine("train", COVID, "--out", tmp_path / "paper", "--split", trained / "split.json", "--schedule", "supervised",
          "--epochs", 1, "--size", 64, "--device", "cpu", "--paper")
    paper = json.loads((tmp_path / "paper" / "result.json").read_text())["config"]
    assert [paper[k] for k in recipe] == [0.25, 0.0, "none", None]
    assert paper["strategy"] == {**config["strategy"], "label": "teacher", "tta": False, "teacher_size": None,
                                 "doubt_weight": 1.0}
    # The same-compute control with its second phase capped apart from the first, as the benchmarks run it.
    kmine("train", COVID, "--out", tmp_path / "mixed", "--split", trained / "split.json", "--schedule", "extended",
          "--epochs", 2, "--mining-epochs", 1, "--early-stop", 5, "--size", 64, "--device", "cpu",
          "--labelled-share", 0, "--tta-views", 8)
    mixed = json.loads((tmp_path / "mixed" / "result.json").read_text())["config"]
    assert (mixed["labelled_share"], mixed["strategy"]["tta_views"], mixed["mining_epochs"]) == (None, 8, 1)
    phases = [json.loads(line)["phase"] for line in (tmp_path / "mixed" / "history.jsonl").read_text().splitlines()]
    assert (phases.count("supervised"), phases.count("mining")) == (2, 1)
    assert config["mining_epochs"] is None  # by default the second phase runs to early stopping


def test_predict_writes_full_size_masks_and_overlays(trained, tmp_path):
    require(KVASIR)
    images = tmp_path / "in"
    images.mkdir()
    for name in sorted((KVASIR / "images").iterdir())[:2]:
        shutil.copy(name, images / name.name)
    (images / "broken.png").write_bytes(b"not an image")
    out = kmine("predict", trained / "run" / "best.pt", images, "--out", tmp_path / "out", "--mode", "refine", "--device", "cpu")
    assert "wrote 2 masks" in out.stdout and "1 unreadable" in out.stdout
    assert "broken.png" in out.stderr
    for name in sorted((KVASIR / "images").iterdir())[:2]:
        source = Image.open(name)
        mask = Image.open(tmp_path / "out" / f"{name.stem}.png")
        assert mask.size == source.size and mask.mode == "L"
        assert set(np.unique(np.array(mask))) <= {0, 255}
        assert Image.open(tmp_path / "out" / f"{name.stem}_overlay.png").size == source.size
        sam = Image.open(tmp_path / "out" / f"{name.stem}_sam.png")  # SAM's own mask beside refine's vote
        assert sam.size == source.size and set(np.unique(np.array(sam))) <= {0, 255}


def test_evaluate_writes_csv_and_summary(trained, tmp_path):
    out = kmine("evaluate", trained / "run" / "best.pt", COVID, "--subset", "test", "--mode", "refine", "--frame", "full",
                "--out", tmp_path, "--device", "cpu")
    assert "test (2 images, refine, full): Dice" in out.stdout
    summary = json.loads((tmp_path / "test_refine_full_summary.json").read_text())
    assert summary["n"] == 2 and 0 <= summary["dice_mean"] <= 1
    rows = (tmp_path / "test_refine_full_per_image.csv").read_text().splitlines()
    assert rows[0] == "stem,dice,iou" and len(rows) == 3


def _tiny_experiment(tmp_path, fractions: str, train: str, schedules: str = "[supervised, continuous]"):
    require(COVID)
    config = tmp_path / "exp.yaml"
    config.write_text(
        f"""
name: tiny
datasets:
  - path: {COVID}
fractions: {fractions}
schedules: {schedules}
seeds: [0]
train: {{size: 64, batch_size: 4, lr: 0.001, device: cpu, {train}}}
"""
    )
    return config


def _history(arm_dir):
    return [json.loads(line) for line in (arm_dir / "history.jsonl").read_text().splitlines()]


def test_experiment_writes_table_and_results(tmp_path):
    config = _tiny_experiment(tmp_path, "[1.0, 0.5]", "max_epochs: 1", "[supervised, extended, one-time, continuous]")
    out = kmine("experiment", config, "--out", tmp_path / "exp")
    rows = json.loads((tmp_path / "exp" / "results.json").read_text())
    assert sorted((r["fraction"], r["schedule"]) for r in rows) == [
        (0.5, "continuous"), (0.5, "extended"), (0.5, "one-time"), (0.5, "supervised"), (1.0, "supervised")
    ]
    table = (tmp_path / "exp" / "table.md").read_text()
    assert "(50% labelled)" in table and "Continuous pseudo-label generation" in table
    assert "One-time pseudo-label generation" in table and "as many epochs as mining (control)" in table
    assert table.strip() in out.stdout
    # Mining arms started from the supervised arm instead of training it again.
    mining = json.loads((tmp_path / "exp" / "covid-qu-ex-sample" / "l50" / "continuous-mobilesam-per-component-s0" / "result.json").read_text())
    assert mining["best"]["phase"] == "mining"


def test_experiment_runs_arms_side_by_side(tmp_path):
    config = _tiny_experiment(tmp_path, "[1.0, 0.5]", "max_epochs: 2, mining_epochs: 1")
    out = tmp_path / "exp"
    kmine("experiment", config, "--out", out, "--jobs", 2)
    rows = {r["key"]: r for r in json.loads((out / "results.json").read_text())}
    assert sorted(rows) == [
        "covid-qu-ex-sample/l100/supervised-s0",
        "covid-qu-ex-sample/l50/continuous-mobilesam-per-component-s0",
        "covid-qu-ex-sample/l50/supervised-s0",
    ]
    assert all(r["complete"] and 0 <= r["val_dice_mean"] <= 1 for r in rows.values())
    for key in rows:  # each arm ran in its own process, logging to its folder
        assert (out / key / "log.txt").exists() and (out / key / "row.json").exists()
    # The mining arm started from its supervised arm (2 epochs) and mined for mining_epochs (1).
    mining = _history(out / "covid-qu-ex-sample/l50/continuous-mobilesam-per-component-s0")
    assert [r["phase"] for r in mining] == ["mining"]
    assert rows["covid-qu-ex-sample/l50/continuous-mobilesam-per-component-s0"]["epochs"] == 1
    assert rows["covid-qu-ex-sample/l50/supervised-s0"]["epochs"] == 2


def test_experiment_time_limit_stops_evaluates_and_resumes(tmp_path):
    # Far more epochs than fit: the time limit, not the cap or early stopping, ends the arm.
    config = _tiny_experiment(tmp_path, "[0.5]", "max_epochs: 500, early_stop: 1000")
    out = tmp_path / "exp"
    first = kmine("experiment", config, "--out", out, "--time-limit", 20)
    [row] = json.loads((out / "results.json").read_text())
    assert row["schedule"] == "supervised" and row["complete"] is False
    assert 1 <= row["epochs"] < 500 and 0 <= row["val_dice_mean"] <= 1
    assert "continuous-mobilesam-per-component-s0 not started" in first.stderr
    assert "stopped at time limit" in first.stdout
    # A second run resumes the stopped arm from its last epoch instead of starting afresh. Its
    # limit is shorter than a loaded machine may need to start an arm: a started arm still
    # trains one epoch, so the assertion below does not depend on the machine's speed.
    kmine("experiment", config, "--out", out, "--time-limit", 5, "--jobs", 2)
    [again] = json.loads((out / "results.json").read_text())
    history = _history(out / "covid-qu-ex-sample/l50/supervised-s0")
    assert again["epochs"] > row["epochs"] and [r["epoch"] for r in history] == list(range(len(history)))


def test_experiment_with_simclr_pretraining(tmp_path):
    config = _tiny_experiment(tmp_path, "[0.5]", "max_epochs: 1", "[supervised]")
    config.write_text(config.read_text() + "pretrain: {method: simclr, epochs: 1, batch_size: 4}\n")
    out = tmp_path / "exp"
    printed = kmine("experiment", config, "--out", out).stdout
    [row] = json.loads((out / "results.json").read_text())
    assert row["key"] == "covid-qu-ex-sample/l50/simclr-supervised-s0" and row["pretrain"] == "simclr"
    assert "| SimCLR + supervised training on labelled data |" in printed
    encoder = out / "covid-qu-ex-sample" / "simclr-s0" / "encoder.pt"
    run = json.loads((out / row["key"] / "result.json").read_text())
    assert encoder.exists() and run["config"]["encoder_init"] == str(encoder)
    # The pretrained encoder comes with its own record; a typo in the settings is named.
    assert json.loads((encoder.parent / "history.json").read_text())["config"]["size"] == 64
    config.write_text(config.read_text().replace("epochs: 1, batch_size: 4", "epocks: 1"))
    failed = kmine("experiment", config, "--out", tmp_path / "other", ok=False)
    assert failed.returncode == 2 and "pretrain" in failed.stderr and "epocks" in failed.stderr


def test_bad_input_gives_a_clear_error(tmp_path):
    proc = kmine("train", tmp_path / "nowhere", ok=False)
    assert proc.returncode == 2 and "nowhere" in proc.stderr and "Traceback" not in proc.stderr
    proc = kmine("train", COVID, "--schedule", "sometimes", ok=False)
    assert proc.returncode == 2 and "sometimes" in proc.stderr
    proc = kmine("train", COVID, "--tta-views", 3, "--out", tmp_path / "r", ok=False)
    assert proc.returncode == 2 and "tta_views must be one of 2, 4, 8, got 3" in proc.stderr
    proc = kmine("train", COVID, "--size", 100, "--out", tmp_path / "r", ok=False)
    assert proc.returncode == 2 and "divisible by 32" in proc.stderr
    proc = kmine("train", COVID, "--labelled-share", 1.5, "--out", tmp_path / "r", ok=False)
    assert proc.returncode == 2 and "labelled_share must be in (0, 1)" in proc.stderr
