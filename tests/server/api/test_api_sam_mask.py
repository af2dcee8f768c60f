"""SAM's compact mask for a labelling canvas (``POST …/images/{id}/sam/mask``), on real services
and the COVID-QU-Ex sample: several boxes and points of both signs, a 1-bit PNG of the mask
alone, corrective clicks starting from the previous answer's logits, and hostile input refused
with one readable line."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from service_fixtures import assert_error, covid_zip
from shared_data import WEIGHTS, require

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def url(client):
    require(WEIGHTS)
    r = client.post("/api/v1/datasets", data={"name": "canvas"}, files={"archive": ("c.zip", covid_zip())})
    assert r.status_code == 201, r.text
    ds = r.json()["id"]
    item = client.get(f"/api/v1/datasets/{ds}/images", params={"limit": 1}).json()["items"][0]
    return f"/api/v1/datasets/{ds}/images/{item['id']}/sam/mask"


def mask_of(answer: dict) -> np.ndarray:
    image = Image.open(io.BytesIO(base64.b64decode(answer["mask_png"])))
    assert image.mode == "1"  # the mask alone, one bit a pixel
    return np.asarray(image)


def test_boxes_and_points_give_a_compact_mask_and_corrections_reuse_the_logits(client, url):
    box = [20, 30, 120, 200]
    r = client.post(url, json={"boxes": [box]})
    assert r.status_code == 200, r.text
    first = r.json()
    mask = mask_of(first)
    assert mask.shape == (first["height"], first["width"]) and mask.sum() == first["pixels"] > 0
    assert (first["objects"], first["reused_logits"]) == (1, 0)
    assert len(base64.b64decode(first["mask_png"])) < first["width"] * first["height"] / 8  # compact

    points = [[60, 100], [80, 150], [5, 5], [200, 10]]  # two object points in the box, two background outside
    r = client.post(url, json={"boxes": [box], "points": points, "point_labels": [1, 1, 0, 0],
                               "previous": first["logits_token"]})
    assert r.status_code == 200, r.text
    corrected = r.json()
    assert corrected["teacher_encodes"] == 0 and corrected["reused_logits"] == 1  # the earlier box's logits
    assert corrected["logits_token"] != first["logits_token"]

    r = client.post(url, json={"boxes": [box, [150, 30, 240, 200]], "points": [[200, 250]], "point_labels": [1],
                               "previous": corrected["logits_token"]})
    assert r.status_code == 200, r.text
    two = r.json()
    assert two["objects"] == 3 and two["reused_logits"] == 1  # the new box and the free point start afresh
    assert two["pixels"] >= mask_of(two)[:, :140].sum()  # the union of the objects' masks

    r = client.post(url, json={"points": [[60, 100], [80, 150], [200, 250]], "point_labels": [1, 1, 0]})
    assert r.status_code == 200 and r.json()["objects"] == 1, r.text  # points alone: one object

    other = client.post(url, json={"boxes": [box], "previous": "0" * 32}).json()
    assert other["reused_logits"] == 0  # an unknown token is no earlier answer


@pytest.mark.parametrize("body, words", [
    ({"points": [[5000, 5]], "point_labels": [1]}, "points must lie inside the"),
    ({"boxes": [[10, 10, 5000, 60]]}, "boxes must lie inside the"),
    ({"boxes": [[10, 10, 10, 60]]}, "a box has no area"),
    ({"points": [[5, 5]], "point_labels": [0]}, "background points alone"),
    ({}, "background points alone say nothing"),
    ({"points": [[5, 5]], "point_labels": []}, "one label per point"),
    ({"points": [[5, 5]] * 65, "point_labels": [1] * 65}, "body.points: List should have at most 64"),
    ({"boxes": [[1, 1, 9, 9]] * 17}, "body.boxes: List should have at most 16"),
    ({"points": [[-1, 5]], "point_labels": [1]}, "invalid request"),
    ({"boxes": [[1, 1, 9, 9]], "previous": "../../etc"}, "body.previous"),
    ({"boxes": [[1, 1, 9, 9]], "teacher": "nope"}, "unknown teacher nope"),
    ({"points": [[20, 20]], "point_labels": [1], "teacher": "litemedsam"}, "box prompts only"),
])
def test_hostile_prompts_are_refused_in_one_line(client, url, body, words):
    assert_error(client.post(url, json=body), 422, words)


def test_nan_and_infinity_are_refused(client, url):
    for raw in ('{"points": [[NaN, 5]], "point_labels": [1]}', '{"boxes": [[1, 1, Infinity, 9]]}'):
        assert_error(client.post(url, content=raw, headers={"content-type": "application/json"}), 422, "invalid request")


def test_unknown_image(client, url):
    assert_error(client.post(url.replace("/images/", "/images/99999"), json={"boxes": [[1, 1, 9, 9]]}), 404)
