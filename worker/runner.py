"""Running one job: claim it, keep its lease, run kmine, write progress and results back.

The run folder ``<data_dir>/jobs/<id>/run`` is the same on every attempt, so a job retried
after its worker died resumes from ``last.pt``.
"""

from __future__ import annotations

import logging
import traceback

from sqlalchemy import update

from kmine.text import shown
from kmine.training import TrainConfig, TrainingCancelled
from server.core import jobs as jobstate
from server.core.db import session_factory
from server.core.models import Job, Model, clean_json
from server.core.runtime import Runtime, model_teacher
from server.core.settings import Settings
from server.core.storage import open_store
from worker.materialise import materialise
from worker.progress import JobLog, Lease, Progress
from worker.results import rank_unlabelled, register_model, save_pseudo_labels
from worker.runfiles import RunFiles

log = logging.getLogger(__name__)


def run_job(job_id: int, settings: Settings, hostname: str | None = None) -> str:
    """Run job ``job_id`` if this worker (``hostname``: its Celery name) can claim it; returns
    its final status (or 'skipped')."""
    worker = jobstate.worker_name(hostname)
    Session = session_factory(settings)
    with Session() as session:
        if not jobstate.claim(session, job_id, settings, worker):
            log.info("job %s not claimable (already running elsewhere, finished or cancelled)", job_id)
            return "skipped"
        job = session.get(Job, job_id)
        if job is None:  # deleted between the claim's commit and this read: nothing to run
            log.info("job %s was deleted once claimed", job_id)
            return "skipped"
        kind, config, split_id, model_id, dataset_id, attempt, manifest = (
            job.kind, dict(job.config), job.split_id, job.model_id, job.dataset_id, job.attempts, job.run_files)
    joblog = JobLog()
    handler_targets = [logging.getLogger("kmine"), logging.getLogger(__name__)]
    for lg in handler_targets:
        lg.addHandler(joblog)
        lg.setLevel(logging.INFO)
    joblog.say(f"attempt {attempt} on {worker}")
    lease = Lease(job_id, settings, worker)
    lease.start()
    folder = settings.jobs_dir / str(job_id)
    runtime = Runtime(settings)  # the engine keeps loaded SAM models per process, so this is cheap
    runtime.set_threads()
    store = open_store(settings)
    try:
        if split_id is None:
            raise ValueError("the job's split was deleted")
        with Session() as session:
            data, split_path, ids = materialise(session, store, split_id, folder)
        runfiles = RunFiles(store, folder / "run", manifest)
        if restored := runfiles.restore():  # an earlier attempt's, wherever it ran
            joblog.say(f"resuming from the run files of the last finished epoch ({restored} fetched)")
        if kind == "train":
            result = _train(job_id, settings, runtime, config, data, split_path, ids, folder, dataset_id, joblog, lease,
                            runfiles)
        elif kind == "evaluate":
            result = _evaluate(settings, runtime, config, model_id, data, split_path)
        elif kind == "experiment":
            result = _experiment(runtime, config, data, split_path, folder, dataset_id)
        else:
            raise ValueError(f"unknown job kind {shown(kind)}")
        status, error = "succeeded", None
        joblog.say("succeeded")
    except TrainingCancelled as err:
        status, error, result = ("cancelled", str(err), None)
        if lease.lost:  # not ours any more: another attempt owns it, leave the row alone
            status = "lost"
        joblog.say(f"stopped: {err}")
    except Exception as err:
        status, error, result = "failed", f"{err.__class__.__name__}: {err}", None
        joblog.say("failed: " + "".join(traceback.format_exception_only(type(err), err)).strip())
        log.exception("job %s failed", job_id)
    finally:
        lease.stopped.set()
        for lg in handler_targets:
            lg.removeHandler(joblog)
    if status != "lost":
        with Session() as session:
            session.execute(update(Job).where(Job.id == job_id).values(log_tail=joblog.text))
            session.commit()
            jobstate.finish(session, job_id, worker, status, error, clean_json(result) if result is not None else None)
    return status


def _train(job_id, settings, runtime: Runtime, config, data, split_path, ids, folder, dataset_id, joblog, lease,
           runfiles: RunFiles) -> dict:
    from kmine.training import train

    tc = TrainConfig.from_dict({**config, "data": str(data), "split": str(split_path), **runtime.engine_paths()})
    result = train(tc, folder / "run", callbacks=[Progress(job_id, settings, tc, joblog, lease, runfiles)])
    model_id = register_model(job_id, settings, tc, result, dataset_id)
    saved = save_pseudo_labels(job_id, settings, tc, folder / "run", split_path, ids)
    joblog.say("scoring the unlabelled images for the Label view's ranking")
    ranked = rank_unlabelled(settings, runtime, model_id, data, split_path, ids)
    return {"model_id": model_id, "best": result.best, "epochs": len([r for r in result.history if "val_loss" in r]),
            "pseudo_labels_saved": saved, "unlabelled_ranked": ranked}


def _evaluate(settings, runtime: Runtime, config, model_id, data, split_path) -> dict:
    from kmine.data import load_split, scan_dataset
    from kmine.evaluation import evaluate

    with session_factory(settings)() as session:
        model = session.get(Model, model_id)
        if model is None:
            raise ValueError(f"model {model_id} no longer exists")
        predictor = runtime.predictor(model)
        teacher = runtime.teacher(model_teacher(model)) if config["mode"] == "refine" else None
    stems = list(getattr(load_split(split_path), config["subset"]))
    report = evaluate(predictor, scan_dataset(data), stems, config["mode"], config["frame"], progress=False,
                      teacher=teacher)
    return {"summary": report.summary, "per_image": report.rows}


def _experiment(runtime: Runtime, config, data, split_path, folder, dataset_id) -> dict:
    from kmine.experiment import DatasetSpec, ExperimentConfig, run_experiment

    train_settings = {**config.get("train", {}), **runtime.engine_paths()}
    cfg = ExperimentConfig(**{**config, "train": train_settings},
                           datasets=[DatasetSpec(path=str(data), name=f"dataset-{dataset_id}", split=str(split_path))])
    rows = run_experiment(cfg, folder / "run")
    return {"rows": rows, "table": (folder / "run" / "table.md").read_text()}
