"""Prediction on whole images of any size, student alone and student → real MobileSAM."""

import numpy as np
import pytest
import torch

from kmine.metrics import dice_iou
from kmine.predict import Predictor
from shared_data import WEIGHTS, require


class BrightnessStudent(torch.nn.Module):
    """A stand-in student with known output: logits high where the image is bright.

    It lets the test know exactly where the student's mask is, so what is checked is the
    predictor's own work: framing, mapping back to full size, prompts in input pixels."""

    def forward(self, x):
        return (x.float().mean(1, keepdim=True) - 128) / 8


def _disc_image(h, w, cy, cx, r):
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    image = np.full((h, w, 3), 30, np.uint8)
    image[disc] = 220
    return image, disc


@pytest.fixture(scope="module")
def teacher():
    require(WEIGHTS / "mobile_sam.pt")
    from kmine.teacher import build_teacher

    return build_teacher("mobilesam", weights_dir=WEIGHTS)


@pytest.mark.parametrize("shape", [(300, 520), (517, 333), (224, 224)])
def test_student_mask_and_prompts_are_in_input_pixels(shape):
    h, w = shape
    image, disc = _disc_image(h, w, cy=int(h * 0.6), cx=int(w * 0.3), r=min(h, w) // 6)
    p = Predictor(BrightnessStudent(), size=224).predict(image, "student")
    assert p.prob.shape == (h, w) and p.mask.shape == (h, w) and p.refined_mask is None and p.teacher_encodes is None
    assert dice_iou(p.mask, disc)[0] > 0.97
    (s,) = p.prompts
    rows, cols = np.nonzero(disc)
    np.testing.assert_allclose(s.box, [cols.min(), rows.min(), cols.max(), rows.max()], atol=2)
    x, y = s.points[0]
    assert disc[int(y), int(x)]


def test_refine_uses_sam_and_reuses_the_cached_encoding(teacher):
    image, disc = _disc_image(360, 600, cy=200, cx=420, r=70)
    predictor = Predictor(BrightnessStudent(), size=224, teacher=teacher)
    first = predictor.predict(image, "refine")
    assert first.refined_mask.shape == disc.shape
    assert dice_iou(first.refined_mask, disc)[0] > 0.9
    assert first.teacher_encodes == 1 and set(first.timings_ms) == {"student", "teacher_encode", "teacher_decode"}
    again = predictor.predict(image, "refine")
    assert again.teacher_encodes == 0
    assert again.timings_ms["teacher_encode"] < first.timings_ms["teacher_encode"]


def test_batch_refine_encodes_only_new_images(teacher):
    images = [_disc_image(200 + 40 * i, 300, cy=100, cx=150, r=40)[0] for i in range(3)]
    predictor = Predictor(BrightnessStudent(), size=224, teacher=teacher)
    predictor.predict(images[0], "refine")
    results = predictor.predict_batch(images, "refine")
    assert [r.refined_mask.shape for r in results] == [(200, 300), (240, 300), (280, 300)]
    assert results[0].teacher_encodes == 2  # the first was cached


def test_teacher_and_prompts_are_chosen_per_call(teacher):
    """One Predictor serves student and refine calls with other prompt kinds, unchanged."""
    from kmine.prompts import PromptConfig

    image, disc = _disc_image(300, 400, cy=150, cx=200, r=60)
    predictor = Predictor(BrightnessStudent(), size=224)  # no teacher of its own
    default = predictor.predict(image, "student")
    assert default.prompts[0].points is not None and default.prompts[0].box is not None
    boxed = predictor.predict(image, "refine", teacher=teacher, prompts=PromptConfig.parse("box"))
    assert boxed.prompts[0].points is None and boxed.prompts[0].box is not None
    assert dice_iou(boxed.refined_mask, disc)[0] > 0.9
    assert predictor.teacher is None and predictor.prompts == PromptConfig()
    with pytest.raises(ValueError, match="needs a teacher"):
        predictor.predict(image, "refine")


class HalfStudent(torch.nn.Module):
    """A student sure of the disc's left half, and unsure (p = 0.45) of its right half: SAM, prompted
    by the left half, decides the right half in the vote."""

    def forward(self, x):
        bright = x.float().mean(1, keepdim=True) > 128
        left = torch.zeros_like(bright)
        left[..., : x.shape[-1] // 2] = True
        sure = bright & left
        prob = torch.where(sure, 0.95, torch.where(bright, 0.45, 0.02))
        return torch.logit(prob)


def test_refine_is_the_vote_of_the_flipped_student_and_sam_and_sam_mode_is_sams_mask(teacher):
    image, disc = _disc_image(320, 320, cy=160, cx=160, r=90)
    predictor = Predictor(HalfStudent(), size=224, teacher=teacher)
    student = predictor.predict(image, "student")
    refined = predictor.predict(image, "refine")
    sam = predictor.predict(image, "sam")
    assert student.teacher_mask is None
    # The student alone sees half the disc; SAM, prompted by it, finds the whole disc, and where
    # the student is unsure (0.45) SAM's confidence carries the vote.
    assert dice_iou(student.mask, disc)[0] < 0.8
    assert dice_iou(refined.teacher_mask, disc)[0] > 0.9 and dice_iou(refined.mask, disc)[0] > 0.9
    np.testing.assert_array_equal(sam.mask, sam.teacher_mask)
    # The vote differs from SAM's own mask where the student is sure SAM is wrong.
    assert refined.mask is not refined.teacher_mask
    # Refine averages the student over the 4 flips: the disc's two halves get one probability
    # (0.95 and 0.45 averaged), where the single pass was sure of the left half only.
    left, right = disc.copy(), disc.copy()
    left[:, 150:], right[:, :170] = False, False
    assert np.median(student.prob[left]) > 0.9 and np.median(student.prob[right]) < 0.5
    assert np.median(refined.prob[left]) == pytest.approx(0.7, abs=0.01)
    assert np.median(refined.prob[right]) == pytest.approx(0.7, abs=0.01)


def test_nothing_found_gives_no_prompts_and_an_empty_mask(teacher):
    dark = np.full((200, 300, 3), 10, np.uint8)
    p = Predictor(BrightnessStudent(), teacher=teacher).predict(dark, "refine")
    assert p.prompts == [] and p.refined_mask is None and not p.mask.any()


def test_bad_mode_and_bad_image_are_named():
    predictor = Predictor(BrightnessStudent())
    with pytest.raises(ValueError, match="mode teacher unknown"):
        predictor.predict(np.zeros((64, 64, 3), np.uint8), "teacher")
    with pytest.raises(ValueError, match="HxWx3"):
        predictor.predict(np.zeros((64, 64, 4), np.uint8))
    with pytest.raises(ValueError, match="needs a teacher"):
        predictor.predict(np.full((64, 64, 3), 250, np.uint8), "refine")


@pytest.mark.parametrize("shape, words", [((1, 128), "at least 8"), ((4, 4), "at least 8"),
                                          ((16, 170), "11 times longer"), ((2000, 100), "20 times longer")])
def test_thin_or_tiny_images_are_refused_before_any_work(shape, words):
    """A 1×128 image would be scaled to 224×28 672 for the student: refused, with the reason."""
    with pytest.raises(ValueError, match=words):
        Predictor(BrightnessStudent()).predict(np.zeros((*shape, 3), np.uint8))
    accepted = Predictor(BrightnessStudent()).predict(np.zeros((16, 160, 3), np.uint8))  # 10:1 is
    assert accepted.mask.shape == (16, 160)


def test_user_prompts_reuse_the_cached_encoding(teacher):
    from kmine.predict import decode_prompts, user_prompt_set

    image, disc = _disc_image(300, 400, cy=150, cx=220, r=60)
    box = user_prompt_set(disc.shape, box=[290, 220, 150, 80])  # dragged from the bottom-right corner
    np.testing.assert_array_equal(box.box, [150, 80, 290, 220])
    first = decode_prompts(teacher, image, [box])
    assert first.mask.shape == disc.shape and dice_iou(first.mask, disc)[0] > 0.9
    assert first.teacher_encodes == 1 and 0 < first.iou_pred <= 1.5
    assert set(first.timings_ms) == {"teacher_encode", "teacher_decode"}
    # a single click: ambiguous, so the best of SAM's three masks is kept; no new encoding
    point = user_prompt_set(disc.shape, points=[[220, 150]])
    again = decode_prompts(teacher, image, [point])
    assert again.teacher_encodes == 0
    assert dice_iou(again.mask, disc)[0] > 0.8
    # a background point inside the disc with the box carves it out
    both = user_prompt_set(disc.shape, points=[[220, 150]], point_labels=[0], box=[150, 80, 290, 220])
    carved = decode_prompts(teacher, image, [both])
    assert carved.mask.sum() < first.mask.sum()


@pytest.mark.parametrize("kwargs, message", [
    ({}, "at least one point or a box"),
    ({"points": [[10, 10]], "point_labels": [0]}, "background points alone"),
    ({"points": [[500, 10]]}, "inside the 400×300 image"),
    ({"points": [[10, 10]], "point_labels": [2]}, "point_labels"),
    ({"box": [10, 10, 10, 50]}, "box is empty"),
    ({"box": [1, 2, 3]}, r"\[x0, y0, x1, y1\]"),
])
def test_bad_user_prompts_are_named(kwargs, message):
    from kmine.predict import user_prompt_set

    with pytest.raises(ValueError, match=message):
        user_prompt_set((300, 400), **kwargs)


@pytest.mark.parametrize("student_batch, trace", [(1, False), (2, False), (8, False), (1, True), (8, True)])
def test_batched_student_passes_give_each_image_its_own_answer(student_batch, trace):
    """Images of one working shape share a forward pass (``student_batch`` at a time), others
    go alone; each answer is the one the image gets by itself (eagerly), in the order given;
    a traced student (traced at one shape) answers every shape as the eager one does."""
    from kmine.student import build_student

    torch.manual_seed(0)
    student = build_student(pretrained=False)
    rng = np.random.default_rng(1)
    shapes = [(96, 128), (96, 128), (130, 70), (96, 128), (100, 100)]  # three share a padded shape
    images = [rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for shape in shapes]
    alone = Predictor(student, size=64).student_probs(images[:1]) + [
        Predictor(student, size=64).student_prob(image) for image in images[1:]]
    batched = Predictor(student, size=64, student_batch=student_batch, trace=trace)
    assert isinstance(batched._forward, torch.jit.ScriptModule) == trace  # traced indeed, not the fallback
    together = batched.student_probs(images)
    for one, many, shape in zip(alone, together, shapes):
        assert many.shape == shape
        np.testing.assert_allclose(many, one, atol=1e-4)
    results = Predictor(student, size=64, student_batch=student_batch).predict_batch(images, "student")
    assert [r.prob.shape for r in results] == shapes and all("student" in r.timings_ms for r in results)


def test_a_huge_image_is_predicted_on_a_bounded_copy_and_answered_at_full_size():
    """Over MAX_WORK_PIXELS the work happens on a scaled-down copy (bounded memory and time);
    the mask and the prompts still come back in the input's own pixels."""
    from kmine.data import MAX_WORK_PIXELS

    h, w = 2400, 3000  # 7.2 megapixels
    image, disc = _disc_image(h, w, cy=1500, cx=900, r=500)
    p = Predictor(BrightnessStudent(), size=224).predict(image, "student")
    assert p.mask.shape == (h, w) and p.prob.size <= MAX_WORK_PIXELS
    assert dice_iou(p.mask, disc)[0] > 0.98
    (s,) = p.prompts
    np.testing.assert_allclose(s.box, [400, 1000, 1400, 2000], atol=6)
    x, y = s.points[0]
    assert disc[int(y), int(x)]
