"""server/services/jobs.py on PostgreSQL and Redis: the engine's final checks of job settings,
submitting (recorded, queued; 404 for what does not exist; 503 and a failed job when the
broker is down), cancelling, and a job's metrics in order. Jobs go to a queue no worker
consumes, so nothing here trains."""

from __future__ import annotations

import pytest

from service_fixtures import covid_entries

TRAIN = {"schedule": "supervised", "max_epochs": 2, "size": 64, "batch_size": 4, "lr": 1e-3,
         "prompts": {"kinds": "points+box", "per_component": True}}


@pytest.fixture()
def split(db_session, migrated):
    from server.core.storage import BlobStore
    from server.services.datasets import create_split, import_dataset

    dataset, _ = import_dataset(db_session, BlobStore(migrated.blobs_dir), migrated, "jobs", covid_entries(6))
    return create_split(db_session, dataset, 0.2, 0.2, 0.5, seed=0)


def test_train_settings_checked_by_the_engine():
    from server.core.errors import BadInput
    from server.services import jobs as svc

    assert svc.check_train_config(dict(TRAIN)) == TRAIN
    assert "data" in svc.SERVER_OWNED and "weights_dir" in svc.SERVER_OWNED and "lr" in svc.TRAIN_KEYS
    for config, words in (({"data": "/etc"}, "set by the server"), ({"device": "cuda:7"}, "set by the server"),
                          ({"nonsense": 1}, "unknown training settings"), ({"schedule": "weekly"}, "schedule"),
                          ({"size": 100}, "divisible by 32"), ({"teacher": "nope"}, "teacher nope unknown"),
                          ({"prompts": {"kinds": "lasso"}}, "prompt kinds"), ({"max_epochs": 0}, ">= 1"),
                          ([1, 2], "an object")):
        with pytest.raises(BadInput, match=words) as err:
            svc.check_train_config(config)
        assert err.value.status == 422 and "\n" not in str(err.value)


def test_evaluate_and_experiment_settings():
    from server.core.errors import BadInput
    from server.services import jobs as svc

    assert svc.check_evaluate_config({}) == {"subset": "test", "mode": "student", "frame": "full"}
    assert svc.check_evaluate_config({"mode": "refine", "frame": "crop"})["mode"] == "refine"
    for config, words in (({"subset": "everything"}, "subset"), ({"mode": "magic"}, "mode"),
                          ({"frame": "oval"}, "frame"), ({"path": "/x"}, "unknown evaluate settings")):
        with pytest.raises(BadInput, match=words):
            svc.check_evaluate_config(config)

    config = svc.check_experiment_config({"fractions": [0.5], "seeds": [0, 1], "train": {"max_epochs": 1}}, "exp-1")
    assert config == {"fractions": [0.5], "seeds": [0, 1], "train": {"max_epochs": 1}, "name": "exp-1"}
    assert svc.check_experiment_config({"name": "mine"}, "exp-1")["name"] == "mine"
    for config, words in (({"datasets": []}, "unknown experiment settings"), ({"schedules": ["weekly"]}, "schedule weekly"),
                          ({"teachers": ["nope"]}, "teacher nope"), ({"prompts": ["lasso"]}, "lasso"),
                          ({"strategies": {"../../x": {}}}, "plain word"), ({"strategies": {"a": {"label": "vote"}}}, "vote"),
                          ({"train": {"cache_dir": "/tmp"}}, "set by the server"),
                          ({"pretrain": {"weights_dir": "/x"}}, "pretrain settings weights_dir"),
                          ({"pretrain": {"data": "/x"}}, "pretrain settings data"),
                          ({"pretrain": {"batch_size": 1}}, "batch_size")):
        with pytest.raises(BadInput, match=words):
            svc.check_experiment_config(config, "exp")


def test_submit_records_and_queues(db_session, quiet_settings, split):
    import redis

    from server.core.errors import BadInput
    from server.core.models import Job
    from server.services import jobs as svc

    queued = redis.Redis.from_url(quiet_settings.broker_url)
    before = queued.llen(quiet_settings.queue)
    job = svc.submit(db_session, quiet_settings, "train", split.id, None, dict(TRAIN))
    assert job.status == "queued" and job.kind == "train" and job.config == TRAIN  # what the worker reads
    assert job.split_id == split.id and job.dataset_id == split.dataset_id and job.model_id is None
    assert job.max_attempts == quiet_settings.job_max_attempts and "queued" in job.log_tail
    assert queued.llen(quiet_settings.queue) == before + 1  # the message the worker would take

    experiment = svc.submit(db_session, quiet_settings, "experiment", split.id, None, {"fractions": [0.5]})
    assert experiment.config == {"fractions": [0.5], "name": f"experiment-{split.id}"}

    with pytest.raises(BadInput, match="split 987654 not found") as err:
        svc.submit(db_session, quiet_settings, "train", 987654, None, {})
    assert err.value.status == 404
    with pytest.raises(BadInput, match="split_id"):
        svc.submit(db_session, quiet_settings, "train", None, None, {})
    with pytest.raises(BadInput, match="model 987654 not found") as err:
        svc.submit(db_session, quiet_settings, "evaluate", None, 987654, {})
    assert err.value.status == 404
    with pytest.raises(BadInput, match="kind bake unknown"):
        svc.submit(db_session, quiet_settings, "bake", split.id, None, {})

    assert svc.cancel(db_session, job).status == "cancelled" and job.cancel_requested
    with pytest.raises(BadInput, match="already cancelled") as err:
        svc.cancel(db_session, job)
    assert err.value.status == 409
    assert db_session.get(Job, experiment.id).status == "queued"
    svc.cancel(db_session, experiment)


