"""Blobs for workers on other machines, on the real app and PostgreSQL: a worker token sends,
looks up, fetches and deletes blobs by sha256 (verified; nothing kept on a mismatch; nothing
deleted that an image, mask, model or job still names); a user token is refused; and the
worker's :class:`HttpStore` over that API fetches each blob once, verified, into its own cache."""

from __future__ import annotations

import hashlib

import pytest

from service_fixtures import assert_error, covid_zip


@pytest.fixture(scope="module")
def tokens(client):
    made = {role: client.post("/api/v1/tokens", json={"name": f"blobs-{role}", "role": role}).json()["token"]
            for role in ("worker", "user")}
    return {role: {"Authorization": f"Bearer {token}"} for role, token in made.items()}


def url(digest: str) -> str:
    return f"/api/v1/blobs/{digest}"


def test_a_worker_sends_looks_up_fetches_and_deletes(client, settings, tokens):
    worker = tokens["worker"]
    data = b"a checkpoint's bytes " * 1000
    digest = hashlib.sha256(data).hexdigest()
    assert client.head(url(digest), headers=worker).status_code == 404
    r = client.put(url(digest), content=data, headers=worker)
    assert r.status_code == 201 and r.json() == {"sha256": digest, "size": len(data), "created": True}
    again = client.put(url(digest), content=data, headers=worker)
    assert again.status_code == 200 and again.json()["created"] is False
    assert client.head(url(digest), headers=worker).status_code == 200
    assert client.get(url(digest), headers=worker).content == data
    assert client.delete(url(digest), headers=worker).status_code == 204  # nothing names it
    assert_error(client.get(url(digest), headers=worker), 404, "no blob")


def test_bytes_that_do_not_match_their_name_are_not_kept(client, settings, tokens):
    claimed = hashlib.sha256(b"what was meant").hexdigest()
    assert_error(client.put(url(claimed), content=b"something else", headers=tokens["worker"]), 422, "do not match")
    assert client.head(url(claimed), headers=tokens["worker"]).status_code == 404
    assert not [p for p in settings.blobs_dir.glob(".tmp-*")]  # no half-written file left


def test_what_is_named_stays_and_users_may_not_touch_blobs(client, settings, tokens):
    from server.core.db import session_scope
    from server.core.models import Image

    ds = client.post("/api/v1/datasets", data={"name": "blobs"}, files={"archive": ("c.zip", covid_zip())}).json()["id"]
    with session_scope(settings) as s:
        digest = s.query(Image.sha256).filter(Image.dataset_id == ds).first()[0]
    assert_error(client.delete(url(digest), headers=tokens["worker"]), 409, "still refers")
    assert client.get(url(digest), headers=tokens["worker"]).status_code == 200
    assert_error(client.get(url(digest), headers=tokens["user"]), 403, "admin")
    assert_error(client.put(url(digest), content=b"x", headers=tokens["user"]), 403, "admin")


def test_http_store_fetches_once_verified_and_sends_once(client, tokens, tmp_path):
    from server.core.storage import BlobStore, HttpStore

    token = tokens["worker"]["Authorization"].split()[1]
    store = HttpStore("http://testserver", token, BlobStore(tmp_path / "blobs"), http=client)
    digest, sent = store.put(b"pseudo-label mask")
    assert sent and store.sent[digest] == 1
    assert store.put(b"pseudo-label mask") == (digest, False) and store.sent[digest] == 1  # the API has it
    other = BlobStore(tmp_path / "other-blobs")  # a second worker's empty cache
    reader = HttpStore("http://testserver", token, other, http=client)
    for _ in range(3):
        assert reader.get(digest) == b"pseudo-label mask"
    assert reader.fetched[digest] == 1  # read three times, fetched once
    assert (tmp_path / "transfers.log").read_text().split() == [
        "put", digest, "17", "get", digest, "17"]  # both stores' caches are under tmp_path
    with pytest.raises(FileNotFoundError):
        reader.local_path("0" * 64)


def test_a_worker_elsewhere_loads_an_uploaded_model_by_its_hash(client, tokens, tmp_path):
    """An uploaded model's file is on the API's disk; a worker on another machine (an evaluate
    job) gets it through the blob route by its sha256, checked before it is loaded."""
    from kmine.student import build_student, save_student
    from server.core.runtime import ModelFiles, verified_checkpoint
    from server.core.storage import BlobStore, HttpStore

    path = tmp_path / "best.pt"
    save_student(build_student("timm-tf_efficientnet_lite0", pretrained=False), path)
    model = client.post("/api/v1/models", files={"checkpoint": ("best.pt", path.read_bytes())}).json()
    token = tokens["worker"]["Authorization"].split()[1]
    far = HttpStore("http://testserver", token, BlobStore(tmp_path / "worker" / "blobs"), http=client)
    # as the worker reads the row: the API's path, which is not on its disk
    files = ModelFiles(model["id"], model["sha256"], "/srv/kmine/models/upload.pt")
    fetched = verified_checkpoint(files, far)
    assert fetched.read_bytes() == path.read_bytes() and far.fetched[model["sha256"]] == 1
