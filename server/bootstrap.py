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
    from server.core.storage import local_store
    from server.services.datasets import create_split, import_dataset

    with session_scope(settings) as session:
        if session.get(Meta, "demo_imported") is not None:
            return None
        entries = []
        for folder in ("images", "masks"):
            for path in sorted((source / folder).iterdir()) if (source / folder).is_dir() else []:
                if path.is_file() and not path.name.startswith("."):
                    entries.append((f"{folder}/{path.name}", path.read_bytes()))
        dataset, _ = import_dataset(session, local_store(settings), settings, Path(source).name, entries)
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


def start_demo(settings: Settings, echo=print) -> None:
    """First start only: import the demo dataset and queue a short training on it."""
    from server.core.models import Split
    from server.services.jobs import submit

    dataset_id = import_demo(settings, echo=echo)
    if dataset_id is None:
        return
    with session_scope(settings) as session:
        split_id = session.scalar(select(Split.id).where(Split.dataset_id == dataset_id))
        job = submit(session, settings, "train", split_id, None,
                     # Chest X-rays: one box per lung prompts SAM far better than one around both.
                     {"schedule": "continuous", "max_epochs": 6, "size": 224, "batch_size": 4, "lr": 3e-4,
                      "prompts": {"kinds": "points+box", "per_component": True}})
        echo(f"kmine: queued demo training job {job.id}; its model becomes the dataset's active model")
