"""What a finished training leaves in the database: its model, its pseudo-labels, and how much
the model's student and SAM disagree on each unlabelled image (the Label view's ranking)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update

from kmine.training import TrainConfig, TrainResult
from kmine.training.config import MINING_SCHEDULES
from server.core.db import session_factory
from server.core.models import Dataset, Image, Job, Mask, Model, clean_json
from server.core.runtime import ModelFiles, Runtime, model_teacher
from server.core.settings import Settings
from server.core.storage import open_store


def register_model(job_id: int, settings: Settings, tc: TrainConfig, result: TrainResult, dataset_id: int | None) -> int:
    """Keep the run's best checkpoint in the store (the API's, from a worker on another
    machine) and record it; the dataset's first model becomes its active one. Returns the model id."""
    digest, _ = open_store(settings).put_file(result.best_checkpoint)
    with session_factory(settings)() as session:
        dataset = session.get(Dataset, dataset_id) if dataset_id else None
        has_active = dataset is not None and session.scalar(
            select(Model.id).where(Model.dataset_id == dataset_id, Model.active.is_(True))) is not None
        model = Model(dataset_id=dataset_id, job_id=job_id, name=f"job {job_id} ({tc.schedule})",
                      config=clean_json(tc.to_dict() | {"data": None, "split": None, "weights_dir": None, "cache_dir": None}),
                      metrics=clean_json(result.best), checkpoint_path=None, sha256=digest,
                      active=dataset is not None and not has_active)
        session.add(model)
        session.flush()
        session.execute(update(Job).where(Job.id == job_id).values(model_id=model.id))
        session.commit()
        return model.id


def save_pseudo_labels(job_id, settings, tc, run_dir: Path, split_path: Path, ids: dict[str, int]) -> int:
    """The run's pseudo-labels (kept in ``last.pt``: the one-time ones, or in the continuous
    schedule each image's latest) as ``pseudo_label`` masks at each image's full size, so the
    Label view can start from them."""
    last = run_dir / "last.pt"
    if tc.schedule not in MINING_SCHEDULES or not last.exists():
        return 0
    from kmine.data import load_split, mask_png, uncrop_mask
    from kmine.fileio import load_torch
    from kmine.training.loop import unpack_code
    from kmine.training.strategy import code_mask

    state = load_torch(last)
    labels = state.get("pseudo_labels") or {}
    unlabelled = load_split(split_path).unlabelled
    store = open_store(settings)
    size = tc.size
    with session_factory(settings)() as session:
        for index, bits in labels.items():
            stem = unlabelled[int(index)]
            image = session.get(Image, ids[stem])
            if image is None:  # its dataset was deleted while the job ran
                raise ValueError(f"image {ids[stem]} ({stem}) no longer exists")
            crop = code_mask(unpack_code(bits.numpy(), size))
            digest, _ = store.put(mask_png(uncrop_mask(crop, image.height, image.width)))
            session.add(Mask(image_id=image.id, kind="pseudo_label", sha256=digest, job_id=job_id, round=1))
        session.commit()
    return len(labels)


def rank_unlabelled(settings: Settings, runtime: Runtime, model_id: int, data: Path, split_path: Path,
                    ids: dict[str, int], batch: int = 8) -> int:
    """Score the split's unlabelled images with the new model (student → SAM, as the Label view
    ranks them), so that the ranking opens at once; how many were scored. The encodings are
    usually cached by then: a mining run has already encoded these images."""
    from kmine.data import load_image, load_split, scan_dataset
    from server.core.disagreement import disagreement_record, store_scores

    with session_factory(settings)() as session:
        model = session.get(Model, model_id)
        if model is None:
            return 0
        files = ModelFiles.of(model)
        stems = [stem for stem in load_split(split_path).unlabelled if stem in ids]
        digests = dict(session.execute(select(Image.id, Image.sha256).where(Image.id.in_([ids[s] for s in stems]))).all())
    predictor, teacher = runtime.predictor(files), runtime.teacher(model_teacher(files))
    index = scan_dataset(data)
    records: dict[str, dict] = {}
    for start in range(0, len(stems), batch):
        chunk = [s for s in stems[start:start + batch] if s in index and ids[s] in digests]
        results = predictor.predict_batch([load_image(index[s].image_path) for s in chunk], "sam", teacher=teacher)
        records.update({digests[ids[s]]: disagreement_record(r) for s, r in zip(chunk, results)})
    with session_factory(settings)() as session:
        store_scores(session, model_id, records)
    return len(records)
