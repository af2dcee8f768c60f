"""kmine.experiment directly: configs (the shipped ones and broken ones), the arm plan, the
Table-1 table from result rows, and skipping or rerunning arms on a tiny real run.

tests/test_cli.py drives ``kmine experiment`` end to end (parallel arms, time limits, SimCLR);
this file checks the pieces those runs are made of."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from kmine.experiment import ExperimentConfig, _supervised_of, plan, run_experiment, table
from kmine.prompts import PromptConfig
from kmine.training import TrainConfig
from kmine.training.strategy import PseudoStrategy
from shared_data import COVID, require

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SHIPPED = sorted(CONFIGS.glob("*.yaml"))


def test_configs_are_shipped():
    assert len(SHIPPED) >= 10 and CONFIGS / "kvasir-cpu.yaml" in SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_config_loads_and_plans(path):
    raw = yaml.safe_load(path.read_text())
    config = ExperimentConfig.load(path)
    assert config.name == raw["name"] == path.stem
    for spec, given in zip(config.datasets, raw["datasets"], strict=True):
        # relative paths are relative to the config's folder: ../../shared is the checkout's sibling
        assert spec.path == str((CONFIGS / given["path"]).resolve()) and Path(spec.path).is_absolute()
        assert spec.name == Path(given["path"]).name
        if "split" in given:
            assert spec.split == str((CONFIGS / given["split"]).resolve())
        require(Path(spec.path))
        assert (Path(spec.path) / "images").is_dir()
    arms = plan(config)
    keys = [a.key for a in arms]
    assert len(set(keys)) == len(keys)
    for i, arm in enumerate(arms):
        tc = arm.train_config(config.train)  # every arm's settings make a valid TrainConfig
        assert (tc.schedule, tc.labelled_fraction, tc.seed, tc.teacher) == (arm.schedule, arm.fraction, arm.seed, arm.teacher)
        if arm.schedule != "supervised":  # its supervised arm comes earlier in the plan
            assert _supervised_of(arm).key in keys[:i]
            assert arm.fraction < 1.0


def test_kvasir_cpu_plan():
    config = ExperimentConfig.load(CONFIGS / "kvasir-cpu.yaml")
    assert [a.key for a in plan(config)] == [
        "kvasir-seg/l100/supervised-s0",
        "kvasir-seg/l75/supervised-s0",
        "kvasir-seg/l75/one-time-mobilesam-points+box-s0",
        "kvasir-seg/l75/continuous-mobilesam-points+box-s0",
    ]


def test_cxr_cpu_plan_has_the_control_and_no_mining_at_full_labels():
    config = ExperimentConfig.load(CONFIGS / "cxr-cpu.yaml")
    assert config.datasets[0].split is None
    assert [a.key for a in plan(config)] == [
        "cxr-lung/l100/supervised-s0",
        "cxr-lung/l75/supervised-s0",
        "cxr-lung/l75/extended-s0",
        "cxr-lung/l75/one-time-mobilesam-per-component-s0",
        "cxr-lung/l75/continuous-mobilesam-per-component-s0",
        "cxr-lung/l50/supervised-s0",
        "cxr-lung/l50/extended-s0",
        "cxr-lung/l50/one-time-mobilesam-per-component-s0",
        "cxr-lung/l50/continuous-mobilesam-per-component-s0",
    ]


CROSSED = """
name: crossed
datasets:
  - {path: data/ds, split: data/ds/split.json}
fractions: [0.5]
schedules: [supervised, continuous]
teachers: [mobilesam, litemedsam]
prompts: [points+box, per-component]
strategies:
  default: {}
  paper: {label: teacher, tta: false}
