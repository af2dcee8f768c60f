"""Models: activating one per dataset, and storing an uploaded checkpoint after checking it."""

from __future__ import annotations

import hashlib
import os
import tempfile

from sqlalchemy import update
from sqlalchemy.orm import Session

from kmine.weights import file_sha256
from server.core.errors import BadInput
from server.core.models import Dataset, Model, clean_json
from server.core.settings import Settings
from server.services.datasets import CONTROL_CHARS, check_name


def activate(session: Session, model: Model) -> Model:
    """Make ``model`` the active model of its dataset (the others of that dataset stop being)."""
    session.execute(update(Model).where(Model.dataset_id == model.dataset_id).values(active=False))
    model.active = True
    session.commit()
    return model


def store_checkpoint(session: Session, settings: Settings, data: bytes, filename: str | None,
                     dataset_id: int | None, name: str = "") -> Model:
    """A :class:`Model` for an uploaded student checkpoint, kept as ``models/upload-<sha256>.pt``.

    The bytes are loaded with ``torch.load(weights_only=True)`` (no pickled code runs) and as a
    student before anything is kept; 404 for an unknown dataset, 422 for what is not a kmine
    student checkpoint, 503 when the file kept does not read back intact."""
    from kmine.student import load_student, read_student_checkpoint

    if dataset_id is not None and session.get(Dataset, dataset_id) is None:
        raise BadInput(f"dataset {dataset_id} not found", 404)
    fallback = " ".join(CONTROL_CHARS.sub(" ", filename or "").split())[:200] or "uploaded"
    name = check_name(name, "model name") if name else fallback
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=settings.models_dir, suffix=".upload")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    try:
        payload = read_student_checkpoint(tmp)  # torch.load(weights_only=True): no pickled code runs
        load_student(tmp)
    except Exception as err:
        os.unlink(tmp)
        raise BadInput(f"not a loadable kmine student checkpoint: {err.__class__.__name__}: {str(err)[:300]}") from None
    digest = hashlib.sha256(data).hexdigest()
    final = settings.models_dir / f"upload-{digest}.pt"
    os.replace(tmp, final)
    if file_sha256(final) != digest:  # the disk did not keep what was written
        final.unlink(missing_ok=True)
        raise BadInput("the checkpoint did not read back intact after it was stored; try again", 503)
    extra = payload.get("extra", {}) if isinstance(payload, dict) else {}
    model = Model(dataset_id=dataset_id, name=name, config=clean_json(extra.get("config", {})),
                  metrics=clean_json(extra.get("metrics", {})), checkpoint_path=str(final), sha256=digest)
    session.add(model)
    session.commit()
    return model
