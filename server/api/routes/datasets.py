"""Datasets, their images and masks."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Path, Query, UploadFile
from fastapi.responses import FileResponse, Response
from sqlalchemy import select
from starlette.background import BackgroundTask

from kmine.text import shown
from server.api.deps import CurrentUser, DatasetDep, ImageDep, SessionDep, SettingsDep, StoreDep
from server.api.schemas.choices import ExportFormat, MaskOrigin
from server.api.schemas.common import MAX_ID, binary, errors
from server.api.schemas.datasets import (
    CocoExport,
    Counts,
    DatasetCreated,
    DatasetOut,
    ImageOut,
    ImagePage,
    MaskOut,
    MaskRef,
    MaskSaved,
    MaskUndone,
    MaskVersions,
)
from server.api.uploads import UploadRoute, read_upload, upload_file
from server.core.errors import BadInput
from server.core.labels import LABEL_KINDS, label_mask, latest_mask
from server.core.models import Dataset
from server.services import datasets as svc
from server.services import export
from server.services.uploads import Content, check_filename, read_zip

router = APIRouter(prefix="/datasets", tags=["datasets"], route_class=UploadRoute)

# What GET …/images/{image_id}/{which} serves: the label, or the newest mask of one kind.
MASK_KINDS = {"mask": LABEL_KINDS, "ground-truth": ("ground_truth",), "pseudo-label": ("pseudo_label",),
              "prediction": ("prediction",)}


def dataset_out(session, dataset: Dataset, **more) -> DatasetOut:
    cls = DatasetCreated if more else DatasetOut
    return cls(id=dataset.id, name=dataset.name, created_at=dataset.created_at,
               counts=Counts(**svc.counts(session, dataset)), active_model_id=svc.active_model_id(session, dataset.id),
               **more)


@router.post("", status_code=201, response_model=DatasetCreated, responses=errors(413),
             summary="Create a dataset from a zip (images/ + masks/) or from files")
def create_dataset(  # not async: FastAPI runs it in its thread pool, so decoding never holds the event loop
    session: SessionDep, settings: SettingsDep, store: StoreDep,
    name: Annotated[str, Form(max_length=200, description="dataset name (1 to 200 characters)")],
    archive: Annotated[UploadFile | None, File(description="zip with images/ and optionally masks/ (same stems)")] = None,
    images: Annotated[list[UploadFile] | None, File(description="image files")] = None,
    masks: Annotated[list[UploadFile] | None, File(description="mask files named like their images")] = None,
):
    if archive is not None and (images or masks):
        raise BadInput("send either a zip (archive) or files (images, masks), not both")
    entries: list[tuple[str, Content]]
    if archive is not None:  # read where Starlette spooled it, never copied whole into memory
        entries = read_zip(upload_file(archive, settings.max_upload_bytes), settings)
    elif images:
        files = [("images", f) for f in images] + [("masks", f) for f in masks or []]
        if len(files) > settings.max_files:
            raise BadInput(f"{len(files)} files in one upload; at most {settings.max_files} are accepted", 413)
        for _, f in files:  # every name and size checked before any file is decoded
            check_filename(f.filename or "")
            upload_file(f, settings.max_upload_bytes)
        entries = [(f"{folder}/{f.filename}", partial(read_upload, f, settings.max_upload_bytes)) for folder, f in files]
    else:
        raise BadInput("nothing uploaded: send a zip as 'archive' or image files as 'images'")
    dataset, ignored = svc.import_dataset(session, store, settings, name, entries)
    return dataset_out(session, dataset, ignored=ignored)


@router.get("", response_model=list[DatasetOut], summary="List datasets")
def list_datasets(session: SessionDep):
    return [dataset_out(session, d) for d in session.scalars(select(Dataset).order_by(Dataset.id))]


@router.get("/{dataset_id}", response_model=DatasetOut, responses=errors(404), summary="A dataset with its counts")
def show_dataset(dataset: DatasetDep, session: SessionDep):
    return dataset_out(session, dataset)


@router.delete("/{dataset_id}", status_code=204, response_class=Response, responses=errors(404),
               summary="Delete a dataset (its images, masks and splits); needs an admin token")
def delete_dataset(dataset: DatasetDep, session: SessionDep, store: StoreDep):
    svc.delete_dataset(session, store, dataset)
    return Response(status_code=204)


EXPORT_ANSWER: dict[int | str, dict[str, Any]] = {200: {
    "model": CocoExport,  # format=coco, as application/json
    "description": "`masks`: a zip of `masks/<stem>.png` (0/255, the image's size) per annotated image and "
                   "`labels.json`; `coco`: COCO JSON with RLE segmentations",
    "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}}


@router.get("/{dataset_id}/export", response_class=FileResponse, responses={**EXPORT_ANSWER, **errors(404)},
            summary="Download the dataset's current labels (a zip of masks, or COCO JSON)",
            description="Each annotated image's label (its newest human save not undone, else its ground truth) "
                        "with `mask_id`, `kind`, `origin`, `version` (1-based place among the image's label "
                        "versions, undone ones included, as GET …/masks lists them), `saved_by`, `created_at`. "
                        "`masks`: `labels.json` lists those per `stem` and names the unannotated stems; "
                        "`include_images` also packs `images/` as uploaded. `coco`: every image under `images` "
                        "(its database id), one `foreground` category, one annotation per annotated image "
                        "(id: the mask id; `segmentation`: uncompressed column-major RLE, `iscrowd` 1) with the "
                        "above under `kmine`; unannotated images have no annotation.")
def export_labels(dataset: DatasetDep, session: SessionDep, store: StoreDep,
                  fmt: Annotated[ExportFormat, Query(alias="format", description="masks (zip) or coco (JSON)")] = "masks",
                  include_images: Annotated[bool, Query(description="masks format: also pack the images")] = False):
    path = export.export_to_temp(session, store, dataset, fmt, include_images and fmt == "masks")
    return FileResponse(path, media_type=export.media_type(fmt), filename=export.file_name(dataset, fmt),
                        background=BackgroundTask(path.unlink, missing_ok=True))  # removed once sent


@router.get("/{dataset_id}/images", response_model=ImagePage, responses=errors(404),
            summary="Page through a dataset's images")
def list_images(dataset: DatasetDep, session: SessionDep,
                offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0, limit: Annotated[int, Query(ge=1, le=500)] = 50):
    total, images, annotated = svc.image_page(session, dataset.id, offset, limit)
    items = [ImageOut(id=i.id, stem=i.stem, filename=i.filename, width=i.width, height=i.height, sha256=i.sha256,
                      annotated=i.id in annotated) for i in images]
    return ImagePage(total=total, offset=offset, limit=limit, items=items)


@router.get("/{dataset_id}/images/{image_id}", response_class=Response,
            responses={**binary("image/png", "The image as PNG"), **errors(404)}, summary="The image as PNG")
def get_image(image: ImageDep, store: StoreDep):
    return Response(svc.image_png(store, image), media_type="image/png")


@router.get("/{dataset_id}/images/{image_id}/masks", response_model=MaskVersions, responses=errors(404),
            summary="The image's label versions, newest first",
            description="Every human save and the uploaded ground truth, with who saved it (`saved_by`), when, "
                        "from what (`origin`) and its size (`pixels`, `sha256`); an undone save stays, marked "
                        "`reverted_at`. `label_id`: the version that is the label now.")
def list_masks(image: ImageDep, session: SessionDep):
    label = label_mask(session, image.id)
    return MaskVersions(image_id=image.id, label_id=label.id if label else None,
                        items=[MaskOut.model_validate(m) for m in svc.mask_versions(session, image)])


@router.get("/{dataset_id}/images/{image_id}/{which}", response_class=Response,
            responses={**binary("image/png", "The mask as PNG (0/255, the image's size)",
                                {"X-Mask-Kind": "the mask's kind", "X-Mask-Id": "the mask's id"}), **errors(404)},
            summary="A mask as PNG (0/255, the image's size)",
            description="`mask`: the label (latest human correction, else the uploaded ground truth); "
                        "`ground-truth`; `pseudo-label` (latest); `prediction` (latest).")
def get_mask(image: ImageDep, session: SessionDep, store: StoreDep,
             which: Annotated[str, Path(description=f"one of {', '.join(MASK_KINDS)}",
                                        examples=["mask"])]):
    if which not in MASK_KINDS:
        raise HTTPException(404, f"unknown mask kind {shown(which)}: choose {', '.join(MASK_KINDS)}")
    mask = latest_mask(session, image.id, MASK_KINDS[which])
    if mask is None:
        raise HTTPException(404, f"image {image.id} has no {which}")
    return Response(store.get(mask.sha256), media_type="image/png",
                    headers={"X-Mask-Kind": mask.kind, "X-Mask-Id": str(mask.id)})


@router.put("/{dataset_id}/images/{image_id}/mask", response_model=MaskSaved, responses=errors(404, 409, 413),
            summary="Save a new version of the image's label (a human mask)",
            description="Earlier versions stay (GET …/masks lists them; POST …/mask/undo undoes this save). "
                        "`replaced`: the label this save replaced, e.g. the imported `ground_truth`. "
                        "An empty (all background) mask is refused with 409 unless `confirm_empty` is true.")
def put_mask(image: ImageDep, session: SessionDep, settings: SettingsDep, store: StoreDep, user: CurrentUser,
                   mask: Annotated[UploadFile, File(description="mask image of the image's size; foreground >= 128")],
                   origin: Annotated[MaskOrigin | None, Form(description="what the mask was made from")] = None,
                   confirm_empty: Annotated[bool, Form(description="true to save an empty mask as the label")] = False):
    data = read_upload(mask, settings.max_upload_bytes)
    row, replaced = svc.set_human_mask(session, store, settings, image, data, mask.filename or "mask",
                                       saved_by=user.name, origin=origin, confirm_empty=confirm_empty)
    return MaskSaved(**MaskOut.model_validate(row).model_dump(),
                     replaced=MaskRef.model_validate(replaced) if replaced else None)


@router.post("/{dataset_id}/images/{image_id}/mask/undo", response_model=MaskUndone, responses=errors(404, 409),
             summary="Undo the image's newest human save",
             description="The save is kept, marked `reverted_at` / `reverted_by`, and the version before it is the "
                         "label again (the imported ground truth when the only save is undone). 409 when there is "
                         "no save to undo, or when the image would be left without a label in a split's labelled, "
                         "val or test part.")
def undo_mask(image: ImageDep, session: SessionDep, user: CurrentUser):
    undone, label = svc.undo_human_mask(session, image, user.name)
    return MaskUndone(undone=MaskOut.model_validate(undone), label=MaskOut.model_validate(label) if label else None)
