"""The OpenAPI document says what the API does: every operation has a response schema for its
success, declares 401 and 422 (and every other error it can give) with the one ErrorBody, and
the job-settings schemas hold exactly the engine's client-settable fields and choices."""

from __future__ import annotations

import dataclasses

import pytest

ERROR_REF = "#/components/schemas/ErrorBody"


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    from server.app import create_app
    from server.core.settings import Settings

    settings = Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("openapi"))
    return create_app(settings, prepare=False).openapi()


def operations(spec):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            yield path, method.upper(), op


def test_every_success_has_a_schema(spec):
    seen = 0
    for path, method, op in operations(spec):
        success = [code for code in op["responses"] if code.startswith("2")]
        assert len(success) == 1, (method, path, success)
        code = success[0]
        answer = op["responses"][code]
        if code == "204" or method == "HEAD":  # no body
            assert "content" not in answer, (method, path)
            continue
        assert code in ("200", "201"), (method, path, code)
        content = answer.get("content") or {}
        # one media type, or (the export) a file or JSON as the request chooses
        assert len(content) == 1 or set(content) == {"application/zip", "application/json"}, (method, path, content)
        for media_type, body in content.items():
            schema = body.get("schema") or {}
            if media_type == "application/json":
                assert "$ref" in schema or schema.get("type") == "array" and "$ref" in schema["items"], (
                    method, path, schema)
            else:
                assert media_type in ("image/png", "application/octet-stream", "application/zip"), media_type
                assert schema.get("format") == "binary", (method, path, schema)
        seen += 1
    assert seen >= 25


def test_every_error_is_declared_with_the_error_body(spec):
    for path, method, op in operations(spec):
        errors = {code: answer for code, answer in op["responses"].items() if code[0] in "45"}
        if path.startswith("/api/v1") and "/health/" not in path:
            assert {"401", "422"} <= set(errors), (method, path, sorted(errors))
        for code, answer in errors.items():
            ref = answer["content"]["application/json"]["schema"]["$ref"]
            assert ref == ERROR_REF or ref.endswith("/NotReady"), (method, path, code, ref)
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert schemas["ErrorBody"]["required"] == ["detail"]
    assert "detail" in schemas["NotReady"]["required"]
    declared = {(p, m): set(op["responses"]) for p, m, op in operations(spec)}
    assert {"404", "503"} <= declared[("/api/v1/jobs", "POST")] and "413" in declared[("/api/v1/datasets", "POST")]
    assert "403" in declared[("/api/v1/datasets/{dataset_id}", "DELETE")]
    assert "409" in declared[("/api/v1/predict", "POST")] and "503" in declared[("/health/ready", "GET")]


def test_ids_are_bounded_to_the_database(spec):
    limit = 2**31 - 1
    for path, method, op in operations(spec):
        for param in op.get("parameters", []):
            if param["name"].endswith("_id") or param["name"] == "offset":
                schema = param["schema"]
                schema = next((s for s in schema.get("anyOf", [schema]) if s.get("type") == "integer"), schema)
                assert schema.get("maximum") == limit, (method, path, param)
    schemas = spec["components"]["schemas"]
    assert schemas["MoveRequest"]["properties"]["image_ids"]["items"]["maximum"] == limit
    labels = schemas["SamPrompt"]["properties"]["point_labels"]["anyOf"][0]["items"]
    assert (labels["minimum"], labels["maximum"]) == (0, 1)
    for name in ("TrainJob", "ExperimentJob", "EvaluateJob"):
        assert schemas[name]["additionalProperties"] is False


