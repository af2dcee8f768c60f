"""What a start does before serving: migrations, the first admin token, the demo dataset."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import select

from server.core.db import session_scope, upgrade_database
from server.core.models import Dataset, Meta
from server.core.security import ensure_admin_token
from server.core.settings import Settings

log = logging.getLogger(__name__)


def prepare(settings: Settings, migrate: bool = True, echo=print) -> None:
    settings.check_production()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if migrate:
        upgrade_database(settings)
    with session_scope(settings) as session:
        token = ensure_admin_token(session, settings)
    if token:
        echo(f"kmine: created the admin API token; it is in {settings.admin_token_file} "
             f"(send it as 'Authorization: Bearer <token>')")


def import_demo(settings: Settings, echo=print) -> int | None:
    """Import the demo dataset (covid-qu-ex-sample) once per installation; returns its id."""
    source = settings.resolved_demo_dataset()
    if source is None:
        return None
    from server.core.storage import BlobStore
    from server.services.datasets import create_split, import_dataset

    with session_scope(settings) as session:
        if session.get(Meta, "demo_imported") is not None:
            return None
        entries = []
        for folder in ("images", "masks"):
            for path in sorted((source / folder).iterdir()) if (source / folder).is_dir() else []:
                if path.is_file() and not path.name.startswith("."):
                    entries.append((f"{folder}/{path.name}", path.read_bytes()))
        dataset, _ = import_dataset(session, BlobStore(settings.blobs_dir), settings, Path(source).name, entries)
        split = create_split(session, dataset, 0.17, 0.17, 0.5, 0)
        session.add(Meta(key="demo_imported", value=str(dataset.id)))
        echo(f"kmine: imported the demo dataset {source} as dataset {dataset.id} with split {split.id}")
        return dataset.id


def demo_dataset_id(settings: Settings) -> int | None:
    with session_scope(settings) as session:
        meta = session.get(Meta, "demo_imported")
        if meta is None:
            return None
        return session.scalar(select(Dataset.id).where(Dataset.id == int(meta.value)))
