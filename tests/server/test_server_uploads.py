"""The serving path, safe and bounded (issue 13): a chunked body over the limit gets 413, uploads
are read where Starlette spools them, the file limit is KMINE_MAX_FILES (not Starlette's 1000),
messages show hostile names plainly, and neither a failed model upload nor a deleted dataset
leaves a file behind. Real app, real PostgreSQL, real files."""

from __future__ import annotations

import io
import tempfile
from contextlib import contextmanager

import numpy as np
import pytest
from PIL import Image

from service_fixtures import make_zip


def png(value: int = 0, w: int = 8, h: int = 8, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3) if mode == "RGB" else (h, w), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@contextmanager
def app_client(client, settings, **limits):
    """An API client (admin token) on an app built with these settings changed."""
    from fastapi.testclient import TestClient

    from server.app import create_app

    with TestClient(create_app(settings.model_copy(update=limits), prepare=False), headers=client.headers) as c:
        yield c


def blob_files(settings) -> set[str]:
    root = settings.blobs_dir
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def model_files(settings) -> set[str]:
    return {p.name for p in settings.models_dir.iterdir()} if settings.models_dir.exists() else set()


# ---- 1. a chunked body over the limit ----

def test_chunked_body_over_the_limit_gets_413(client, settings):
    """No Content-Length: the body is counted as it arrives, and the answer is the 413 with the
    one ErrorBody line, not the form or JSON parser's 400."""
    boundary = "kmine-test-boundary"
    chunk = b"0" * 65536

    def multipart():
        yield (f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nbig\r\n'
               f'--{boundary}\r\nContent-Disposition: form-data; name="archive"; filename="d.zip"\r\n'
               "Content-Type: application/zip\r\n\r\n").encode()
        for _ in range(40):  # 2.5 MiB: past the 50 kB upload limit plus the 1 MiB of form overhead allowed
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    def json_body():
        yield b'{"kind": "train", "split_id": 1, "config": {"note": "'
        for _ in range(40):
            yield chunk
        yield b'"}}'

    with app_client(client, settings, max_upload_bytes=50_000) as c:
        limit = 50_000 + 1024 * 1024
        for path, body, kind in (("/api/v1/datasets", multipart, f"multipart/form-data; boundary={boundary}"),
                                 ("/api/v1/jobs", json_body, "application/json")):
            r = c.post(path, content=body(), headers={"Content-Type": kind})
            assert "content-length" not in {k.lower() for k in r.request.headers}
            assert r.status_code == 413, (path, r.text)
            assert r.json() == {"detail": f"request body larger than the {limit}-byte limit"}


# ---- 2. uploads read where they lie ----

def test_zip_entries_are_read_from_disk_one_at_a_time(tmp_path, settings):
    """A zip on disk gives readers, not bytes: what import_dataset holds at once is one file
    (and the zip itself stays in Starlette's spooled file). Measuring memory would depend on the
    machine; this checks the structure that bounds it."""
    from server.services.uploads import content_bytes, read_zip

    path = tmp_path / "d.zip"
    path.write_bytes(make_zip({"images/a.png": png(1), "images/b.png": png(2), "masks/a.png": png(255, mode="L")}))
    with path.open("rb") as f:
        entries = read_zip(f, settings)
        assert [name for name, _ in entries] == ["images/a.png", "images/b.png", "masks/a.png"]
        assert all(callable(content) for _, content in entries)
        assert [content_bytes(c) for _, c in entries] == [png(1), png(2), png(255, mode="L")]
        assert content_bytes(entries[0][1]) == png(1)  # read again, the same bytes


def test_zip_and_files_uploads_import(client):
    data = make_zip({"images/z1.png": png(11), "masks/z1.png": png(255, mode="L"), "images/z2.png": png(12)})
    zipped = client.post("/api/v1/datasets", data={"name": "from zip"}, files={"archive": ("d.zip", data)})
    assert zipped.status_code == 201, zipped.text
    assert zipped.json()["counts"]["images"] == 2 and zipped.json()["counts"]["annotated"] == 1
    sent = client.post("/api/v1/datasets", data={"name": "from files"},
                       files=[("images", ("f1.png", png(13))), ("masks", ("f1.png", png(0, mode="L")))])
    assert sent.status_code == 201 and sent.json()["counts"]["annotated"] == 1, sent.text
    for r in (zipped, sent):
        assert client.delete(f"/api/v1/datasets/{r.json()['id']}").status_code == 204


# ---- 3. KMINE_MAX_FILES, not Starlette's 1000 ----

def test_file_mode_takes_max_files_and_refuses_more(client, settings):
    n = 1001  # one past Starlette's default limit on files in a form
    files = [("images", (f"i{i:04d}.png", png(i % 256))) for i in range(n)]
    with app_client(client, settings, max_files=n) as c:
        r = c.post("/api/v1/datasets", data={"name": "many files"}, files=files)
        assert r.status_code == 201, r.text[:500]
        assert r.json()["counts"]["images"] == n
        assert c.delete(f"/api/v1/datasets/{r.json()['id']}").status_code == 204
        r = c.post("/api/v1/datasets", data={"name": "too many"}, files=[*files, ("masks", ("i0000.png", png(0, mode="L")))])
        assert r.status_code == 413, r.text[:500]
        assert r.json()["detail"] == f"more than {n} files in one upload; at most {n} are accepted"


