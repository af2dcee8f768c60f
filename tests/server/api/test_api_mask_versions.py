"""No label lost, on real services and the COVID-QU-Ex sample: every save is a new version that
says who saved it and from what; GET …/masks lists them newest first; an undone save is kept,
marked reverted, and the version before it (the imported ground truth in the end) is the label
again; an empty mask needs a confirmation; a save says which label it replaced."""

from __future__ import annotations

import numpy as np
import pytest

from service_fixtures import assert_error, covid_entries, covid_zip, pixels, png


@pytest.fixture(scope="module")
def image(client):
    r = client.post("/api/v1/datasets", data={"name": "versions"}, files={"archive": ("c.zip", covid_zip())})
    assert r.status_code == 201, r.text
    ds = r.json()["id"]
    item = client.get(f"/api/v1/datasets/{ds}/images", params={"limit": 1}).json()["items"][0]
    return {"dataset": ds, **item, "url": f"/api/v1/datasets/{ds}/images/{item['id']}"}


def test_saves_are_versions_and_undo_restores_the_earlier_label(client, image):
    url = image["url"]
    truth = client.get(f"{url}/ground-truth").content
    listed = client.get(f"{url}/masks").json()
    assert listed["image_id"] == image["id"] and len(listed["items"]) == 1
    gt = listed["items"][0]
    assert (gt["kind"], gt["origin"], gt["pixels"], gt["reverted_at"]) == ("ground_truth", "imported",
                                                                           int(pixels(truth).sum()), None)
    assert listed["label_id"] == gt["id"]

    first = np.zeros_like(pixels(truth))
    first[20:120, 30:90] = True
    r = client.put(f"{url}/mask", files={"mask": ("a.png", png(first))}, data={"origin": "sam"})
    assert r.status_code == 200, r.text
    one = r.json()
    assert one["replaced"] == {"id": gt["id"], "kind": "ground_truth"}  # the imported truth, said out loud
    assert (one["kind"], one["origin"], one["saved_by"], one["pixels"]) == ("human", "sam", "admin", 100 * 60)
    second = first.copy()
    second[150:170, 10:200] = True
    r = client.put(f"{url}/mask", files={"mask": ("b.png", png(second))}, data={"origin": "brush"})
    two = r.json()
    assert two["replaced"] == {"id": one["id"], "kind": "human"} and two["origin"] == "brush"

    listed = client.get(f"{url}/masks").json()
    assert [m["id"] for m in listed["items"]] == [two["id"], one["id"], gt["id"]]  # newest first, none lost
    assert [m["origin"] for m in listed["items"]] == ["brush", "sam", "imported"]
    assert listed["label_id"] == two["id"]
    label = client.get(f"{url}/mask")
    assert label.headers["x-mask-id"] == str(two["id"]) and (pixels(label.content) == second).all()

    r = client.post(f"{url}/mask/undo")
    assert r.status_code == 200, r.text
    undo = r.json()
    assert undo["undone"]["id"] == two["id"] and undo["undone"]["reverted_by"] == "admin"
    assert undo["undone"]["reverted_at"] and undo["label"]["id"] == one["id"]
    label = client.get(f"{url}/mask")
    assert label.headers["x-mask-id"] == str(one["id"]) and (pixels(label.content) == first).all()
    listed = client.get(f"{url}/masks").json()
    assert len(listed["items"]) == 3 and listed["items"][0]["reverted_at"] and listed["label_id"] == one["id"]

    undo = client.post(f"{url}/mask/undo").json()  # the only save left: the imported truth is the label again
    assert undo["undone"]["id"] == one["id"] and undo["label"]["id"] == gt["id"]
    label = client.get(f"{url}/mask")
    assert label.headers["x-mask-kind"] == "ground_truth" and label.content == truth
    assert_error(client.post(f"{url}/mask/undo"), 409, "nothing to undo")
    assert len(client.get(f"{url}/masks").json()["items"]) == 3


def test_an_empty_mask_needs_a_confirmation(client, image):
    url = image["url"]
    before = client.get(f"{url}/masks").json()
    empty = png(np.zeros((image["height"], image["width"]), bool))
    body = assert_error(client.put(f"{url}/mask", files={"mask": ("e.png", empty)}), 409, "the mask is empty")
    assert body["detail"] == "the mask is empty; send confirm_empty=true to save an empty label"
    assert client.get(f"{url}/masks").json() == before  # nothing stored
    r = client.put(f"{url}/mask", files={"mask": ("e.png", empty)}, data={"confirm_empty": "true", "origin": "brush"})
    assert r.status_code == 200, r.text
    assert r.json()["pixels"] == 0 and r.json()["replaced"]["id"] == before["label_id"]
    assert not pixels(client.get(f"{url}/mask").content).any()
    assert client.post(f"{url}/mask/undo").json()["label"]["id"] == before["label_id"]
    assert_error(client.put(f"{url}/mask", files={"mask": ("e.png", empty)}, data={"origin": "lasso"}), 422, "origin")
    assert_error(client.get(f"/api/v1/datasets/{image['dataset']}/images/999999/masks"), 404, "image 999999 not found")
    assert_error(client.post(f"/api/v1/datasets/{image['dataset']}/images/999999/mask/undo"), 404, "not found")


def test_undo_keeps_split_images_labelled(client):
    """An image a split trains on keeps a label: undoing its only save (it had no ground truth)
    is refused while it sits in the labelled part, and allowed once it is back in unlabelled."""
    entries = covid_entries(4)
    bare = next(name for name, _ in entries if name.startswith("masks/"))
    files = [("images" if n.startswith("images/") else "masks", (n.split("/", 1)[1], d))
             for n, d in entries if n != bare]
    r = client.post("/api/v1/datasets", data={"name": "undo in a split"}, files=files)
    assert r.status_code == 201, r.text
    ds = r.json()["id"]
    stem = bare.split("/", 1)[1].rsplit(".", 1)[0]
    item = next(i for i in client.get(f"/api/v1/datasets/{ds}/images").json()["items"] if i["stem"] == stem)
    assert not item["annotated"]
    split = client.post(f"/api/v1/datasets/{ds}/splits", json={"val_fraction": 0.34, "test_fraction": 0,
                                                               "labelled_fraction": 0.5, "seed": 1}).json()
    url = f"/api/v1/datasets/{ds}/images/{item['id']}"
    mask = np.zeros((item["height"], item["width"]), bool)
    mask[5:50, 5:50] = True
    saved = client.put(f"{url}/mask", files={"mask": ("m.png", png(mask))}).json()
    assert saved["replaced"] is None and saved["origin"] is None
    assert client.post(f"/api/v1/splits/{split['id']}/move", json={"image_ids": [item["id"]], "to": "labelled"}).is_success
    assert_error(client.post(f"{url}/mask/undo"), 409, "move it to unlabelled first")
    assert client.get(f"{url}/mask").headers["x-mask-id"] == str(saved["id"])  # the refused undo changed nothing
    assert client.post(f"/api/v1/splits/{split['id']}/move", json={"image_ids": [item["id"]], "to": "unlabelled"}).is_success
    r = client.post(f"{url}/mask/undo")
    assert r.status_code == 200 and r.json()["label"] is None
    assert_error(client.get(f"{url}/mask"), 404, "has no mask")
    counts = client.get(f"/api/v1/datasets/{ds}").json()["counts"]
    assert counts["unannotated"] == 1
