"""Models: activating one per dataset, and storing an uploaded checkpoint after checking it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import update
from sqlalchemy.orm import Session

from kmine.weights import file_sha256
from server.core.errors import BadInput
from server.core.models import Dataset, Model, clean_json
from server.core.settings import Settings
from server.core.storage import copy_hashed
from server.services.datasets import CONTROL_CHARS, check_name


def activate(session: Session, model: Model) -> Model:
    """Make ``model`` the active model of its dataset (the others of that dataset stop being)."""
    session.execute(update(Model).where(Model.dataset_id == model.dataset_id).values(active=False))
    model.active = True
    session.commit()
    return model


def store_checkpoint(session: Session, settings: Settings, source: BinaryIO, filename: str | None,
                     dataset_id: int | None, name: str = "") -> Model:
    """A :class:`Model` for an uploaded student checkpoint, kept as ``models/upload-<sha256>.pt``.

    ``source`` is copied in pieces (hashed on the way) to a temporary file beside the models,
    which is loaded with ``torch.load(weights_only=True)`` (no pickled code runs) and as a
    student before anything is kept; it takes its final name only once its row is committed,
    and is removed on any failure. 404 for an unknown dataset, 422 for what is not a kmine
    student checkpoint, 503 when the file written does not read back intact."""
    if dataset_id is not None and session.get(Dataset, dataset_id) is None:
        raise BadInput(f"dataset {dataset_id} not found", 404)
    fallback = " ".join(CONTROL_CHARS.sub(" ", filename or "").split())[:200] or "uploaded"
    name = check_name(name, "model name") if name else fallback
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=settings.models_dir, prefix=".upload-", suffix=".pt")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            digest, _ = copy_hashed(source, f)
        if file_sha256(tmp) != digest:  # the disk did not keep what was written
            raise BadInput("the checkpoint did not read back intact after it was stored; try again", 503)
        payload = _checked_checkpoint(tmp)
        final = settings.models_dir / f"upload-{digest}.pt"
        extra = payload.get("extra", {}) if isinstance(payload, dict) else {}
        model = Model(dataset_id=dataset_id, name=name, config=clean_json(extra.get("config", {})),
                      metrics=clean_json(extra.get("metrics", {})), checkpoint_path=str(final), sha256=digest)
        session.add(model)
        session.commit()
    except BaseException:
        session.rollback()
        tmp.unlink(missing_ok=True)
        raise
    try:
        os.replace(tmp, final)  # the same bytes uploaded twice: one file, two rows
    except BaseException:  # no row without its file either
        tmp.unlink(missing_ok=True)
        session.delete(model)
        session.commit()
        raise
    return model


def _checked_checkpoint(path: Path) -> dict:
    """The checkpoint's payload, once it loads as a kmine student; 422 otherwise."""
    from kmine.student import load_student, read_student_checkpoint

    try:
        payload = read_student_checkpoint(path)  # torch.load(weights_only=True): no pickled code runs
        load_student(path)
    except Exception as err:
        problem = str(err).replace(str(path), "the upload")[:300]  # the temporary file's path is no one's business
        raise BadInput(f"not a loadable kmine student checkpoint: {err.__class__.__name__}: {problem}") from None
    return payload
