"""SimCLR pretraining of the student's encoder on real images, and runs that start from it."""

import math

import pytest
import torch

from kmine.student import build_student, load_encoder, read_student_checkpoint
from kmine.training import Trainer
from kmine.training.simclr import SimCLRConfig, nt_xent, pretrain
from shared_data import COVID


def test_nt_xent_finds_identical_twins_and_is_at_chance_on_unrelated_views():
    torch.manual_seed(0)
    z = torch.randn(16, 32)
    loss, accuracy = nt_xent(z, z.clone(), temperature=0.1)
    assert accuracy == 1.0 and float(loss) < 0.01
    # Unrelated views: every other view is as likely, so the loss is about log(2B - 1).
    losses = [float(nt_xent(torch.randn(16, 32), torch.randn(16, 32), temperature=10.0)[0]) for _ in range(20)]
    assert abs(sum(losses) / len(losses) - math.log(31)) < 0.05


def test_bad_settings_name_the_problem():
    with pytest.raises(ValueError, match="batch_size must be at least 2"):
        SimCLRConfig(data="x", batch_size=1)
    with pytest.raises(ValueError, match="temperature"):
        SimCLRConfig(data="x", temperature=0)


@pytest.fixture(scope="module")
def pretrained(covid_split, tmp_path_factory):
    out = tmp_path_factory.mktemp("simclr")
    config = SimCLRConfig(data=str(COVID), split=str(covid_split), size=64, batch_size=4, epochs=2, device="cpu")
    return pretrain(config, out)


def test_pretraining_changes_the_encoder_and_records_its_history(pretrained):
    saved = read_student_checkpoint(pretrained)
    history = saved["extra"]["history"]
    assert saved["extra"]["method"] == "simclr" and saved["extra"]["n_images"] == 8  # 4 labelled + 4 unlabelled
    assert len(history) == 2 and all(r["loss"] > 0 and 0 <= r["twin_accuracy"] <= 1 for r in history)
    imagenet = build_student("timm-tf_efficientnet_lite0", pretrained=True).state_dict()
    changed = [k for k, v in saved["state_dict"].items() if k.startswith("model.encoder.") and v.dtype.is_floating_point
               and not torch.equal(v, imagenet[k])]
    assert changed, "SimCLR left every encoder weight as ImageNet's"


def test_a_run_starts_from_the_pretrained_encoder(pretrained, small_config, tmp_path):
    trainer = Trainer(small_config(schedule="supervised", encoder_init=str(pretrained)), tmp_path)
    saved = read_student_checkpoint(pretrained)["state_dict"]
    for key, value in trainer.student.state_dict().items():
        if key.startswith("model.encoder."):
            torch.testing.assert_close(value, saved[key], msg=f"{key} not loaded")


def test_an_encoder_of_another_kind_is_refused(pretrained):
    with pytest.raises(ValueError, match="timm-tf_efficientnet_lite0 encoder but this student uses resnet34"):
        load_encoder(build_student("resnet34", pretrained=False), pretrained)