seeds: [0, 1]
pretrain: {method: simclr, epochs: 1}
train: {size: 64, strategy: {gate_iou: 0.5}}
"""


def test_plan_crosses_teachers_prompts_strategies_and_seeds(tmp_path):
    (tmp_path / "exp.yaml").write_text(CROSSED)
    config = ExperimentConfig.load(tmp_path / "exp.yaml")
    assert config.datasets[0].path == str(tmp_path / "data" / "ds") and config.datasets[0].name == "ds"
    assert config.datasets[0].split == str(tmp_path / "data" / "ds" / "split.json")
    arms = plan(config)
    keys = [a.key for a in arms]
    assert len(keys) == 2 * (1 + 2 * 2 * 2)  # per seed: supervised + teachers × prompts × strategies
    assert keys[:3] == [
        "ds/l50/simclr-supervised-s0",
        "ds/l50/simclr-continuous-mobilesam-points+box-s0",
        "ds/l50/simclr-continuous-mobilesam-points+box-paper-s0",
    ]
    assert "ds/l50/simclr-continuous-litemedsam-per-component-paper-s1" in keys
    arm = arms[keys.index("ds/l50/simclr-continuous-litemedsam-per-component-paper-s1")]
    assert _supervised_of(arm).key == "ds/l50/simclr-supervised-s1"
    out = tmp_path / "out"
    tc = arm.train_config(config.train, config.pretrained_encoder(out, arm.dataset, arm.seed))
    assert tc.teacher == "litemedsam" and tc.seed == 1 and tc.labelled_fraction == 0.5 and tc.size == 64
    assert tc.prompts == PromptConfig.parse("per-component")
    # the arm's strategy over the shared one
    assert (tc.strategy.label, tc.strategy.tta, tc.strategy.gate_iou) == ("teacher", False, 0.5)
    assert tc.encoder_init == str(out / "ds" / "simclr-s1" / "encoder.pt")
    assert tc.data == config.datasets[0].path and tc.split == config.datasets[0].split
    simclr = config.simclr_config(config.datasets[0], 1)
    assert (simclr.epochs, simclr.size, simclr.seed, simclr.data) == (1, 64, 1, config.datasets[0].path)


SECOND_PHASE = """
name: second
datasets: [{path: data/ds}]
fractions: [0.1]
schedules: [supervised, extended, one-time]
strategies:
  default: {}
  vote-only: {doubt_weight: 0.5}
  strong: {perturb: strong, second_phase: continue, lam: 1.0, doubt_weight: 0.5}
  balanced: {perturb: pseudo, labelled_share: 0.5, lam: 1.0, lam_rampup: 1}
