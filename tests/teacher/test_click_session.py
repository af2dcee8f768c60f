"""The previous answer as the mask prompt (PromptSet.low_res_logits) and a click session,
on the real MobileSAM with synthetic discs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kmine.click_session import ClickSession
from kmine.clicks import Click, simulate
from kmine.prompts import PromptSet, without_points
from teacher_helpers import dice, disc_image, mask_box

WIDE = ((180, 300), (60, 220), 35)  # shape, centre (row, col), radius


def test_low_res_logits_are_the_mask_prompt_as_they_are(mobilesam):
    """The same as segment_anything's own decoder given that mask_input (SamPredictor's
    ``mask_input``)."""
    image, disc = disc_image(*WIDE)
    (encoding,) = mobilesam.encode([image])
    point = PromptSet(points=np.array([[220.0, 60.0]], np.float32), point_labels=np.array([1]))
    (first,) = mobilesam.decode([encoding], [[point]])
    previous = first.low_res_logits[0].numpy()
    again = PromptSet(points=np.array([[220.0, 60.0], [150.0, 150.0]], np.float32),
                      point_labels=np.array([1, 0]), low_res_logits=previous)
    (decoded,) = mobilesam.decode([encoding], [[again]])

    model = mobilesam.model
    scale = np.array([encoding.input_size[1] / 300, encoding.input_size[0] / 180], np.float32)
    with torch.inference_mode():
        sparse, dense = model.prompt_encoder(
            points=(torch.as_tensor(again.points * scale)[None], torch.as_tensor(again.point_labels)[None]),
            boxes=None,
            masks=torch.as_tensor(previous)[None, None],
        )
        low, _ = model.mask_decoder(
            encoding.embedding[None], model.prompt_encoder.get_dense_pe(), sparse, dense, multimask_output=False
        )
    torch.testing.assert_close(decoded.low_res_logits, low[:, 0], atol=2e-4, rtol=1e-4)
    assert without_points([PromptSet(box=mask_box(disc), low_res_logits=previous)])[0].low_res_logits is previous


def test_low_res_logits_are_checked(mobilesam):
    image, disc = disc_image(*WIDE)
    (encoding,) = mobilesam.encode([image])
    box = mask_box(disc)
    with pytest.raises(ValueError, match="mask-prompt frame"):
        mobilesam.decode([encoding], [[PromptSet(box=box, low_res_logits=np.zeros((64, 64), np.float32))]])
    with pytest.raises(ValueError, match="not both"):
        mobilesam.decode([encoding], [[PromptSet(box=box, mask_logits=np.zeros((180, 300), np.float32),
                                                 low_res_logits=np.zeros((256, 256), np.float32))]])


def test_multimask_low_res_are_the_candidates(mobilesam):
    image, disc = disc_image(*WIDE)
    (encoding,) = mobilesam.encode([image])
    (decoded,) = mobilesam.decode([encoding], [[PromptSet(box=mask_box(disc))]], multimask=True)
    assert decoded.multimask_low_res is not None and decoded.multimask_low_res.shape == (1, 3, 256, 256)


def test_clicks_alone_find_the_disc(mobilesam):
    image, disc = disc_image(*WIDE)
    session = ClickSession(mobilesam, image)
    assert not session.mask.any()  # nothing before the first click
    run = simulate(session.mask, session.click, disc, max_clicks=5)
    assert run.clicks[0] == Click(220, 60, True)  # the disc's centre
    assert max(run.dices) > 0.9
    assert len(session.objects) == 1  # every click went to the one click-only object


def test_a_negative_click_goes_to_the_object_whose_mask_covers_it(mobilesam):
    image, disc = disc_image(*WIDE)
    boxes = [np.array([180, 20, 260, 100], np.float32), np.array([10, 10, 60, 60], np.float32)]
    session = ClickSession(mobilesam, image, [PromptSet(box=b) for b in boxes])
    first, second = session.objects
    # Known masks stand in for SAM's answers, so the route is certain.
    first.mask = disc.copy()
    second.mask = np.zeros_like(disc)
    second.mask[20:40, 20:40] = True
    session.click(Click(30, 30, False))
    assert second.labels == [0] and first.labels == []
    assert second.box is None and first.box is not None  # "not here" unbinds the clicked object's box
    assert second.low_res is not None and second.low_res.shape == (256, 256)  # the next mask prompt
    assert first.mask is not None and (first.mask == disc).all()  # untouched objects are not decoded again
    session.click(Click(230, 60, True))  # inside the first box
    assert first.labels == [1] and second.labels == [0]
    session.click(Click(40, 45, True))  # outside every box: the box-less object with the nearest positive point
    assert second.labels == [0, 1] and len(session.objects) == 2


def test_a_positive_click_outside_every_box_starts_an_object(mobilesam):
    image, disc = disc_image(*WIDE)
    session = ClickSession(mobilesam, image, [PromptSet(box=np.array([10, 10, 60, 60], np.float32))])
    session.click(Click(220, 60, True))
    assert len(session.objects) == 2 and session.objects[1].box is None
    assert dice(session.objects[1].mask, disc) > 0.8


def test_a_box_only_teacher_cannot_answer_clicks(litemedsam):
    image, _ = disc_image(*WIDE)
    with pytest.raises(ValueError, match="no point prompts"):
        ClickSession(litemedsam, image)


def test_a_positive_click_just_outside_a_box_stretches_it(mobilesam):
    """A missed rim just outside the box belongs to that object: its box grows to the click
    (a new lone-point object there made SAM's answer swallow the image on a real polyp)."""
    image, disc = disc_image(*WIDE)
    box = mask_box(disc)  # (185, 25, 255, 95)
    session = ClickSession(mobilesam, image, [PromptSet(box=box - np.array([0, 0, 20, 0], np.float32))])
    session.click(Click(250, 60, True))  # 15 px right of the shrunken box, inside the disc
    (obj,) = session.objects
    assert obj.labels == [1] and obj.box is not None and obj.box[2] == 250
    assert dice(session.mask, disc) > 0.9
