"""A dataset's current labels, exported (``GET …/datasets/{id}/export``, ``kmine export``).

Each annotated image contributes its label (:mod:`server.core.labels`: its newest un-undone
human mask, else its newest ground truth) with where it came from and its *version*: the
1-based place of that mask among the image's label versions (human and ground-truth masks,
undone ones included, oldest first), as ``GET …/masks`` lists them. Unannotated images get no
mask and no annotation (COCO still lists them under ``images``, so the file names every image
of the dataset).

Memory stays bounded: images are read from the database a chunk at a time and masks one at a
time, straight into the output file (a COCO file is written item by item).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.core.labels import LABEL_KINDS, label_masks
from server.core.models import Dataset, Image, Mask, utcnow
from server.core.storage import BlobStore

_CHUNK = 500  # images per database read
CATEGORY = {"id": 1, "name": "foreground", "supercategory": "foreground"}  # masks are binary: one category


@dataclass(frozen=True)
class Labelled:
    """One image with its current label (None when unannotated) and that label's version."""

    image: Image
    mask: Mask | None
    version: int | None


def media_type(fmt: str) -> str:
    return "application/zip" if fmt == "masks" else "application/json"


def file_name(dataset: Dataset, fmt: str) -> str:
    return f"kmine-dataset-{dataset.id}-{fmt}." + ("zip" if fmt == "masks" else "json")


def export_to_temp(session: Session, store: BlobStore, dataset: Dataset, fmt: str,
                   include_images: bool = False) -> Path:
    """The export written to a new temporary file (the caller removes it when sent)."""
    fd, name = tempfile.mkstemp(prefix="kmine-export-", suffix=Path(file_name(dataset, fmt)).suffix)
    os.close(fd)
    try:
        write_export(session, store, dataset, fmt, Path(name), include_images)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def write_export(session: Session, store: BlobStore, dataset: Dataset, fmt: str, path: Path,
                 include_images: bool = False) -> None:
    """Write the dataset's export in ``fmt`` (masks, coco) to ``path``."""
    if fmt == "masks":
        write_masks_zip(session, store, dataset, path, include_images)
    else:
        with open(path, "w", encoding="utf-8") as out:
            write_coco(session, store, dataset, out)


def labelled_images(session: Session, dataset_id: int) -> Iterator[Labelled]:
    """Every image of the dataset in stem order, with its label and the label's version."""
    last = ""
    while True:
        images = session.scalars(select(Image).where(Image.dataset_id == dataset_id, Image.stem > last)
                                 .order_by(Image.stem).limit(_CHUNK)).all()
        if not images:
            return
        ids = [i.id for i in images]
        labels = label_masks(session, ids)
        versions = label_versions(session, labels)
        for image in images:
            mask = labels.get(image.id)
            yield Labelled(image, mask, versions.get(mask.id) if mask else None)
        last = images[-1].stem


def label_versions(session: Session, labels: dict[int, Mask]) -> dict[int, int]:
    """Each label's version (by mask id): how many label versions of its image, undone ones
    included, have an id up to its own."""
    rows = session.execute(select(Mask.image_id, Mask.id).where(Mask.image_id.in_(list(labels)),
                                                                Mask.kind.in_(LABEL_KINDS))).all()
    versions = {label.id: 0 for label in labels.values()}
    for image_id, mask_id in rows:
        label = labels[image_id]
        if mask_id <= label.id:
            versions[label.id] += 1
    return versions


def label_record(item: Labelled) -> dict:
    """What labels.json and each COCO annotation say about a label."""
    assert item.mask is not None
    mask = item.mask
    return {"mask_id": mask.id, "kind": mask.kind, "origin": mask.origin, "version": item.version,
            "saved_by": mask.saved_by, "created_at": mask.created_at.isoformat()}


def write_masks_zip(session: Session, store: BlobStore, dataset: Dataset, path: Path, include_images: bool) -> None:
    """``masks/<stem>.png`` per annotated image (the stored label PNG: 0/255, the image's size),
    ``labels.json`` and, with ``include_images``, ``images/<file name>`` as uploaded."""
    records, unannotated = [], []
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:  # PNGs are compressed already
        for item in labelled_images(session, dataset.id):
            if include_images:
                z.writestr(f"images/{item.image.filename}", store.get(item.image.sha256))
            if item.mask is None:
                unannotated.append(item.image.stem)
                continue
            z.writestr(f"masks/{item.image.stem}.png", store.get(item.mask.sha256))
            records.append({"stem": item.image.stem, "image_id": item.image.id, **label_record(item)})
        summary = {"dataset": {"id": dataset.id, "name": dataset.name}, "exported_at": utcnow().isoformat(),
                   "labels": records, "unannotated": unannotated}
        z.writestr("labels.json", json.dumps(summary, indent=1), compress_type=zipfile.ZIP_DEFLATED)


def write_coco(session: Session, store: BlobStore, dataset: Dataset, out: IO[str]) -> None:
    """COCO JSON: every image, one category, one RLE annotation per annotated image. Two passes
    over the images (their rows, then their masks) so nothing grows with the dataset but ids."""
    info = {"description": f"kmine dataset {dataset.name} (#{dataset.id}): current labels",
            "date_created": utcnow().isoformat()}
    head = json.dumps({"info": info, "licenses": [], "categories": [CATEGORY]})
    out.write(head[:-1] + ',\n"images": [')  # the object left open for the two streamed lists
    _write_items(out, ({"id": i.image.id, "file_name": i.image.filename, "width": i.image.width,
                        "height": i.image.height} for i in labelled_images(session, dataset.id)))
    out.write('],\n"annotations": [')
    _write_items(out, (coco_annotation(item, mask, read_mask(store, mask))
                       for item in labelled_images(session, dataset.id) if (mask := item.mask) is not None))
    out.write("]}\n")


def _write_items(out: IO[str], items: Iterator[dict]) -> None:
    for n, item in enumerate(items):
        out.write(("," if n else "") + "\n" + json.dumps(item))


def read_mask(store: BlobStore, mask: Mask) -> np.ndarray:
    """A stored mask as a bool (H, W) array (foreground >= 128)."""
    with PILImage.open(io.BytesIO(store.get(mask.sha256))) as im:
        return np.asarray(im.convert("L")) >= 128


def coco_annotation(item: Labelled, mask: Mask, pixels: np.ndarray) -> dict:
    """``item``'s annotation: ``mask`` is its label, ``pixels`` that label read."""
    return {"id": mask.id, "image_id": item.image.id, "category_id": CATEGORY["id"],
            "segmentation": {"size": list(pixels.shape), "counts": rle_counts(pixels)},
            "area": int(pixels.sum()), "bbox": bbox(pixels), "iscrowd": 1, "kmine": label_record(item)}


def rle_counts(pixels: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE of a bool (H, W) mask: run lengths over the pixels in column-major
    (Fortran) order, starting with a background run (0 when the first pixel is foreground)."""
    flat = pixels.ravel(order="F")
    if flat.size == 0:
        return []
    starts = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate(([0], starts, [flat.size]))).tolist()
    return [0, *runs] if flat[0] else runs


def bbox(pixels: np.ndarray) -> list[int]:
    """COCO's [x, y, width, height] of the foreground; [0, 0, 0, 0] for an empty mask."""
    rows, cols = np.flatnonzero(pixels.any(axis=1)), np.flatnonzero(pixels.any(axis=0))
    if rows.size == 0:
        return [0, 0, 0, 0]
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]
