"""Content-addressed file storage: blobs named by their sha256, behind one interface.

:class:`BlobStore` keeps the bytes of ``sha256`` at ``<root>/ab/cdef…`` on this machine: the
API's store, and the embedded worker's (it shares the API's data folder). :class:`HttpStore`
is a worker's store on another machine: the API's blobs reached over ``/api/v1/blobs`` with a
worker token, each verified against its sha256 and cached on the worker's own disk by hash, so
each blob crosses the network once. :func:`open_store` is the one place that chooses.

Writing the same bytes twice stores them once; the database holds only the hashes.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import BinaryIO, Protocol

from kmine.text import shown
from server.core.settings import Settings

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


class Storage(Protocol):
    """What the server, the worker and the predictor need of a store."""

    def put(self, data: bytes) -> tuple[str, bool]:
        """Store ``data``; (sha256, whether this call created the blob)."""

    def put_file(self, path: Path) -> tuple[str, bool]:
        """Store a file's bytes, streamed; (sha256, whether this call created the blob)."""

    def get(self, digest: str) -> bytes: ...

    def local_path(self, digest: str) -> Path:
        """A file on this machine holding the blob (fetched first where the store is remote);
        read it, never write it. FileNotFoundError when the store has no such blob."""

    def exists(self, digest: str) -> bool: ...

    def delete(self, digest: str) -> None: ...


def check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _HEX64.match(digest):
        raise ValueError(f"not a sha256 digest: {shown(digest)}")
    return digest


def copy_hashed(source: BinaryIO, target: BinaryIO) -> tuple[str, int]:
    """Copy ``source`` to ``target`` a MiB at a time; (sha256, bytes) of what was copied."""
    digest, size = hashlib.sha256(), 0
    while chunk := source.read(CHUNK):
        digest.update(chunk)
        target.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


class BlobStore:
    """Blobs in a folder on this machine."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / digest[:2] / digest[2:]

    def local_path(self, digest: str) -> Path:
        path = self.path(digest)
        if not path.is_file():
            raise FileNotFoundError(f"blob {digest[:12]}… is not in the store")
        return path

    def put(self, data: bytes) -> tuple[str, bool]:
        digest = hashlib.sha256(data).hexdigest()
        if self.exists(digest):
            return digest, False
        return self.receive([data], expected=digest)

    def put_file(self, path: Path) -> tuple[str, bool]:
        with open(path, "rb") as source:
            return self.receive(iter(lambda: source.read(CHUNK), b""))

    def receive(self, chunks, expected: str | None = None, limit: int | None = None) -> tuple[str, bool]:
        """Store the bytes ``chunks`` yields, hashed on the way (see :class:`BlobWriter`)."""
        writer = BlobWriter(self, expected, limit)
        try:
            for chunk in chunks:
                writer.write(chunk)
            return writer.finish()
        except BaseException:
            writer.abandon()
            raise

    def get(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def commit(self, tmp: str, digest: str) -> bool:
        """Rename a finished temporary file to the blob's place; whether the blob is new."""
        path = self.path(digest)
        if path.exists():
            Path(tmp).unlink(missing_ok=True)
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, path)
        return True


class BlobTooLarge(ValueError):
    """More bytes than the writer's limit."""


class BlobMismatch(ValueError):
    """The bytes do not hash to the sha256 they were sent as."""


class BlobWriter:
    """A blob arriving in pieces (a file, a download, a request body): hashed and written to a
    temporary file beside the store, and kept under its sha256 only when whole, so a blob
    appears entirely or not at all. ``expected``: the sha256 it must have; ``limit``: most bytes."""

    def __init__(self, store: BlobStore, expected: str | None = None, limit: int | None = None):
        self.store, self.expected, self.limit = store, expected, limit
        self.hash, self.size = hashlib.sha256(), 0
        store.root.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(dir=store.root, prefix=".tmp-")
        self.file = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.limit is not None and self.size > self.limit:
            raise BlobTooLarge(f"the blob is larger than {self.limit} bytes")
        self.hash.update(chunk)
        self.file.write(chunk)

    def finish(self) -> tuple[str, bool]:
        """(sha256, whether the blob is new); BlobMismatch, nothing kept, when not ``expected``."""
        self.file.close()
        digest = self.hash.hexdigest()
        if self.expected is not None and digest != self.expected:
            self.abandon()
            raise BlobMismatch("the bytes sent do not match their sha256")
        return digest, self.store.commit(self.tmp, digest)

    def abandon(self) -> None:
        self.file.close()
        Path(self.tmp).unlink(missing_ok=True)