train: {size: 64}
"""


def test_strategies_carry_second_phase_settings_and_each_gets_its_control(tmp_path):
    """A strategy may set second-phase training settings: its mining arm trains with them, and the
    control runs once per distinct set of those that change it, so it trains under the same
    perturbation of its labelled images."""
    (tmp_path / "exp.yaml").write_text(SECOND_PHASE)
    config = ExperimentConfig.load(tmp_path / "exp.yaml")
    arms = {a.key: a for a in plan(config)}
    assert list(arms) == [
        "ds/l10/supervised-s0",
        # default, vote-only and balanced (its perturbation and share touch pseudo-labelled
        # images only, λ weighs them only) train labelled images alike: one control
        "ds/l10/extended-s0",
        "ds/l10/extended-strong-s0",
        "ds/l10/one-time-mobilesam-per-component-s0",
        "ds/l10/one-time-mobilesam-per-component-vote-only-s0",
        "ds/l10/one-time-mobilesam-per-component-strong-s0",
        "ds/l10/one-time-mobilesam-per-component-balanced-s0",
    ]
    control = arms["ds/l10/extended-strong-s0"].train_config(config.train)
    mining = arms["ds/l10/one-time-mobilesam-per-component-strong-s0"].train_config(config.train)
    for tc in (control, mining):
        assert (tc.perturb, tc.second_phase, tc.size) == ("strong", "continue", 64)
    assert mining.lam == 1.0 and mining.strategy.doubt_weight == 0.5 and control.strategy == PseudoStrategy()
    balanced = arms["ds/l10/one-time-mobilesam-per-component-balanced-s0"].train_config(config.train)
    assert (balanced.perturb, balanced.labelled_share, balanced.lam_rampup) == ("pseudo", 0.5, 1)
    plain = arms["ds/l10/extended-s0"].train_config(config.train)
    # The plain control takes the defaults: perturb "pseudo" leaves its labelled images weak.
    assert (plain.perturb, plain.second_phase, plain.strategy) == (TrainConfig().perturb, "fresh", PseudoStrategy())
    bad = SECOND_PHASE.replace("perturb: strong", "perturb: wild")
    (tmp_path / "bad.yaml").write_text(bad)
    with pytest.raises(ValueError, match="strategy strong: perturb wild unknown; choose one of none, pseudo, strong"):
        ExperimentConfig.load(tmp_path / "bad.yaml")


def test_json_config_loads_like_yaml(tmp_path):
    (tmp_path / "exp.yaml").write_text(CROSSED)
    (tmp_path / "exp.json").write_text(json.dumps(yaml.safe_load(CROSSED)))
    from_yaml, from_json = ExperimentConfig.load(tmp_path / "exp.yaml"), ExperimentConfig.load(tmp_path / "exp.json")
    assert dataclasses.asdict(from_json) == dataclasses.asdict(from_yaml)
    assert [a.key for a in plan(from_json)] == [a.key for a in plan(from_yaml)]


MINIMAL = "name: x\ndatasets: [{path: d}]\n"


@pytest.mark.parametrize("text, message", [
    ("- a\n- b\n", "an experiment config is a mapping"),
    (MINIMAL + "epochs: 3\nteacher: sam\n", "unknown keys epochs, teacher"),
    ("name: x\ndatasets: []\n", "no datasets listed"),
    (MINIMAL + "schedules: [supervised, sometimes]\n", "schedule sometimes unknown"),
    (MINIMAL + "prompts: [laser]\n", "prompt kinds laser unknown"),
    (MINIMAL + "strategies: {vote: {label: majority}}\n", "strategy vote.*majority"),
    (MINIMAL + "strategies: {typo: {lable: fuse}}\n", "strategy typo.*lable"),
    (MINIMAL + "train: {epochz: 1}\n", "unknown training settings: epochz"),
    (MINIMAL + "train: {size: 100}\n", "divisible by 32"),
    (MINIMAL + "pretrain: {method: byol}\n", "pretrain: method byol unknown"),
    (MINIMAL + "pretrain: {method: simclr, epocks: 1}\n", "pretrain: .*epocks"),
], ids=["not-a-mapping", "unknown-keys", "no-datasets", "schedule", "prompts", "strategy-rule", "strategy-key",
        "train-setting", "train-size", "pretrain-method", "pretrain-setting"])
def test_bad_configs_are_named(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        ExperimentConfig.load(path)


def _row(dataset, fraction, schedule, seed, dice, iou, *, epochs=3, seconds=60.0, teacher="mobilesam",
         prompts="points+box", strategy="default", pretrain="", complete=True, reported=True, std=(0.05, 0.1)):
    return {"key": f"{dataset}/{fraction}/{schedule}/{seed}/{strategy}/{pretrain}", "dataset": dataset,
            "fraction": fraction, "schedule": schedule, "teacher": teacher, "prompts": prompts, "seed": seed,
            "strategy": strategy, "pretrain": pretrain, "epochs": epochs, "seconds": seconds, "complete": complete,
            "reported": reported, "val_dice_mean": dice, "val_dice_std": std[0], "val_iou_mean": iou,
            "val_iou_std": std[1]}


def test_table_from_rows():
    config = ExperimentConfig(name="demo", datasets=[])
    rows = [
        _row("ds", 1.0, "supervised", 0, 0.8, 0.7, epochs=5),
        _row("ds", 0.5, "supervised", 0, 0.6, 0.5, epochs=3, seconds=30),
        _row("ds", 0.5, "supervised", 1, 0.8, 0.7, epochs=4, seconds=90),
        _row("ds", 0.5, "continuous", 0, 0.75, 0.65, epochs=2, strategy="paper", complete=False),
        _row("ds", 0.5, "supervised", 0, 0.9, 0.8, pretrain="simclr"),
        _row("ds", 0.5, "extended", 0, 0.1, 0.1, reported=False),  # ran, but its schedule is not reported
        _row("aaa", 0.5, "one-time", 0, 0.5, 0.4, teacher="litemedsam", prompts="per-component"),
    ]
    assert table(rows, config).splitlines() == [
        "# demo",
        "",
        "## aaa: labelled/unlabelled split (50% labelled), val subset",
        "",
        "| Method | Teacher | Prompts | IoU (avg ± std) | Dice (avg ± std) | Seeds | Epochs | Wall time |",
        "|---|---|---|---|---|---|---|---|",
        "| One-time pseudo-label generation | litemedsam | per-component | 0.400 ± 0.100* | 0.500 ± 0.050* | 1 | 3 | 1.0 min |",
        "",
        "## ds: labelled/unlabelled split (100% labelled), val subset",
        "",
        "| Method | Teacher | Prompts | IoU (avg ± std) | Dice (avg ± std) | Seeds | Epochs | Wall time |",
        "|---|---|---|---|---|---|---|---|",
        "| Supervised training on labelled data | – | – | 0.700 ± 0.100* | 0.800 ± 0.050* | 1 | 5 | 1.0 min |",
        "",
        "## ds: labelled/unlabelled split (50% labelled), val subset",
        "",
        "| Method | Teacher | Prompts | IoU (avg ± std) | Dice (avg ± std) | Seeds | Epochs | Wall time |",
        "|---|---|---|---|---|---|---|---|",
        # two seeds: mean ± std over the seeds' means, epochs per seed, wall time summed
        "| Supervised training on labelled data | – | – | 0.600 ± 0.100 | 0.700 ± 0.100 | 2 | 3/4 | 2.0 min |",
        "| Continuous pseudo-label generation | mobilesam | points+box, paper | 0.650 ± 0.100* | 0.750 ± 0.050* | 1 "
        "| 2 (stopped at time limit) | 1.0 min |",
        "| SimCLR + supervised training on labelled data | – | – | 0.800 ± 0.100* | 0.900 ± 0.050* | 1 | 3 | 1.0 min |",
        "",
        "Avg ± std: over seeds (of each seed's mean over images) when there are several seeds; over images when "
        "there is one (marked *). Epochs: the arm's own (the control and mining arms start from their supervised "
        "arm's best checkpoint); wall time likewise.",
    ]


def test_table_uses_the_configured_subset():
    config = ExperimentConfig(name="t", datasets=[], subset="test")
    row = _row("ds", 1.0, "supervised", 0, 0, 0)
    row.update({"test_dice_mean": 0.25, "test_dice_std": 0.0, "test_iou_mean": 0.125, "test_iou_std": 0.0})
    text = table([row], config)
    assert "(100% labelled), test subset" in text and "| 0.125 ± 0.000* | 0.250 ± 0.000* |" in text


TINY = """
name: tiny
datasets:
  - path: {path}
