"""The API client turns errors into readable messages (no server needed)."""

import httpx
import numpy as np
import pytest

pytest.importorskip("gradio")
from webui import overlay  # noqa: E402
from webui.client import ApiClient, ApiError, error_message  # noqa: E402


def test_error_messages_are_readable():
    r = httpx.Response(409, json={"detail": "no model yet: train one"})
    assert error_message(r) == "no model yet: train one (HTTP 409)"
    r = httpx.Response(422, json={"detail": [{"loc": ["body", "seed"], "msg": "too big"}]})
    assert "body.seed: too big" in error_message(r)
    assert "check the API token" in error_message(httpx.Response(401, json={"detail": "bad token"}))
    assert "(HTTP 500)" in error_message(httpx.Response(500, text="<html>boom</html>"))


def test_unreachable_server_is_a_message():
    with pytest.raises(ApiError, match="cannot reach the server"):
        ApiClient("http://127.0.0.1:9", "t", timeout=2).datasets()


def test_overlay_draws_masks_and_prompts():
    image = np.zeros((100, 120, 3), np.uint8)
    mask = np.zeros((100, 120), bool)
    mask[20:60, 30:80] = True
    out = np.asarray(overlay.render(image, [(mask, overlay.STUDENT, 0.4)],
                                    [{"points": [[50, 40]], "point_labels": [1], "box": [30, 20, 79, 59]}]))
    assert out.shape == (100, 120, 3) and out[40, 60].any() and not out[5, 5].any()
    assert overlay.dice_iou(mask, mask) == (1.0, 1.0)
    assert (overlay.decode_png_mask(overlay.mask_to_png(mask)) == mask).all()


def test_curves_are_drawn_with_ticks_legend_and_phase_mark():
    from webui import plots

    ticks = plots.nice_ticks(0.13, 0.37)
    assert ticks[0] <= 0.13 and ticks[-1] >= 0.37 and 4 <= len(ticks) <= 8
    chart = np.asarray(plots.line_chart({"train": [(1, 0.9), (2, 0.7), (3, 0.5)], "validation": [(1, 1.0), (3, 0.6)]},
                                        "Loss", marks=[(2, "mining")]))
    for colour in plots.COLOURS[:2]:  # one line (and legend swatch) per series
        assert (np.abs(chart.astype(int) - colour).sum(-1) < 10).sum() > 100
    empty = np.asarray(plots.line_chart({}, "Loss"))
    assert empty.shape == chart.shape and (empty < 200).any()  # says "no data yet"
