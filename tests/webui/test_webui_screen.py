"""The screen stays true: the header and the pickers are read again after a change (an
upload, a model made active), keep what each shows when it is still there, and name each
dataset's active model with its Dice; a model can be made active from the Datasets view.
Against the real API in process (embedded mode, SQLite in a temporary folder)."""

from __future__ import annotations

import pytest

pytest.importorskip("gradio")

from service_fixtures import covid_zip  # noqa: E402
from webui import screen  # noqa: E402
from webui.views.datasets import DatasetsView, dataset_rows  # noqa: E402


@pytest.fixture(scope="module")
def two_models(api, tmp_path_factory):
    """A dataset with two uploaded student checkpoints (no training needed)."""
    from kmine.student import build_student, save_student

    d = api.upload_dataset("screen", "s.zip", covid_zip("screen"))
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    save_student(build_student("timm-tf_efficientnet_lite0", pretrained=False), path,
                 extra={"metrics": {"dice": 0.5}})
    models = [api.json("POST", "/models", data={"dataset_id": str(d["id"]), "name": f"m{i}"},
                       files={"checkpoint": ("best.pt", path.read_bytes())}) for i in (1, 2)]
    return d, models


def picked(dataset=None, split=None, model="active", chosen=None) -> dict:
    return {"datasets": [dataset] * 3, "splits": [(dataset, split)] * 2, "model": model, "chosen": chosen}


def test_kept_keeps_a_choice_while_it_is_there():
    choices = [("a", 1), ("b", 2)]
    assert screen.kept(2, choices) == 2 and screen.kept("2", choices) == 2
    assert screen.kept(9, choices) == 1 and screen.kept(None, []) is None


def test_a_new_dataset_appears_and_the_choice_stays(api, two_models):
    d, _ = two_models
    head, up = screen.refresh(api, dataset_rows, picked(d["id"]))
    assert "Signed in as **admin** (admin)" in head
    assert [u["value"] for u in up["datasets"]] == [d["id"]] * 3
    later = api.upload_dataset("later", "l.zip", covid_zip("later"))
    head, up = screen.refresh(api, dataset_rows, picked(d["id"], chosen=d["id"]))
    assert later["id"] in [c[1] for c in up["datasets"][0]["choices"]]
    assert [u["value"] for u in up["datasets"]] == [d["id"]] * 3 and up["chosen"]["value"] == d["id"]
    assert "later" in str(up["table"]["data"]) and f"{len(api.datasets())} dataset(s)" in head


def test_a_model_is_made_active_and_the_screen_says_so(api, two_models):
    d, (m1, m2) = two_models
    view = DatasetsView.__new__(DatasetsView)  # the handlers alone, without building the Gradio layout
    view.api = api
    for model in (m1, m2, m1):
        choices, note = view.do_activate(d["id"], model["id"])
        assert f"#{model['id']} {model['name']}" in note and "is now the active model" in note
        assert choices["value"] == model["id"] and "★ active" in dict((v, k) for k, v in choices["choices"])[model["id"]]
        assert api.dataset(d["id"])["active_model_id"] == model["id"]
        assert [m["active"] for m in api.models(d["id"])] == [m["id"] == model["id"] for m in api.models(d["id"])]
        head, up = screen.refresh(api, dataset_rows, picked(d["id"], model=model["id"]))
        assert f"screen → #{model['id']} {model['name']}" in head and up["model"]["value"] == model["id"]
    _, problem = view.do_activate(d["id"], None)
    assert "Choose a dataset and one of its models" in problem
    _, problem = view.do_activate(d["id"], 424242)
    assert "not found" in problem and "Traceback" not in problem


def test_the_activate_route_answers_the_model(api, two_models):
    _, (m1, _) = two_models
    assert api.activate_model(m1["id"])["active"] is True
    with pytest.raises(Exception, match="model 424242 not found"):
        api.activate_model(424242)


def test_header_names_each_datasets_active_model_with_its_dice():
    datasets = [{"name": "covid", "active_model_id": 3}, {"name": "new", "active_model_id": None}]
    models = [{"id": 3, "name": "run", "metrics": {"val_dice": 0.8123}}]
    assert screen.active_models(datasets, models) == "covid → #3 run · val Dice 0.812; new → none yet"


def test_eta_is_in_minutes_and_a_single_point_has_a_sane_range():
    from webui import plots
    from webui.views.jobs import eta_text

    assert (eta_text(1129), eta_text(20), eta_text(3725)) == ("19 min", "under a minute", "1 h 02 min")
    assert plots.y_span([0.3], (0, 1)) == pytest.approx((0.25, 0.35))
    assert plots.y_span([0.0], (0, 1)) == (0, 0.05) and plots.y_span([2.0], (0, None)) == pytest.approx((1.8, 2.2))
    ticks = plots.nice_ticks(*plots.y_span([0.3], (0, 1)))
    assert ticks[0] >= 0 and ticks[-1] <= 1