class TransferError(RuntimeError):
    """The API did not give or take a blob."""


class HttpStore:
    """The API's blobs, for a worker on another machine: fetched once into ``cache`` (this
    machine's own :class:`BlobStore`) and verified, or sent up once.

    ``fetched``/``sent`` count the blobs that crossed the network, by digest (a job's inputs
    arrive once however often it reads them); each crossing is also appended to
    ``<cache>/../transfers.log`` (``get|put digest bytes``), the worker's record across restarts."""

    def __init__(self, api_url: str, token: str, cache: BlobStore, http=None, timeout: float = 60.0):
        import httpx

        base = api_url.rstrip("/")
        self.url = base if base.endswith("/api/v1") else base + "/api/v1"
        self.cache = cache
        self.http = http if http is not None else httpx.Client(timeout=timeout)  # ``http``: e.g. a test's client
        self.auth = {"Authorization": f"Bearer {token}"}
        self.fetched: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self.log = cache.root.parent / "transfers.log"

    def _blob_url(self, digest: str) -> str:
        return f"{self.url}/blobs/{check_digest(digest)}"

    def local_path(self, digest: str) -> Path:
        if self.cache.exists(digest):
            return self.cache.path(digest)
        with self.http.stream("GET", self._blob_url(digest), headers=self.auth) as r:
            if r.status_code == 404:
                raise FileNotFoundError(f"blob {digest[:12]}… is not in the API's store")
            _raise_for(r, "fetch")
            try:
                self.cache.receive(r.iter_bytes(CHUNK), expected=digest)
            except BlobMismatch:
                raise TransferError(f"blob {digest[:12]}… arrived corrupted (its sha256 differs)") from None
        self.fetched[digest] += 1
        self._note("get", digest, self.cache.path(digest).stat().st_size)
        return self.cache.path(digest)

    def get(self, digest: str) -> bytes:
        return self.local_path(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        r = self.http.head(self._blob_url(digest), headers=self.auth)
        if r.status_code == 404:
            return False
        _raise_for(r, "look up")
        return True

    def put(self, data: bytes) -> tuple[str, bool]:
        digest, created = self.cache.put(data)
        return digest, self._send(digest)

    def put_file(self, path: Path) -> tuple[str, bool]:
        digest, _ = self.cache.put_file(path)
        return digest, self._send(digest)

    def _send(self, digest: str) -> bool:
        """Send a cached blob up unless the API has it; whether it was sent."""
        if self.exists(digest):
            return False
        with open(self.cache.path(digest), "rb") as f:
            r = self.http.put(self._blob_url(digest), content=_file_chunks(f),
                              headers={**self.auth, "Content-Type": "application/octet-stream"})
        _raise_for(r, "send")
        self.sent[digest] += 1
        self._note("put", digest, self.cache.path(digest).stat().st_size)
        return r.status_code == 201

    def _note(self, way: str, digest: str, size: int) -> None:
        with open(self.log, "a") as f:
            f.write(f"{way} {digest} {size}\n")

    def delete(self, digest: str) -> None:
        r = self.http.delete(self._blob_url(digest), headers=self.auth)
        if r.status_code not in (404, 409):  # 409: something still refers to it, so it stays
            _raise_for(r, "delete")
        self.cache.delete(digest)


def _file_chunks(f: BinaryIO):
    while chunk := f.read(CHUNK):
        yield chunk


def _raise_for(response, what: str) -> None:
    if response.status_code >= 400:
        try:
            detail = response.read() and response.json().get("detail")
        except Exception:
            detail = None
        raise TransferError(f"the API refused to {what} a blob: HTTP {response.status_code}"
                            + (f" ({str(detail)[:200]})" if detail else ""))


def copy_out(store: Storage, digest: str, target: Path) -> None:
    """The blob as the file ``target``: a hard link where the store's copy is on this disk."""
    source = store.local_path(digest)
    try:
        target.hardlink_to(source)
    except OSError:
        shutil.copyfile(source, target)


def local_store(settings: Settings) -> BlobStore:
    """The blobs in this installation's own data folder (the API's store)."""
    return BlobStore(settings.blobs_dir)


def open_store(settings: Settings) -> Storage:
    """The store a job or a request works with: the API's over HTTP for a worker given
    ``KMINE_API_URL`` (cached in its own data folder), else the local folder."""
    local = local_store(settings)
    if settings.api_url:
        return HttpStore(settings.api_url, settings.worker_token, local)
    return local