def test_evaluate_needs_a_split(db_session, quiet_settings, split):
    from server.core.errors import BadInput
    from server.core.models import Model
    from server.services import jobs as svc

    model = Model(dataset_id=split.dataset_id, name="uploaded", checkpoint_path="/nowhere.pt", sha256="0" * 64)
    db_session.add(model)
    db_session.commit()
    with pytest.raises(BadInput, match="name split_id"):  # not trained here: no split to default to
        svc.submit(db_session, quiet_settings, "evaluate", None, model.id, {})
    job = svc.submit(db_session, quiet_settings, "evaluate", split.id, model.id, {"subset": "val"})
    assert job.config == {"subset": "val", "mode": "student", "frame": "full"} and job.model_id == model.id
    svc.cancel(db_session, job)


def test_broker_down_gives_503_and_a_failed_job(db_session, quiet_settings, split):
    from sqlalchemy import select

    from server.core.errors import BadInput
    from server.core.models import Job
    from server.services import jobs as svc

    down = quiet_settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    with pytest.raises(BadInput, match="broker is unreachable") as err:
        svc.submit(db_session, down, "train", split.id, None, {"max_epochs": 1})
    assert err.value.status == 503
    job = db_session.scalars(select(Job).where(Job.split_id == split.id).order_by(Job.id.desc())).first()
    assert job.status == "failed" and "broker" in job.error and job.finished_at is not None


def test_metrics_in_order(db_session, split):
    from server.core.models import EpochMetric, Job, PseudoLabelQuality
    from server.services import jobs as svc

    job = Job(kind="train", split_id=split.id, dataset_id=split.dataset_id, config={}, status="succeeded")
    db_session.add(job)
    db_session.flush()
    for epoch in (0, 1, 2):
        db_session.add(EpochMetric(job_id=job.id, phase="supervised", epoch=epoch, val_dice=0.1 * epoch, record={"epoch": epoch}))
    db_session.add(PseudoLabelQuality(job_id=job.id, phase="mining", epoch=0, made=3, skipped=1))
    db_session.commit()
    assert [m.epoch for m in svc.epoch_metrics(db_session, job.id)] == [0, 1, 2]
    assert [(q.made, q.skipped) for q in svc.pseudo_label_quality(db_session, job.id)] == [(3, 1)]
    assert svc.epoch_metrics(db_session, 10**9) == []


def test_answers_count_epochs_from_1(db_session, split):
    """Stored epochs are the engine's (from 0); every answer built from them counts from 1, as
    the job's log does: metrics and their records, pseudo-label quality, progress, the best
    epoch of a train job's result and of its model."""
    from server.api.schemas.jobs import EpochMetricOut, JobDetail, QualityOut
    from server.api.schemas.models import ModelOut
    from server.core.models import EpochMetric, Job, Model, PseudoLabelQuality
    from server.services import jobs as svc

    best = {"phase": "mining", "epoch": 1, "val_dice": 0.5}
    job = Job(kind="train", split_id=split.id, dataset_id=split.dataset_id, config={}, status="running",
              phase="mining", epoch=1, result={"best": best, "epochs": 2})
    db_session.add(job)
    db_session.flush()
    for epoch in (0, 1):
        db_session.add(EpochMetric(job_id=job.id, phase="mining", epoch=epoch, record={"phase": "mining", "epoch": epoch}))
    db_session.add(PseudoLabelQuality(job_id=job.id, phase="mining", epoch=1, made=3, skipped=1))
    model = Model(dataset_id=split.dataset_id, job_id=job.id, name="m", config={}, metrics=best,
                  checkpoint_path="/nowhere.pt", sha256="0" * 64)
    db_session.add(model)
    db_session.commit()

    detail = JobDetail.of(job, log_tail="", metrics=[EpochMetricOut.of(m) for m in svc.epoch_metrics(db_session, job.id)],
                          pseudo_label_quality=[QualityOut.of(q) for q in svc.pseudo_label_quality(db_session, job.id)])
    answer = detail.model_dump(mode="json")
    assert [m["epoch"] for m in answer["metrics"]] == [1, 2]
    assert [m["record"]["epoch"] for m in answer["metrics"]] == [1, 2]
    assert [(q["epoch"], q["made"]) for q in answer["pseudo_label_quality"]] == [(2, 3)]
    assert answer["progress"]["epoch"] == 2 and answer["result"] == {"best": {**best, "epoch": 2}, "epochs": 2}
    assert ModelOut.of(model).metrics["epoch"] == 2
    # the stored rows stay as the engine wrote them
    assert job.epoch == 1 and job.result["best"]["epoch"] == 1 and model.metrics["epoch"] == 1
    assert [m.epoch for m in svc.epoch_metrics(db_session, job.id)] == [0, 1]