fractions: [1.0, 0.5]
schedules: [supervised]
seeds: [0]
train: {{size: 64, batch_size: 4, lr: 0.001, device: cpu, max_epochs: 1, augment: false}}
"""


@pytest.mark.slow
def test_finished_arms_are_skipped_and_unfinished_ones_run(tmp_path):
    """A tiny real run (one epoch at 64 px on the 12 COVID-QU-Ex images)."""
    require(COVID)
    (tmp_path / "exp.yaml").write_text(TINY.format(path=COVID))
    config = ExperimentConfig.load(tmp_path / "exp.yaml")
    out = tmp_path / "exp"
    out.mkdir()
    # The full-label arm finished in an earlier run: its row is all that is left of it.
    done = {**_row("covid-qu-ex-sample", 1.0, "supervised", 0, 0.5, 0.4), "key": "covid-qu-ex-sample/l100/supervised-s0"}
    (out / "results.json").write_text(json.dumps([done]))
    evaluated = []

    def evaluate(checkpoint, tc, cfg):
        evaluated.append((checkpoint, tc.labelled_fraction))
        return {"val_dice_mean": 0.25, "val_dice_std": 0.0, "val_iou_mean": 0.125, "val_iou_std": 0.0}

    rows = run_experiment(config, out, evaluate_fn=evaluate)
    arm = out / "covid-qu-ex-sample" / "l50" / "supervised-s0"
    assert evaluated == [(arm / "best.pt", 0.5)]  # only the unfinished arm trained and was scored
    assert not (out / "covid-qu-ex-sample" / "l100").exists()
    assert [r["key"] for r in rows] == ["covid-qu-ex-sample/l100/supervised-s0", "covid-qu-ex-sample/l50/supervised-s0"]
    assert rows[0] == done
    new = rows[1]
    assert new["complete"] is True and new["epochs"] == 1 and new["encoder"] == "timm-tf_efficientnet_lite0"
    assert (new["fraction"], new["schedule"], new["val_dice_mean"]) == (0.5, "supervised", 0.25)
    assert json.loads((out / "results.json").read_text()) == rows
    assert (out / "table.md").read_text() == table(rows, config)

    # Everything finished: a second run trains and scores nothing.
    def refuse(*args):
        raise AssertionError(f"a finished arm was evaluated again: {args[0]}")

    assert run_experiment(config, out, evaluate_fn=refuse) == rows

    # A row stopped by a time limit (complete: false) is run again and replaced.
    stopped = [rows[0], {**rows[1], "complete": False, "val_dice_mean": 0.0}]
    (out / "results.json").write_text(json.dumps(stopped))
    evaluated.clear()
    again = run_experiment(config, out, evaluate_fn=evaluate)
    assert evaluated == [(arm / "best.pt", 0.5)]
    assert [r["key"] for r in again] == [r["key"] for r in rows] and again[1]["complete"] is True
    assert again[1]["val_dice_mean"] == 0.25
