"""A small client of the kmine HTTP API (``/api/v1``): a base URL and a Bearer token.

Every failure becomes an :class:`ApiError` whose message a person can read (the API's
``detail``, or what went wrong on the way), never a stack trace."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx


class ApiError(Exception):
    """A readable message for a failed API call."""


TokenSource = Callable[[], str]


class ApiClient:
    def __init__(self, api_url: str, token: str | TokenSource, timeout: float = 300.0,
                 http: httpx.Client | None = None):
        """``token``: the API token, or a function answering the token of whoever the call is
        made for (the web UI's signed-in visitor), asked at every call; it raises
        :class:`ApiError` when there is none. ``http``: an HTTP client to send the calls through
        instead of a new one (e.g. an in-process ``TestClient`` of the server); it must already
        carry ``api_url`` as its base URL and, for a fixed token, the token in its
        ``Authorization`` header."""
        self.api_url = api_url.rstrip("/")
        if not self.api_url.endswith("/api/v1"):
            self.api_url += "/api/v1"
        self._token = token if callable(token) else None
        if http is None:
            headers = {} if callable(token) else {"Authorization": f"Bearer {token}"}
            http = httpx.Client(base_url=self.api_url, headers=headers, timeout=timeout)
        self._http = http

    def _auth(self) -> dict[str, str]:
        """The per-call header of a client acting for whoever is signed in (none for a fixed token:
        its client carries it)."""
        return {"Authorization": f"Bearer {self._token()}"} if self._token else {}

    # ---- plumbing ----
    @contextmanager
    def _transport(self, method: str, path: str) -> Iterator[None]:
        """A failure on the way (no answer in time, no connection) as an :class:`ApiError`."""
        try:
            yield
        except httpx.TimeoutException:
            raise ApiError(f"the server at {self.api_url} did not answer in time ({method} {path})") from None
        except httpx.TransportError as err:
            raise ApiError(f"cannot reach the server at {self.api_url} ({transport_problem(err)})") from None

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = self._auth()
        with self._transport(method, path):
            response = self._http.request(method, path, headers=headers, **kwargs)
        if response.status_code >= 400:
            raise ApiError(error_message(response))
        return response

    def download(self, path: str, folder: Path, params: dict | None = None) -> Path:
        """GET ``path`` into ``folder`` chunk by chunk (never whole in memory), under the file
        name the server gives; returns the written file."""
        headers = self._auth()
        with self._transport("GET", path), self._http.stream("GET", path, params=params, headers=headers) as response:
            if response.status_code >= 400:
                response.read()
                raise ApiError(error_message(response))
            target = Path(folder) / attachment_name(response, Path(path).name)
            with open(target, "wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        return target

    def json(self, method: str, path: str, **kwargs) -> Any:
        return self.request(method, path, **kwargs).json()

    # ---- what the server offers ----
    def options(self) -> dict:
        """The choices a client may offer (prompt kinds, teachers, schedules, modes, ...) and the
        server's limits: the UI shows these instead of lists of its own."""
        return self.json("GET", "/options")

    def me(self) -> dict:
        """Who the token is: its ``name`` and ``role`` (admin, user, worker)."""
        return self.json("GET", "/tokens/me")

    # ---- datasets and splits ----
    def datasets(self) -> list[dict]:
        return self.json("GET", "/datasets")

    def dataset(self, dataset_id: int) -> dict:
        return self.json("GET", f"/datasets/{dataset_id}")

    def upload_dataset(self, name: str, filename: str, data: bytes) -> dict:
        return self.json("POST", "/datasets", data={"name": name}, files={"archive": (filename, data, "application/zip")})

    def images(self, dataset_id: int, offset: int = 0, limit: int = 500) -> dict:
        return self.json("GET", f"/datasets/{dataset_id}/images", params={"offset": offset, "limit": limit})

    def image_png(self, dataset_id: int, image_id: int) -> bytes:
        return self.request("GET", f"/datasets/{dataset_id}/images/{image_id}").content

    def mask_png(self, dataset_id: int, image_id: int, which: str = "mask") -> bytes | None:
        """``which``: mask | ground-truth | pseudo-label | prediction; None when there is none."""
        try:
            return self.request("GET", f"/datasets/{dataset_id}/images/{image_id}/{which}").content
        except ApiError as err:
            if " has no " in str(err):
                return None
            raise

    def put_mask(self, dataset_id: int, image_id: int, png: bytes, origin: str | None = None,
                 confirm_empty: bool = False) -> dict:
        """Save a new version of the image's label; the answer says which label it ``replaced``.
        ``origin``: what the mask was made from (sam, brush, student, pseudo_label, file); an
        empty mask is refused unless ``confirm_empty``."""
        data = {"confirm_empty": "true" if confirm_empty else "false", **({"origin": origin} if origin else {})}
        return self.json("PUT", f"/datasets/{dataset_id}/images/{image_id}/mask", data=data,
                         files={"mask": ("mask.png", png, "image/png")})

    def mask_versions(self, dataset_id: int, image_id: int) -> dict:
        """The image's label versions, newest first, and which one is its label (``label_id``)."""
        return self.json("GET", f"/datasets/{dataset_id}/images/{image_id}/masks")

    def undo_mask(self, dataset_id: int, image_id: int) -> dict:
        """Undo the image's newest saved label: ``undone`` (kept, marked reverted) and ``label`` now."""
        return self.json("POST", f"/datasets/{dataset_id}/images/{image_id}/mask/undo")

    def export_labels(self, dataset_id: int, fmt: str, folder: Path, include_images: bool = False) -> Path:
        """The dataset's current labels downloaded into ``folder``: ``fmt`` masks (a zip of
        PNGs and labels.json) or coco (COCO JSON); returns the file."""
        params = {"format": fmt, "include_images": "true" if include_images else "false"}
        return self.download(f"/datasets/{dataset_id}/export", folder, params)

    def splits(self, dataset_id: int) -> list[dict]:
        return self.json("GET", f"/datasets/{dataset_id}/splits")

    def split(self, split_id: int) -> dict:
        return self.json("GET", f"/splits/{split_id}")

    def create_split(self, dataset_id: int, **fractions) -> dict:
        return self.json("POST", f"/datasets/{dataset_id}/splits", json=fractions)

    def move(self, split_id: int, image_ids: list[int], to: str) -> dict:
        return self.json("POST", f"/splits/{split_id}/move", json={"image_ids": image_ids, "to": to})

    # ---- models, prediction ----
    def models(self, dataset_id: int | None = None) -> list[dict]:
        return self.json("GET", "/models", params={"dataset_id": dataset_id} if dataset_id else None)

    def activate_model(self, model_id: int) -> dict:
        """Make the model its dataset's active one (prediction and labelling use it)."""
        return self.json("POST", f"/models/{model_id}/activate")

    def predict(self, image_name: str, image: bytes, mode: str = "student", model_id: int | None = None,
                prompts: str | None = None, truth: bytes | None = None) -> dict:
        data = {"mode": mode}
        if model_id:
            data["model_id"] = str(model_id)
        if prompts:
            data["prompts"] = prompts
        files = {"image": (image_name, image)}
        if truth is not None:
            files["mask"] = ("truth.png", truth)
        return self.json("POST", "/predict", data=data, files=files)

    def sam(self, dataset_id: int, image_id: int, points: list | None = None, point_labels: list | None = None,
            box: list | None = None, teacher: str | None = None) -> dict:
        """SAM's mask for clicked points (1 foreground, 0 background) and/or a box on a dataset image."""
        body = {"points": points or None, "point_labels": point_labels or None, "box": box, "teacher": teacher}
        return self.json("POST", f"/datasets/{dataset_id}/images/{image_id}/sam",
                         json={k: v for k, v in body.items() if v is not None})

    def sam_mask(self, dataset_id: int, image_id: int, body: dict) -> dict:
        """SAM's mask for boxes and points (``boxes``, ``points``, ``point_labels``, ``previous``:
        the last answer's ``logits_token``) as a 1-bit PNG: what a labelling canvas asks for."""
        return self.json("POST", f"/datasets/{dataset_id}/images/{image_id}/sam/mask", json=body)

    def candidates(self, split_id: int, model_id: int | None = None) -> dict:
        """The split's unlabelled images, most student/SAM disagreement first."""
        return self.json("GET", f"/splits/{split_id}/candidates", params={"model_id": model_id} if model_id else None)

    # ---- jobs ----
    def jobs(self, limit: int = 50) -> list[dict]:
        return self.json("GET", "/jobs", params={"limit": limit})

    def job(self, job_id: int) -> dict:
        return self.json("GET", f"/jobs/{job_id}")

    def submit(self, kind: str, split_id: int | None = None, config: dict | None = None,
               model_id: int | None = None) -> dict:
        body: dict[str, Any] = {"kind": kind, "config": config or {}}
        if split_id:
            body["split_id"] = split_id
        if model_id:
            body["model_id"] = model_id
        return self.json("POST", "/jobs", json=body)

    def cancel(self, job_id: int) -> dict:
        return self.json("POST", f"/jobs/{job_id}/cancel")


def transport_problem(err: httpx.TransportError) -> str:
    """What went wrong on the way, in words rather than an exception's name."""
    if isinstance(err, httpx.ConnectError):
        return "nothing answers at that address"
    if isinstance(err, httpx.RemoteProtocolError):
        return "the connection was closed before an answer came"
    return "the connection failed"


def attachment_name(response: httpx.Response, default: str) -> str:
    """The file name of a ``Content-Disposition: attachment; filename=…`` answer, reduced to a
    plain name (no folders), else ``default``."""
    found = re.search(r'filename="?([^";]+)"?', response.headers.get("content-disposition", ""))
    name = Path(found.group(1)).name if found else ""
    return name if name and name not in (".", "..") else default


def error_message(response: httpx.Response) -> str:
    """The API's ``detail`` (a string, or a validation list) as one readable line."""
    status = response.status_code
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):
        detail = "; ".join(f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg', d)}" for d in detail)
    if not detail:
        detail = response.reason_phrase or "error"
    if status == 401:
        return f"Not signed in: {detail} (sign in again with a valid API token)"
    return f"{detail} (HTTP {status})"
