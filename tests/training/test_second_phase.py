"""The second phase's options on real images: the same-compute control's steps, an optimizer
that continues, λ's ramp and strong perturbations (issue 17)."""

import pytest
import torch

from kmine.student import read_student_checkpoint
from kmine.training import Callback, Trainer, train
from kmine.training.perturb import cutmix, photometric, step_generator


def _mining(history):
    return [r for r in history if r["phase"] == "mining"]


def test_the_control_takes_as_many_steps_as_a_mining_epoch(small_config, tmp_path):
    steps = []

    class Steps(Callback):
        def on_batch(self, phase, epoch, step, total):
            steps.append((phase, total))

    trainer = Trainer(small_config(schedule="extended", max_epochs=1, batch_size=1), tmp_path, [Steps()])
    trainer.fit()
    # 4 labelled and 4 unlabelled images, batch 1: a supervised epoch is 4 steps, the control's 8.
    assert {total for phase, total in steps if phase == "supervised"} == {4}
    assert {total for phase, total in steps if phase == "mining"} == {8}
    assert all(r["encode_calls"] == 0 for r in trainer.history)


def test_a_continued_second_phase_keeps_the_supervised_optimizer(small_config, tmp_path):
    result = train(small_config(schedule="extended", second_phase="continue", max_epochs=1), tmp_path)
    saved = read_student_checkpoint(tmp_path / "best_supervised.pt")["extra"]["optimizer_state"]
    assert saved["optimizer"]["state"], "the supervised phase's Adam moments are kept"
    assert "optimizer_state" not in read_student_checkpoint(tmp_path / "best.pt")["extra"]
    trainer = Trainer(small_config(schedule="extended", second_phase="continue", max_epochs=1), tmp_path / "again",
                      init_checkpoint=tmp_path / "best_supervised.pt")
    trainer._start_mining_from(tmp_path / "best_supervised.pt")
    steps = {p["step"].item() for p in trainer.optimizer.state_dict()["state"].values()}
    assert steps == {float(saved["optimizer"]["state"][0]["step"])} and steps != {0.0}
    fresh = Trainer(small_config(schedule="extended", max_epochs=1), tmp_path / "fresh")
    fresh._start_mining_from(tmp_path / "best_supervised.pt")
    assert not fresh.optimizer.state_dict()["state"]
    assert len(_mining(result.history)) == 1


def test_lambda_ramps_up_over_the_second_phase(small_config, tmp_path):
    trainer = Trainer(small_config(schedule="continuous", lam=0.5, lam_rampup=2), tmp_path)
    assert trainer._lam("supervised", 0, 0, 4) == 0.5
    assert trainer._lam("mining", 0, 1, 4) == pytest.approx(0.5 * 0.5 / 2)
    assert trainer._lam("mining", 1, 3, 4) == pytest.approx(0.5)
    assert trainer._lam("mining", 5, 0, 4) == pytest.approx(0.5)


@pytest.mark.parametrize("perturb", ["pseudo", "strong"])
@pytest.mark.parametrize("schedule", ["continuous", "one-time", "extended"])
def test_strong_perturbation_trains_every_second_phase(small_config, tmp_path, schedule, perturb):
    config = small_config(schedule=schedule, perturb=perturb, batch_size=4, max_epochs=1,
                          strategy={"teacher_size": 256, "tta": schedule != "continuous"})
    [mining] = _mining(train(config, tmp_path).history)
    assert mining["sup_loss"] > 0
    assert (mining["pseudo_loss"] > 0) == (schedule != "extended")


def test_perturbing_pseudo_labelled_images_leaves_the_control_as_it_was(small_config, tmp_path):
    # perturb "pseudo" keeps labelled images on their weak view: a control (labelled images only)
    # trains exactly as with no perturbation, so the plain control is its control.
    runs = [train(small_config(schedule="extended", perturb=p, max_epochs=1), tmp_path / p).history
            for p in ("none", "pseudo", "strong")]
    none, pseudo, strong = (_mining(h)[0]["train_loss"] for h in runs)
    assert pseudo == pytest.approx(none, rel=1e-5)
    assert strong != pytest.approx(none, rel=1e-3)


def test_a_labelled_share_puts_labelled_images_in_every_second_phase_batch(small_config, tmp_path):
    trainer = Trainer(small_config(schedule="one-time", labelled_share=0.5, batch_size=4, max_epochs=1,
                                   strategy={"teacher_size": 256, "tta": False}), tmp_path)
    [mining] = _mining(trainer.fit().history)
    assert mining["sup_loss"] > 0 and mining["pseudo_loss"] > 0
    shares = [int(batch["has_mask"].sum()) for batch in trainer._train_loader("mining", 0)]
    # 4 labelled and 4 unlabelled images, batch 4: two steps of 2 labelled + 2 pseudo-labelled.
    assert shares == [2, 2]
    mixed = Trainer(small_config(schedule="one-time", batch_size=4), tmp_path / "mixed")
    assert len(mixed._train_loader("mining", 0)) == 2, "an epoch costs the same with or without a share"


def test_strong_perturbation_changes_pixels_but_keeps_the_range():
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    out = photometric(images, step_generator(0, 0, 0))
    assert out.shape == images.shape and out.dtype == torch.float32
    assert 0 <= out.min() and out.max() <= 255
    assert (out - images.float()).abs().mean() > 1
    assert torch.equal(out, photometric(images, step_generator(0, 0, 0))), "repeatable per step"


def test_cutmix_moves_a_box_of_another_image_with_its_target():
    images = torch.stack([torch.full((3, 16, 16), float(i)) for i in range(4)])
    targets = torch.stack([torch.full((1, 16, 16), float(i % 2)) for i in range(4)])
    weights = torch.ones_like(targets)
    gen = torch.Generator().manual_seed(3)
    mixed, mixed_targets, _ = cutmix(images, targets, weights, gen)
    changed = [i for i in range(4) if not torch.equal(mixed[i], images[i])]
    assert changed, "some image got a box of another"
    for i in changed:
        box = mixed[i, 0] != i
        source = int(mixed[i, 0][box][0])
        assert source != i and (mixed[i, 0][box] == source).all()
        assert (mixed_targets[i, 0][box] == source % 2).all() and (mixed_targets[i, 0][~box] == i % 2).all()
    assert torch.equal(images[0], torch.full((3, 16, 16), 0.0)), "inputs untouched"
    one = cutmix(images[:1], targets[:1], weights[:1], gen)
    assert one[0] is images[:1] or torch.equal(one[0], images[:1])
