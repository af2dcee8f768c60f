"""Datasets: importing uploads in one transaction, labels, splits."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kmine.data import SplitError, make_split, mask_png
from kmine.text import shown
from server.core.errors import BadInput
from server.core.labels import LABEL_KINDS, annotated_count, annotated_image_ids, label_mask, label_masks, latest_mask
from server.core.models import SPLIT_PARTS, Dataset, Image, Mask, Model, Split, SplitMember, utcnow
from server.core.references import blobs_in_use
from server.core.settings import Settings
from server.core.storage import BlobStore
from server.services.uploads import Content, classify, content_bytes, decode_image, decode_mask

CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def check_name(name: str | None, what: str = "dataset name") -> str:
    """``name`` stripped; refuses an empty one, one over 200 characters or one with control characters."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise BadInput(f"{what} must be 1 to 200 characters")
    if CONTROL_CHARS.search(name):
        raise BadInput(f"{what} must not contain control characters (tabs, line breaks, NUL)")
    return name


def import_dataset(session: Session, store: BlobStore, settings: Settings, name: str,
                   entries: Sequence[tuple[str, Content]]) -> tuple[Dataset, list[str]]:
    """Create a dataset from ``images/…`` and ``masks/…`` entries. Everything is checked
    before anything is stored; on any refusal the blobs written by this call are removed
    and nothing reaches the database. An entry given as a reader is read twice (to check it,
    to store it) and never kept: one file at a time is in memory. Returns the dataset and
    ignored entry names."""
    name = check_name(name)
    images, masks, ignored = classify(entries)
    if not images:
        raise BadInput("no images found: put them under images/ (and masks, optional, under masks/ with the same stems)")
    if len(images) + len(masks) > settings.max_files:
        raise BadInput(f"{len(images) + len(masks)} files; at most {settings.max_files} are accepted", 413)
    orphans = sorted(set(masks) - set(images))
    if orphans:
        raise BadInput(f"masks without an image of the same stem: {', '.join(orphans[:5])}")
    checked = []
    for stem in sorted(images):
        filename, content = images[stem]
        decoded = decode_image(content_bytes(content), f"images/{filename}", settings)
        mask = None
        if stem in masks:
            mask_name, mask_content = masks[stem]
            pixels = decode_mask(content_bytes(mask_content), f"masks/{mask_name}", (decoded.width, decoded.height),
                                 settings)
            mask = (mask_png(pixels), int(pixels.sum()))
        checked.append((stem, filename, content, decoded, mask))
    created: list[str] = []
    try:
        dataset = Dataset(name=name)
        session.add(dataset)
        for stem, filename, content, decoded, mask in checked:
            digest, new = store.put(content_bytes(content))
            if new:
                created.append(digest)
            image = Image(stem=stem, filename=filename, sha256=digest, width=decoded.width, height=decoded.height)
            dataset.images.append(image)
            if mask is not None:
                mdigest, new = store.put(mask[0])
                if new:
                    created.append(mdigest)
                image.masks.append(Mask(kind="ground_truth", sha256=mdigest, origin="imported", pixels=mask[1]))
        session.commit()
    except BaseException:
        session.rollback()
        for digest in created:
            store.delete(digest)
        raise
    return dataset, ignored


def counts(session: Session, dataset: Dataset) -> dict:
    n_images = session.scalar(select(func.count(Image.id)).where(Image.dataset_id == dataset.id)) or 0
    annotated = annotated_count(session, dataset.id)
    by_kind = dict(session.execute(
        select(Mask.kind, func.count(Mask.id)).join(Image).where(Image.dataset_id == dataset.id).group_by(Mask.kind)).all())
    return {"images": n_images, "annotated": annotated, "unannotated": n_images - annotated, "masks": by_kind}


def active_model_id(session: Session, dataset_id: int) -> int | None:
    return session.scalar(select(Model.id).where(Model.dataset_id == dataset_id, Model.active.is_(True)))


def image_page(session: Session, dataset_id: int, offset: int, limit: int) -> tuple[int, list[Image], set[int]]:
    """(total, the page's images in stem order, ids of the annotated ones (with a mask) among them)."""
    total = session.scalar(select(func.count(Image.id)).where(Image.dataset_id == dataset_id)) or 0
    images = session.scalars(select(Image).where(Image.dataset_id == dataset_id).order_by(Image.stem)
                             .offset(offset).limit(limit)).all()
    return total, list(images), set(label_masks(session, [i.id for i in images]))


def image_png(store: BlobStore, image: Image) -> bytes:
    """The stored image as PNG bytes (a PNG upload as it is, other formats converted)."""
    from PIL import Image as PILImage

    data = store.get(image.sha256)
    if image.filename.lower().endswith(".png"):
        return data
    with PILImage.open(io.BytesIO(data)) as im:
        buf = io.BytesIO()
        im.save(buf, format="PNG")
    return buf.getvalue()


def delete_dataset(session: Session, store: BlobStore, dataset: Dataset) -> None:
    """The dataset with its images, masks and splits, then each of its blobs that no row left
    references (the same bytes may be an image or a mask of another dataset: those stay)."""
    digests = set(session.scalars(select(Image.sha256).where(Image.dataset_id == dataset.id)))
    digests |= set(session.scalars(select(Mask.sha256).join(Image).where(Image.dataset_id == dataset.id)))
    session.delete(dataset)
    session.commit()
    for digest in sorted(digests - blobs_in_use(session, digests)):
        store.delete(digest)


