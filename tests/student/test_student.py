"""The U-Net++ student: shapes, input checks, ImageNet weights, checkpoints."""

from __future__ import annotations

import warnings

import pytest
import timm
import torch

from kmine.student import (
    ENCODERS,
    PretrainedWeightsUnavailableWarning,
    build_student,
    efficientnet_pytorch_to_timm,
    load_student,
    save_student,
)
from kmine.student.encoders import EFFICIENTNET_DROPPED_KEYS

LITE0 = "timm-tf_efficientnet_lite0"


def _build(encoder: str, request) -> torch.nn.Module:
    """Pretrained where a checkpoint exists (skipping if it is absent), else random."""
    if ENCODERS[encoder].weights is None:
        return build_student(encoder, pretrained=False)
    request.getfixturevalue("lite0_checkpoint")
    return build_student(encoder, pretrained=True)


@pytest.fixture(scope="module", params=sorted(ENCODERS))
def student(request):
    return _build(request.param, request).eval()


def test_output_shape_from_uint8_batch(student):
    images = torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8)
    with torch.no_grad():
        logits = student(images)
        assert logits.shape == (2, 1, 224, 224) and logits.dtype == torch.float32
        # uint8 and float inputs on the same [0, 255] scale give the same logits
        torch.testing.assert_close(student(images[:1].float()), logits[:1], rtol=1e-4, atol=1e-4)


def test_input_checks_are_actionable(student):
    with pytest.raises(ValueError, match=r"input size 100 must be divisible by 32 for U-Net\+\+ "
                                         r"\(try 224 or 256\)"):
        student(torch.zeros(1, 3, 100, 100, dtype=torch.uint8))
    with pytest.raises(ValueError, match="3 RGB channels.*permute"):
        student(torch.zeros(1, 64, 64, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(B, 3, S, S\)"):
        student(torch.zeros(3, 64, 64, dtype=torch.uint8))


def test_save_load_round_trip(student, tmp_path):
    path = tmp_path / "student.pt"
    save_student(student, path, extra={"epoch": 3, "dice": 0.5, "history": [1.0, 2.0]})
    loaded = load_student(path).eval()
    assert loaded.config == student.config and loaded.extra["epoch"] == 3
    images = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(loaded(images), student(images))
    with pytest.raises(TypeError, match="extra\\['bad'\\]"):
        save_student(student, path, extra={"bad": object()})


def test_lite0_checkpoint_maps_one_to_one(lite0_checkpoint):
    checkpoint = torch.load(lite0_checkpoint, weights_only=True)
    encoder = build_student(LITE0, pretrained=False).model.encoder
    target = encoder.state_dict()
    mapped = efficientnet_pytorch_to_timm(checkpoint, [len(s) for s in encoder.blocks])
    # every checkpoint tensor but the classifier is used exactly once, with its shape
    assert len(mapped) == len(checkpoint) - len(EFFICIENTNET_DROPPED_KEYS)
    assert set(EFFICIENTNET_DROPPED_KEYS) <= set(checkpoint)
    assert set(mapped) == set(target)
    assert all(mapped[k].shape == target[k].shape for k in mapped)
    kept = [v for k, v in checkpoint.items() if k not in EFFICIENTNET_DROPPED_KEYS]
    assert sorted(map(id, kept)) == sorted(map(id, mapped.values()))


def test_lite0_pretrained_matches_timm_tf_model(lite0_checkpoint):
    student = build_student(LITE0, pretrained=True).eval()
    random = build_student(LITE0, pretrained=False)
    checkpoint = torch.load(lite0_checkpoint, weights_only=True)
    for key, value in student.model.encoder.state_dict().items():  # strictly loaded
        assert not key.endswith("weight") or not torch.equal(value, random.model.encoder.state_dict()[key])
    assert torch.equal(student.model.encoder.conv_stem.weight, checkpoint["_conv_stem.weight"])
    # timm's own TF-padding Lite0 with the mapped weights and classifier computes the same
    reference = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    weights = efficientnet_pytorch_to_timm(checkpoint, [1, 2, 2, 3, 3, 4, 1])
    weights.update({"classifier.weight": checkpoint["_fc.weight"],
                    "classifier.bias": checkpoint["_fc.bias"]})
    reference.load_state_dict(weights, strict=True)
    images = torch.randint(0, 256, (1, 3, 96, 96), dtype=torch.uint8)  # small: same maths
    x = student.normalise(images)
    encoder = student.model.encoder
    with torch.no_grad():
        deepest = encoder(x)[-1]
        expected = reference.blocks(reference.bn1(reference.conv_stem(x)))
        torch.testing.assert_close(deepest, expected, rtol=1e-5, atol=1e-5)
        logits = reference.forward_head(encoder.bn2(encoder.conv_head(deepest)))
        torch.testing.assert_close(logits, reference(x), rtol=1e-5, atol=1e-5)


def test_resnet34_pretrained_warns_and_starts_random():
    with pytest.warns(PretrainedWeightsUnavailableWarning, match="RANDOM weights"):
        student = build_student("resnet34", pretrained=True)
    assert student.config["pretrained"] is False  # records what really happened
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_student("resnet34", pretrained=False)


def test_unknown_encoder_lists_choices():
    with pytest.raises(ValueError, match="resnet34"):
        build_student("vgg11")