# ---- 4. hostile names shown plainly ----

def test_hostile_names_are_shown_plainly(client, settings):
    before = blob_files(settings)
    hostile = "images/../" + "\u202eevil\x1b[31m" + "x" * 500 + ".png"
    r = client.post("/api/v1/datasets", data={"name": "hostile"},
                    files={"archive": ("d.zip", make_zip({"images/a.png": png(), hostile: png()}))})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail.startswith("zip entry images/../?evil?[31mxxx") and "contains '..'" in detail
    assert "\\x" not in detail and "\\u" not in detail and len(detail) < 300
    # a damaged image: the message names the client's file, never the temporary one it was read from
    r = client.post("/api/v1/datasets", data={"name": "truncated"},
                    files={"archive": ("d.zip", make_zip({"images/a.png": png(7, 64, 64)[:60]}))})
    assert r.status_code == 422 and "images/a.png" in r.json()["detail"]
    assert tempfile.gettempdir() not in r.json()["detail"]
    assert blob_files(settings) == before


def test_shown_caps_and_neutralises():
    from kmine.text import shown
    from server.core.errors import BadInput
    from server.services.uploads import check_filename

    with pytest.raises(BadInput) as err:  # a NUL the HTTP client would percent-encode on its way
        check_filename("a\x00b'.png")
    assert str(err.value) == "file name a?b'.png is not a plain file name"

    assert shown("plain name.png") == "plain name.png"
    assert shown("a\nb\x00c\u202ed") == "a?b?c?d"
    assert shown("y" * 100, 10) == "y" * 9 + "…"


# ---- 5. nothing stored half-way ----

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from kmine.student import build_student, save_student

    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    save_student(build_student("timm-tf_efficientnet_lite0", pretrained=False), path, extra={"metrics": {"dice": 0.5}})
    return path


def test_model_upload_refused_by_the_database_leaves_no_file(db_session, migrated, checkpoint):
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from server.services.models import store_checkpoint

    refused = "refused by the database"
    db_session.execute(text(f"ALTER TABLE models ADD CONSTRAINT kmine_test_refuse CHECK (name <> '{refused}')"))
    db_session.commit()
    try:
        before = model_files(migrated)
        with checkpoint.open("rb") as f, pytest.raises(IntegrityError):
            store_checkpoint(db_session, migrated, f, "best.pt", None, refused)
        assert model_files(migrated) == before
    finally:
        db_session.rollback()
        db_session.execute(text("ALTER TABLE models DROP CONSTRAINT kmine_test_refuse"))
        db_session.commit()
    with checkpoint.open("rb") as f:
        model = store_checkpoint(db_session, migrated, f, "best.pt", None, "kept")
    assert model_files(migrated) - before == {f"upload-{model.sha256}.pt"}
    assert model.metrics == {"dice": 0.5}


def test_model_upload_with_a_nul_name_is_refused_and_leaves_no_file(client, settings, checkpoint):
    before = model_files(settings)
    r = client.post("/api/v1/models", data={"name": "a\x00b"}, files={"checkpoint": ("best.pt", checkpoint.read_bytes())})
    assert r.status_code == 422 and "control characters" in r.json()["detail"], r.text
    assert model_files(settings) == before


def test_deleting_datasets_leaves_no_orphan_blob(client, settings):
    shared = png(201, 12, 12)
    r = client.post("/api/v1/datasets", data={"name": "survivor"}, files=[("images", ("s.png", shared))])
    assert r.status_code == 201, r.text
    survivor = r.json()["id"]
    baseline = blob_files(settings)
    for cycle in range(3):
        files = [("images", ("own.png", png(100 + cycle, 12, 12))), ("images", ("s.png", shared)),
                 ("masks", ("own.png", png(255, 12, 12, mode="L")))]
        r = client.post("/api/v1/datasets", data={"name": f"cycle {cycle}"}, files=files)
        assert r.status_code == 201, r.text
        ds = r.json()["id"]
        items = client.get(f"/api/v1/datasets/{ds}/images").json()["items"]
        own = next(i for i in items if i["stem"] == "own")
        mask = np.zeros((12, 12), np.uint8)
        mask[: cycle + 3, :] = 255  # a human mask of its own (not the all-foreground ground truth)
        r = client.put(f"/api/v1/datasets/{ds}/images/{own['id']}/mask", files={"mask": ("m.png", png_of(mask))})
        assert r.status_code == 200, r.text
        assert len(blob_files(settings) - baseline) >= 3
        assert client.delete(f"/api/v1/datasets/{ds}").status_code == 204
        assert blob_files(settings) == baseline, cycle
    kept = client.get(f"/api/v1/datasets/{survivor}/images").json()["items"][0]
    assert client.get(f"/api/v1/datasets/{survivor}/images/{kept['id']}").content == shared


def png_of(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(mask).save(buf, format="PNG")
    return buf.getvalue()


def test_a_malformed_multipart_body_is_a_422_not_a_crash(client):
    """A part header the multipart parser cannot read (found by the schemathesis run) is the
    client's error: one line, 422."""
    body = b'--XYZ\r\nContent-Disposition: form-data; name="name"\r\n[bad header]\r\n\r\nx\r\n--XYZ--\r\n'
    r = client.post("/api/v1/datasets", content=body, headers={"Content-Type": "multipart/form-data; boundary=XYZ"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("invalid request: the multipart body cannot be read")
