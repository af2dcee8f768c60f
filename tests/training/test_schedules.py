"""Schedules on real images with the real MobileSAM teacher: what each one asks of SAM."""

import json

import pytest
import torch

from kmine.student import read_student_checkpoint
from kmine.training import Callback, Trainer, TrainingCancelled, train


def _mining(history):
    return [r for r in history if r["phase"] == "mining"]


def test_supervised_never_consults_the_teacher(small_config, tmp_path):
    result = train(small_config(schedule="supervised"), tmp_path)
    assert [r["phase"] for r in result.history] == ["supervised", "supervised"]
    assert all(r["encode_calls"] == 0 and r["decode_calls"] == 0 for r in result.history)
    assert (tmp_path / "best.pt").exists() and (tmp_path / "best_supervised.pt").exists()
    saved = read_student_checkpoint(tmp_path / "best.pt")["extra"]
    assert saved["config"]["schedule"] == "supervised"
    assert 0 <= saved["metrics"]["val_dice"] <= 1
    assert len((tmp_path / "history.jsonl").read_text().splitlines()) == 2


def test_continuous_regenerates_each_revisit_and_encodes_each_image_once(small_config, tmp_path):
    trainer = Trainer(small_config(schedule="continuous", max_epochs=3), tmp_path, score_true_box=True)
    result = trainer.fit()
    mining = _mining(result.history)
    assert len(mining) == 3
    # Every mining epoch asks SAM afresh for every unlabelled image it can prompt …
    for r in mining:
        assert r["pseudo_made"] + r["pseudo_skipped"] == 4
        assert r["pseudo_made"] > 0 and r["decode_calls"] > 0
    # … but each image is encoded once in the whole run, however it was flipped.
    assert mining[0]["encode_calls"] == trainer.teacher.encode_calls
    assert all(r["encode_calls"] == 0 for r in mining[1:])
    assert max(r["pseudo_made"] for r in mining) <= trainer.teacher.encode_calls <= 4
    # Quality is scored against the withheld true masks.
    assert all(0 <= r["quality_teacher_dice"] <= 1 for r in mining if r["pseudo_made"])
    # Where the time goes: the student's 8 views, the teacher's crops, and the true-box
    # scoring apart from the method's own decodes.
    made = [r for r in mining if r["pseudo_made"]]
    assert all(r["t_tta"] > 0 and r["t_crops"] > 0 and r["t_decode"] > 0 and r["t_score"] > 0 for r in made)
    assert all(0 <= r["quality_truebox_dice"] <= 1 for r in made)


def test_one_time_makes_pseudo_labels_once(small_config, tmp_path):
    trainer = Trainer(small_config(schedule="one-time"), tmp_path)
    result = trainer.fit()
    lines = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert lines == json.loads(json.dumps(result.history))
    made = [r for r in lines if r["phase"] == "pseudo-labels"]
    assert len(made) == 1 and made[0]["pseudo_made"] > 0
    assert made[0]["encode_calls"] == made[0]["pseudo_made"]
    mining = _mining(result.history)
    assert len(mining) == 2
    assert all(r["encode_calls"] == 0 and r["decode_calls"] == 0 for r in mining)
    assert len(trainer.pseudo_labels) == made[0]["pseudo_made"]


@pytest.mark.parametrize("schedule", ["one-time", "continuous"])
def test_a_batch_of_unlabelled_images_alone_trains(small_config, tmp_path, schedule):
    # Batch size 1: every unlabelled image is a batch with no labelled one (at 50 % labelled
    # a shuffle of 8 draws such a batch about once in 256).
    result = train(small_config(schedule=schedule, batch_size=1, max_epochs=1), tmp_path)
    [mining] = _mining(result.history)
    assert mining["pseudo_loss"] > 0 and mining["sup_loss"] > 0


class _StopAfter(Callback):
    def __init__(self, phase, epochs):
        self.phase, self.epochs, self.seen = phase, epochs, 0

    def on_epoch_end(self, record):
        self.seen += record["phase"] == self.phase

    def should_stop(self):
        return self.seen >= self.epochs


def test_killed_run_resumes_from_last_epoch(small_config, tmp_path):
    config = small_config(schedule="one-time")
    straight = train(config, tmp_path / "straight")

    with pytest.raises(TrainingCancelled):
        train(config, tmp_path / "resumed", callbacks=[_StopAfter("mining", 1)])
    resumed = train(config, tmp_path / "resumed")

    steps = [(r["phase"], r.get("epoch")) for r in straight.history]
    assert steps[2] == ("pseudo-labels", None) and len(steps) == 5
    assert [(r["phase"], r.get("epoch")) for r in resumed.history] == steps
    a = read_student_checkpoint(straight.best_checkpoint)["state_dict"]
    b = read_student_checkpoint(resumed.best_checkpoint)["state_dict"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=f"{key} differs after resuming")


def test_other_settings_in_the_same_folder_are_refused(small_config, tmp_path):
    train(small_config(schedule="supervised", max_epochs=1), tmp_path)
    with pytest.raises(ValueError, match="different settings"):
        train(small_config(schedule="supervised", max_epochs=1, lr=0.5), tmp_path)
