"""A dataset + split from the database and file store, as the folder kmine reads."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from kmine.data import Split as KSplit
from kmine.data import save_split
from server.core.labels import label_masks
from server.core.models import Image, Split, SplitMember
from server.core.storage import Storage, copy_out


def materialise(session: Session, store: Storage, split_id: int, folder: Path) -> tuple[Path, Path, dict[str, int]]:
    """Write ``images/``, ``masks/`` (the current label of each image) and ``split.json``
    under ``folder``; returns (data folder, split path, image id by stem)."""
    split = session.get(Split, split_id)
    if split is None:
        raise ValueError(f"split {split_id} no longer exists")
    data = folder / "data"
    if data.exists():
        shutil.rmtree(data)
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    parts: dict[str, list[str]] = {"labelled": [], "unlabelled": [], "val": [], "test": []}
    ids: dict[str, int] = {}
    rows = session.execute(select(SplitMember.part, Image).join(Image, Image.id == SplitMember.image_id)
                           .where(SplitMember.split_id == split_id)).all()
    labels = label_masks(session, [image.id for _, image in rows])  # the rule the API shows
    for part, image in rows:
        parts[part].append(image.stem)
        ids[image.stem] = image.id
        suffix = Path(image.filename).suffix.lower()
        copy_out(store, image.sha256, data / "images" / f"{image.stem}{suffix}")
        if image.id in labels:
            copy_out(store, labels[image.id].sha256, data / "masks" / f"{image.stem}.png")
    train = sorted(parts["labelled"] + parts["unlabelled"])
    ksplit = KSplit(train=train, val=sorted(parts["val"]), test=sorted(parts["test"]), labelled=sorted(parts["labelled"]),
                    seed=split.seed, labelled_fraction=len(parts["labelled"]) / max(1, len(train)),
                    source={"split_id": split.id, "dataset_id": split.dataset_id})
    split_path = folder / "split.json"
    save_split(ksplit, split_path)
    return data, split_path, ids