def test_job_settings_are_the_engines(spec):
    from kmine.experiment import SECOND_PHASE_KEYS, ExperimentConfig
    from kmine.prompts import PROMPT_CHOICES, PROMPT_KINDS, PromptConfig
    from kmine.teacher import TEACHER_NAMES
    from kmine.training import TrainConfig
    from kmine.training.config import SCHEDULES
    from kmine.training.simclr import SimCLRConfig
    from kmine.training.strategy import LABEL_RULES, PseudoStrategy
    from server.api.schemas import jobs
    from server.services.jobs import PRETRAIN_SERVER_OWNED, SERVER_OWNED, TRAIN_KEYS

    def fields(cls):
        return {f.name for f in dataclasses.fields(cls)}

    # ``paper``: a switch that the server turns into the paper's values of the others
    assert set(jobs.TrainSettings.model_fields) - {"paper"} == TRAIN_KEYS == fields(TrainConfig) - SERVER_OWNED
    assert set(jobs.PromptSettings.model_fields) == fields(PromptConfig)
    assert set(jobs.StrategySettings.model_fields) == fields(PseudoStrategy)
    assert set(jobs.ExperimentStrategySettings.model_fields) == fields(PseudoStrategy) | set(SECOND_PHASE_KEYS)
    assert set(jobs.ExperimentSettings.model_fields) == fields(ExperimentConfig) - {"datasets"}
    assert set(jobs.PretrainSettings.model_fields) == fields(SimCLRConfig) - PRETRAIN_SERVER_OWNED | {"method"}
    # defaults are the engine's
    train, engine = jobs.TrainSettings(), TrainConfig()
    for name in TRAIN_KEYS - {"prompts", "strategy"}:
        assert getattr(train, name) == getattr(engine, name), name
    assert PromptConfig(**train.prompts.model_dump()) == engine.prompts
    assert PseudoStrategy(**train.strategy.model_dump()) == engine.strategy
    # choices are the engine's lists
    props = spec["components"]["schemas"]
    assert props["TrainSettings"]["properties"]["schedule"]["enum"] == list(SCHEDULES)
    assert props["TrainSettings"]["properties"]["teacher"]["enum"] == list(TEACHER_NAMES)
    assert props["PromptSettings"]["properties"]["kinds"]["enum"] == list(PROMPT_KINDS)
    assert props["StrategySettings"]["properties"]["label"]["enum"] == list(LABEL_RULES)
    assert props["ExperimentSettings"]["properties"]["prompts"]["items"]["enum"] == list(PROMPT_CHOICES)
    for name in ("TrainSettings", "PromptSettings", "StrategySettings", "EvaluateSettings", "ExperimentSettings",
                 "PretrainSettings"):
        assert props[name]["additionalProperties"] is False, name
    # every valid default body is one the engine accepts
    TrainConfig.from_dict({**jobs.TrainSettings().model_dump(mode="json", exclude={"paper"}), "data": "x"})
    paper = TrainConfig.from_dict({**jobs.TrainSettings(paper=True).engine_settings(), "data": "x"})
    assert paper == TrainConfig(data="x").as_paper()
    experiment = jobs.ExperimentSettings().model_dump(mode="json", exclude={"train": {"paper"}})
    ExperimentConfig(datasets=[], **{**experiment, "name": "x"})


def test_words_keep_one_meaning(spec):
    """'annotated' is whether an image has a mask, 'labelled' a split's part; every epoch counts
    from 1; timings are milliseconds only, SAM's encodings a count of their own."""
    schemas = spec["components"]["schemas"]
    counts = schemas["Counts"]["properties"]
    assert {"annotated", "unannotated"} <= set(counts) and "labelled" not in counts
    assert "mask" in counts["annotated"]["description"] and "labelled part" in counts["annotated"]["description"]
    assert "annotated" in schemas["ImageOut"]["properties"] and "labelled" not in schemas["ImageOut"]["properties"]
    assert "training uses their masks" in schemas["SplitRequest"]["properties"]["labelled_fraction"]["description"]
    for name, field in (("EpochMetricOut", "epoch"), ("QualityOut", "epoch"), ("Progress", "epoch")):
        assert "counted from 1" in schemas[name]["properties"][field]["description"], name
    answer = schemas["PredictOut"]["properties"]
    assert answer["timings_ms"]["additionalProperties"] == {"type": "number"}
    assert "teacher_encodes" in answer and "cache" in answer["teacher_encodes"]["description"]
