"""Every kind of bad input gets a 4xx naming the problem, and a refused upload stores nothing."""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pytest
from PIL import Image

from service_fixtures import covid_zip, make_zip


def png(w=32, h=24, value=0, mode="RGB") -> bytes:
    buf = io.BytesIO()
    shape = (h, w, 3) if mode == "RGB" else (h, w)
    Image.fromarray(np.full(shape, value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def state(client, settings):
    blobs = sorted(p for p in settings.blobs_dir.rglob("*") if p.is_file()) if settings.blobs_dir.exists() else []
    return len(client.get("/api/v1/datasets").json()), len(blobs)


def upload_zip(client, data: bytes, name="bad"):
    return client.post("/api/v1/datasets", data={"name": name}, files={"archive": ("d.zip", data)})


CASES = {
    "dotdot": (make_zip({"images/a.png": png(), "images/../../evil.png": png()}), 422, "'..'"),
    "absolute": (make_zip({"images/a.png": png(), "/images/b.png": png()}), 422, "absolute"),
    "symlink": (make_zip({"images/a.png": png()}, link="images/b.png"), 422, "symbolic link"),
    "bomb": (make_zip({"images/a.png": png(), "images/b.png": b"\0" * 5_000_000}, compression=zipfile.ZIP_DEFLATED), 413, "expands"),
    "not an image": (make_zip({"images/a.png": png(), "images/b.png": b"this is text"}), 422, "not a decodable image"),
    "truncated image": (make_zip({"images/a.png": png(), "images/b.png": png(64, 64, 7)[:60]}), 422, "images/b.png"),
    "mask size": (make_zip({"images/a.png": png(32, 24), "masks/a.png": png(30, 24, mode="L")}), 422, "must match"),
    "orphan mask": (make_zip({"images/a.png": png(), "masks/z.png": png(mode="L")}), 422, "without an image"),
    "odd name": (make_zip({"images/a.png": png(), "images/b\x01.png": png()}), 422, "file stems may hold"),
    "no images": (make_zip({"other/a.png": png()}), 422, "no images"),
    "not a zip": (b"PK\x03\x04garbage", 422, "not a readable zip"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_zip_refused_and_nothing_stored(client, settings, case):
    data, status, words = CASES[case]
    before = state(client, settings)
    r = upload_zip(client, data)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
    assert state(client, settings) == before


def test_upload_limits(client, settings):
    from fastapi.testclient import TestClient

    from server.app import create_app

    small = settings.model_copy(update={"max_upload_bytes": 50_000, "max_files": 3})
    with TestClient(create_app(small, prepare=False), headers=client.headers) as c:
        r = c.post("/api/v1/datasets", data={"name": "x"}, files={"archive": ("d.zip", b"0" * 2_000_000)})
        assert r.status_code == 413 and "limit" in r.json()["detail"]
        many = make_zip({f"images/{i}.png": png() for i in range(5)})
        r = c.post("/api/v1/datasets", data={"name": "x"}, files={"archive": ("d.zip", many)})
        assert r.status_code == 413 and "at most 3" in r.json()["detail"]


def test_files_upload_and_bad_identifiers(client):
    r = client.post("/api/v1/datasets", data={"name": "files"},
                    files=[("images", ("a.png", png())), ("images", ("b.png", png())), ("masks", ("a.png", png(mode="L")))])
    assert r.status_code == 201, r.text
    ds = r.json()
    assert ds["counts"] == {"images": 2, "annotated": 1, "unannotated": 1, "masks": {"ground_truth": 1}}
    items = client.get(f"/api/v1/datasets/{ds['id']}/images").json()["items"]
    assert {i["filename"]: i["annotated"] for i in items} == {"a.png": True, "b.png": False}
    r = client.post("/api/v1/datasets", data={"name": "files"}, files=[("images", ("../a.png", png()))])
    assert r.status_code == 422 and "plain file name" in r.json()["detail"]
    for path in ("/api/v1/datasets/abc", "/api/v1/datasets/0", "/api/v1/datasets/-1", "/api/v1/jobs/1e3",
                 "/api/v1/models/99999999999", "/api/v1/splits/%2e%2e"):
        r = client.get(path)
        assert r.status_code == 422, (path, r.text)
        assert "invalid request" in r.json()["detail"]
    assert client.get("/api/v1/datasets/999999").status_code == 404
    images = client.get(f"/api/v1/datasets/{ds['id']}/images").json()["items"]
    a = [i for i in images if i["stem"] == "a"][0]
    b = [i for i in images if i["stem"] == "b"][0]
    assert client.get(f"/api/v1/datasets/{ds['id']}/images/{a['id']}/nonsense").status_code == 404
    assert client.get(f"/api/v1/datasets/{ds['id']}/images/{b['id']}/mask").status_code == 404
    # a mask of the wrong size, a mask that is no image
    r = client.put(f"/api/v1/datasets/{ds['id']}/images/{a['id']}/mask", files={"mask": ("m.png", png(31, 24, mode="L"))})
    assert r.status_code == 422 and "must match" in r.json()["detail"]
    r = client.put(f"/api/v1/datasets/{ds['id']}/images/{a['id']}/mask", files={"mask": ("m.png", b"nope")})
    assert r.status_code == 422
    # splits: bad fractions, moving an unannotated image (no mask) to val
    r = client.post(f"/api/v1/datasets/{ds['id']}/splits", json={"val_fraction": 1.5})
    assert r.status_code == 422
    split = client.post(f"/api/v1/datasets/{ds['id']}/splits", json={"val_fraction": 0, "test_fraction": 0}).json()
    r = client.post(f"/api/v1/splits/{split['id']}/move", json={"image_ids": [b["id"]], "to": "val"})
    assert r.status_code == 409 and "no mask" in r.json()["detail"]
    r = client.post(f"/api/v1/splits/{split['id']}/move", json={"image_ids": [a["id"]], "to": "nowhere"})
    assert r.status_code == 422
    # jobs: unknown kind, unknown and server-owned settings
    for body, words in (({"kind": "bake", "split_id": split["id"]}, "kind"),
                        ({"kind": "train", "split_id": split["id"], "config": {"nonsense": 1}}, "unknown training settings"),
                        ({"kind": "train", "split_id": split["id"], "config": {"data": "/etc"}}, "set by the server"),
                        ({"kind": "train", "split_id": split["id"], "config": {"schedule": "weekly"}}, "schedule"),
                        ({"kind": "train", "split_id": 987654}, "not found")):
        r = client.post("/api/v1/jobs", json=body)
        assert 400 <= r.status_code < 500 and words in r.json()["detail"], (body, r.text)
    # predict: not an image, mode unknown
    r = client.post("/api/v1/predict", files={"image": ("x.png", b"nope")})
    assert r.status_code == 422
    r = client.post("/api/v1/predict", data={"mode": "magic"}, files={"image": ("x.png", png())})
    assert r.status_code == 422


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/kmine-pwned",))


def test_checkpoint_upload_never_runs_pickled_code(client, tmp_path):
    import os

    payload = pickle.dumps({"format": "kmine.student/1", "evil": _Evil()})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:  # the torch.save layout is a zip with data.pkl
        z.writestr("archive/data.pkl", payload)
    for data in (payload, buf.getvalue()):
        r = client.post("/api/v1/models", files={"checkpoint": ("evil.pt", data)})
        assert r.status_code == 422 and "not a loadable kmine student checkpoint" in r.json()["detail"]
    assert not os.path.exists("/tmp/kmine-pwned")


def test_zip_with_top_folder_is_accepted_once(client, settings):
    r = upload_zip(client, covid_zip("sample"), name="again")
    assert r.status_code == 201 and r.json()["counts"]["images"] == 12
    assert client.delete(f"/api/v1/datasets/{r.json()['id']}").status_code == 204