def set_human_mask(session: Session, store: BlobStore, settings: Settings, image: Image, data: bytes, filename: str,
                   saved_by: str | None = None, origin: str | None = None,
                   confirm_empty: bool = False) -> tuple[Mask, Mask | None]:
    """Save a person's mask as a new version, the image's label; earlier versions stay.
    An all-background mask is refused unless ``confirm_empty``. Returns (the new version, the
    label it replaced or None)."""
    mask = decode_mask(data, filename or "mask", (image.width, image.height), settings)
    pixels = int(mask.sum())
    if pixels == 0 and not confirm_empty:
        raise BadInput("the mask is empty; send confirm_empty=true to save an empty label", 409)
    replaced = label_mask(session, image.id)
    digest, _ = store.put(mask_png(mask))
    row = Mask(image_id=image.id, kind="human", sha256=digest, saved_by=saved_by, origin=origin, pixels=pixels)
    session.add(row)
    session.commit()
    return row, replaced


def undo_human_mask(session: Session, image: Image, by: str | None = None) -> tuple[Mask, Mask | None]:
    """Undo the image's newest human save: its row stays, marked reverted (when, by whom), and
    the version before it is the label again. Refused (409) when there is no save to undo, or
    when the image would be left without a label while a split trains or evaluates on it.
    Returns (the undone version, the label now or None)."""
    last = latest_mask(session, image.id, ("human",))
    if last is None:
        raise BadInput(f"nothing to undo: image {image.id} has no saved label", 409)
    last.reverted_at, last.reverted_by = utcnow(), by
    session.flush()
    label = label_mask(session, image.id)
    if label is None:
        used = session.execute(select(SplitMember.split_id, SplitMember.part).where(
            SplitMember.image_id == image.id, SplitMember.part != "unlabelled").limit(1)).first()
        if used is not None:
            session.rollback()
            raise BadInput(f"undo would leave image {image.id} without a label in split {used[0]}'s {used[1]} part; "
                           "move it to unlabelled first", 409)
    session.commit()
    return last, label


def mask_versions(session: Session, image: Image) -> list[Mask]:
    """The image's label versions (human and ground truth), undone ones included, newest first."""
    return list(session.scalars(select(Mask).where(Mask.image_id == image.id, Mask.kind.in_(LABEL_KINDS))
                                .order_by(Mask.id.desc())))


def create_split(session: Session, dataset: Dataset, val_fraction: float, test_fraction: float,
                 labelled_fraction: float, seed: int) -> Split:
    images = session.scalars(select(Image).where(Image.dataset_id == dataset.id)).all()
    annotated_ids = annotated_image_ids(session, dataset.id)
    by_stem = {i.stem: i for i in images}
    with_masks = [i.stem for i in images if i.id in annotated_ids]
    if not with_masks:
        raise BadInput("the dataset has no annotated image (none has a mask): a split needs some")
    try:
        s = make_split(with_masks, val_fraction=val_fraction, test_fraction=test_fraction,
                       labelled_fraction=labelled_fraction, seed=seed)
    except SplitError as err:
        raise BadInput(str(err)) from None
    split = Split(dataset_id=dataset.id, seed=seed, fractions={
        "val": val_fraction, "test": test_fraction, "labelled": labelled_fraction})
    for part in SPLIT_PARTS:
        for stem in getattr(s, part):
            split.members.append(SplitMember(image_id=by_stem[stem].id, part=part))
    for image in images:  # unannotated images (no mask) can only be unlabelled training images
        if image.id not in annotated_ids:
            split.members.append(SplitMember(image_id=image.id, part="unlabelled"))
    session.add(split)
    session.commit()
    return split


def split_parts(session: Session, split: Split) -> dict[str, list[dict]]:
    rows = session.execute(select(SplitMember.part, Image.id, Image.stem).join(Image, Image.id == SplitMember.image_id)
                           .where(SplitMember.split_id == split.id).order_by(Image.stem)).all()
    parts: dict[str, list[dict]] = {p: [] for p in SPLIT_PARTS}
    for part, image_id, stem in rows:
        parts[part].append({"id": image_id, "stem": stem})
    return parts


def move_images(session: Session, split: Split, image_ids: list[int], to: str) -> None:
    if to not in SPLIT_PARTS:
        raise BadInput(f"part {shown(to)} unknown; choose one of {', '.join(SPLIT_PARTS)}")
    members = {m.image_id: m for m in session.scalars(select(SplitMember).where(
        SplitMember.split_id == split.id, SplitMember.image_id.in_(image_ids))).all()}
    missing = sorted(set(image_ids) - set(members))
    if missing:
        raise BadInput(f"images {missing[:10]} are not in split {split.id}", 404)
    if to != "unlabelled":
        annotated = annotated_image_ids(session, split.dataset_id)
        unmasked = sorted(set(image_ids) - annotated)
        if unmasked:
            raise BadInput(f"images {unmasked[:10]} have no mask; only annotated images can go to {to} "
                           "(PUT a mask first)", 409)
    for image_id in image_ids:
        members[image_id].part = to
    remaining = {p for p, in session.execute(select(SplitMember.part).where(SplitMember.split_id == split.id)).all()}
    if "labelled" not in remaining:
        session.rollback()
        raise BadInput("a split needs at least one labelled training image; move refused", 409)
    session.commit()


def image_rgb(store: BlobStore, settings: Settings, image: Image):
    """A stored image decoded to (H, W, 3) uint8 RGB."""
    return decode_image(store.get(image.sha256), image.filename, settings, keep=True).rgb
