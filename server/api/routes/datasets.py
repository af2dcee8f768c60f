"""Datasets, their images and masks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Path, Query, UploadFile
from fastapi.responses import Response
from sqlalchemy import func, select

from server.api.deps import CurrentUser, SessionDep, SettingsDep, StoreDep
from server.api.uploads import read_upload
from server.core.models import Dataset, Image, Model
from server.services import datasets as svc
from server.core.errors import BadInput
from server.services.uploads import check_filename, read_zip

router = APIRouter(prefix="/datasets", tags=["datasets"])
DatasetId = Annotated[int, Path(ge=1, le=2**31 - 1, description="dataset id")]
ImageId = Annotated[int, Path(ge=1, le=2**31 - 1, description="image id")]


def dataset_or_404(session, dataset_id: int) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise HTTPException(404, f"dataset {dataset_id} not found")
    return dataset


def image_or_404(session, dataset_id: int, image_id: int) -> Image:
    image = session.get(Image, image_id)
    if image is None or image.dataset_id != dataset_id:
        raise HTTPException(404, f"image {image_id} not found in dataset {dataset_id}")
    return image


def dataset_view(session, dataset: Dataset) -> dict:
    active = session.scalar(select(Model.id).where(Model.dataset_id == dataset.id, Model.active.is_(True)))
    return {"id": dataset.id, "name": dataset.name, "created_at": dataset.created_at,
            "counts": svc.counts(session, dataset), "active_model_id": active}


@router.post("", status_code=201, summary="Create a dataset from a zip (images/ + masks/) or from files")
async def create_dataset(
    session: SessionDep, settings: SettingsDep, store: StoreDep, _: CurrentUser,
    name: Annotated[str, Form(description="dataset name")],
    archive: Annotated[UploadFile | None, File(description="zip with images/ and optionally masks/ (same stems)")] = None,
    images: Annotated[list[UploadFile] | None, File(description="image files")] = None,
    masks: Annotated[list[UploadFile] | None, File(description="mask files named like their images")] = None,
):
    if archive is not None and (images or masks):
        raise BadInput("send either a zip (archive) or files (images, masks), not both")
    if archive is not None:
        entries = read_zip(await read_upload(archive, settings.max_upload_bytes), settings)
    elif images:
        if len(images) + len(masks or []) > settings.max_files:
            raise BadInput(f"at most {settings.max_files} files per upload", 413)
        for f in [*images, *(masks or [])]:
            check_filename(f.filename or "")
        entries = [(f"images/{f.filename}", await read_upload(f, settings.max_upload_bytes)) for f in images]
        entries += [(f"masks/{f.filename}", await read_upload(f, settings.max_upload_bytes)) for f in masks or []]
    else:
        raise BadInput("nothing uploaded: send a zip as 'archive' or image files as 'images'")
    dataset, ignored = svc.import_dataset(session, store, settings, name, entries)
    return {**dataset_view(session, dataset), "ignored": ignored}


@router.get("", summary="List datasets")
def list_datasets(session: SessionDep, _: CurrentUser):
    return [dataset_view(session, d) for d in session.scalars(select(Dataset).order_by(Dataset.id))]


@router.get("/{dataset_id}", summary="A dataset with its counts")
def show_dataset(dataset_id: DatasetId, session: SessionDep, _: CurrentUser):
    return dataset_view(session, dataset_or_404(session, dataset_id))


@router.delete("/{dataset_id}", status_code=204, summary="Delete a dataset (its images, masks and splits)")
def delete_dataset(dataset_id: DatasetId, session: SessionDep, _: CurrentUser):
    session.delete(dataset_or_404(session, dataset_id))
    session.commit()
    return Response(status_code=204)


@router.get("/{dataset_id}/images", summary="Page through a dataset's images")
def list_images(dataset_id: DatasetId, session: SessionDep, _: CurrentUser,
                offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=500)] = 50):
    dataset_or_404(session, dataset_id)
    total = session.scalar(select(func.count(Image.id)).where(Image.dataset_id == dataset_id))
    images = session.scalars(select(Image).where(Image.dataset_id == dataset_id).order_by(Image.stem)
                             .offset(offset).limit(limit)).all()
    labelled = svc.labelled_image_ids(session, dataset_id)
    return {"total": total, "offset": offset, "limit": limit, "items": [
        {"id": i.id, "stem": i.stem, "filename": i.filename, "width": i.width, "height": i.height,
         "sha256": i.sha256, "labelled": i.id in labelled} for i in images]}


def _png(store, sha256: str, headers: dict | None = None) -> Response:
    return Response(store.get(sha256), media_type="image/png", headers=headers or {})


@router.get("/{dataset_id}/images/{image_id}", summary="The image as PNG",
            responses={200: {"content": {"image/png": {}}}})
def get_image(dataset_id: DatasetId, image_id: ImageId, session: SessionDep, store: StoreDep, _: CurrentUser):
    import io

    from PIL import Image as PILImage

    image = image_or_404(session, dataset_id, image_id)
    data = store.get(image.sha256)
    if image.filename.lower().endswith(".png"):
        return Response(data, media_type="image/png")
    with PILImage.open(io.BytesIO(data)) as im:
        buf = io.BytesIO()
        im.save(buf, format="PNG")
    return Response(buf.getvalue(), media_type="image/png")


MASK_KINDS = {"mask": svc.LABEL_KINDS, "ground-truth": ("ground_truth",), "pseudo-label": ("pseudo_label",),
              "prediction": ("prediction",)}


@router.get("/{dataset_id}/images/{image_id}/{which}", summary="A mask as PNG (0/255, the image's size)",
            description="`mask`: the label (latest human correction, else the uploaded ground truth); "
                        "`ground-truth`; `pseudo-label` (latest); `prediction` (latest).",
            responses={200: {"content": {"image/png": {}}}})
def get_mask(dataset_id: DatasetId, image_id: ImageId, which: str, session: SessionDep, store: StoreDep, _: CurrentUser):
    if which not in MASK_KINDS:
        raise HTTPException(404, f"unknown mask kind {which!r}: choose {', '.join(MASK_KINDS)}")
    image_or_404(session, dataset_id, image_id)
    mask = svc.latest_mask(session, image_id, MASK_KINDS[which])
    if mask is None:
        raise HTTPException(404, f"image {image_id} has no {which}")
    return _png(store, mask.sha256, {"X-Mask-Kind": mask.kind, "X-Mask-Id": str(mask.id)})


@router.put("/{dataset_id}/images/{image_id}/mask", summary="Put or replace the image's mask (a human label)")
async def put_mask(dataset_id: DatasetId, image_id: ImageId, session: SessionDep, settings: SettingsDep,
                   store: StoreDep, _: CurrentUser,
                   mask: Annotated[UploadFile, File(description="mask image of the image's size; foreground >= 128")]):
    image = image_or_404(session, dataset_id, image_id)
    data = await read_upload(mask, settings.max_upload_bytes)
    row = svc.set_human_mask(session, store, settings, image, data, mask.filename or "mask")
    return {"id": row.id, "image_id": image.id, "kind": row.kind, "sha256": row.sha256}
