"""Experiments: datasets × labelled fractions × schedules × teachers × prompt kinds × seeds.

A config file (YAML or JSON) names them; every arm trains, is evaluated on the chosen
subset, and lands in ``results.json`` and a Markdown table shaped like the paper's
Table 1. Mining arms start from the supervised arm of the same dataset, fraction and
seed (its best supervised checkpoint), exactly as their own supervised phase would,
so that phase is trained once. Arms already finished are not run again.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kmine.fileio import save_json
from kmine.metrics import mean_std
from kmine.prompts import PromptConfig
from kmine.training.config import MINING_SCHEDULES, SCHEDULES, TrainConfig
from kmine.training.strategy import PseudoStrategy

METHOD_NAMES = {
    "supervised": "Supervised training on labelled data",
    "one-time": "One-time pseudo-label generation",
    "continuous": "Continuous pseudo-label generation",
    "extended": "Supervised, as many epochs as mining (control)",
}


@dataclass
class DatasetSpec:
    path: str
    name: str = ""
    split: str | None = None

    def __post_init__(self):
        self.name = self.name or Path(self.path).name


@dataclass
class ExperimentConfig:
    """See the module docstring. ``train`` holds :class:`TrainConfig` settings shared by all arms."""

    name: str
    datasets: list[DatasetSpec]
    fractions: list[float] = field(default_factory=lambda: [1.0, 0.75])
    schedules: list[str] = field(default_factory=lambda: list(SCHEDULES))
    teachers: list[str] = field(default_factory=lambda: ["mobilesam"])
    prompts: list[str] = field(default_factory=lambda: ["per-component"])
    # name -> PseudoStrategy settings; "default" is the library's default strategy.
    strategies: dict[str, dict] = field(default_factory=lambda: {"default": {}})
    seeds: list[int] = field(default_factory=lambda: [0])
    train: dict = field(default_factory=dict)
    subset: str = "val"
    frame: str = "crop"

    @classmethod
    def load(cls, path: str | Path) -> "ExperimentConfig":
        path = Path(path)
        raw = yaml.safe_load(path.read_text())
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: an experiment config is a mapping (name, datasets, …)")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - names
        if unknown:
            raise ValueError(f"{path}: unknown keys {', '.join(sorted(unknown))}; known: {', '.join(sorted(names))}")
        base = path.parent
        raw["datasets"] = [DatasetSpec(**_resolve(d, base)) for d in raw.get("datasets", [])]
        if not raw["datasets"]:
            raise ValueError(f"{path}: no datasets listed")
        config = cls(**raw)
        for s in config.schedules:
            if s not in SCHEDULES:
                raise ValueError(f"{path}: schedule {s!r} unknown; choose from {', '.join(SCHEDULES)}")
        for p in config.prompts:
            PromptConfig.parse(p)  # raises on an unknown kind
        for name, settings in config.strategies.items():
            try:
                PseudoStrategy(**settings)
            except (TypeError, ValueError) as e:
                raise ValueError(f"{path}: strategy {name!r}: {e}") from e
        TrainConfig.from_dict({**config.train, "data": "x"})  # raises on an unknown setting
        return config


def _resolve(d: dict, base: Path) -> dict:
    """Relative dataset and split paths are relative to the config file's folder."""
    out = dict(d)
    for key in ("path", "split"):
        if out.get(key) and not Path(out[key]).is_absolute():
            out[key] = str((base / out[key]).resolve())
    return out


@dataclass
class Arm:
    dataset: DatasetSpec
    fraction: float
    schedule: str
    teacher: str
    prompts: str
    seed: int
    strategy: str = "default"
    strategy_settings: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        mining = ""
        if self.schedule in MINING_SCHEDULES:
            mining = f"-{self.teacher}-{self.prompts}" + ("" if self.strategy == "default" else f"-{self.strategy}")
        return f"{self.dataset.name}/l{round(self.fraction * 100)}/{self.schedule}{mining}-s{self.seed}"

    def train_config(self, shared: dict) -> TrainConfig:
        return TrainConfig.from_dict(
            {
                **shared,
                "strategy": {**shared.get("strategy", {}), **self.strategy_settings},
                "data": self.dataset.path,
                "split": self.dataset.split,
                "labelled_fraction": self.fraction,
                "schedule": self.schedule,
                "teacher": self.teacher,
                "prompts": dataclasses.asdict(PromptConfig.parse(self.prompts)),
                "seed": self.seed,
            }
        )


def plan(config: ExperimentConfig) -> list[Arm]:
    """All arms, supervised ones first (mining arms start from them)."""
    arms = []
    for ds in config.datasets:
        for fraction in config.fractions:
            for seed in config.seeds:
                arms.append(Arm(ds, fraction, "supervised", config.teachers[0], config.prompts[0], seed))
                if fraction >= 1.0:
                    continue  # nothing unlabelled to mine
                if "extended" in config.schedules:
                    arms.append(Arm(ds, fraction, "extended", config.teachers[0], config.prompts[0], seed))
                for schedule in (s for s in config.schedules if s in MINING_SCHEDULES):
                    for teacher in config.teachers:
                        for prompts in config.prompts:
                            for name, settings in config.strategies.items():
                                arms.append(Arm(ds, fraction, schedule, teacher, prompts, seed, name, settings))
    return arms


def run_experiment(config: ExperimentConfig, out_dir: str | Path, evaluate_fn=None) -> list[dict]:
    """Run every arm; returns the result rows and writes ``results.json`` and ``table.md``."""
    from kmine.training.loop import train

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    evaluate_fn = evaluate_fn or _evaluate_arm
    results_path = out / "results.json"
    rows = json.loads(results_path.read_text()) if results_path.exists() else []
    done = {r["key"] for r in rows}
    for arm in plan(config):
        if arm.key in done:
            continue
        tc = arm.train_config(config.train)
        arm_dir = out / arm.key
        init = None
        if arm.schedule != "supervised":
            sup = Arm(arm.dataset, arm.fraction, "supervised", arm.teacher, arm.prompts, arm.seed)
            init = out / sup.key / "best_supervised.pt"
        start = time.perf_counter()
        result = train(tc, arm_dir, init_checkpoint=init, score_true_box=True)
        seconds = time.perf_counter() - start
        metrics = evaluate_fn(result.best_checkpoint, tc, config)
        rows.append(
            {
                "key": arm.key,
                **{k: v for k, v in dataclasses.asdict(arm).items() if k != "dataset"},
                "dataset": arm.dataset.name,
                "encoder": tc.encoder,
                "epochs": len([r for r in result.history if "val_loss" in r]),
                "seconds": seconds,
                "reported": arm.schedule in config.schedules,
                **metrics,
            }
        )
        save_json(rows, results_path)
        (out / "table.md").write_text(table(rows, config))
    (out / "table.md").write_text(table(rows, config))
    return rows


def _evaluate_arm(checkpoint: Path, tc: TrainConfig, config: ExperimentConfig) -> dict:
    from kmine.data import scan_dataset
    from kmine.evaluation import evaluate
    from kmine.predict import Predictor
    from kmine.training.setup import resolve_split

    index = scan_dataset(tc.data)
    split = resolve_split(tc, index)
    stems = getattr(split, config.subset)
    report = evaluate(Predictor.from_checkpoint(checkpoint), index, stems, "student", config.frame)
    return {f"{config.subset}_{k}": v for k, v in report.summary.items() if k.startswith(("dice", "iou"))} | {
        "subset": config.subset,
        "n": len(stems),
    }


def table(rows: list[dict], config: ExperimentConfig) -> str:
    """Markdown shaped like the paper's Table 1: one block per dataset and split."""
    sub = config.subset
    lines = [f"# {config.name}", ""]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("reported", True):
            groups.setdefault((r["dataset"], r["fraction"]), []).append(r)
    for (dataset, fraction), members in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[0][1])):
        lines += [
            f"## {dataset}: labelled/unlabelled split ({round(fraction * 100)}% labelled), {sub} subset",
            "",
            "| Method | Teacher | Prompts | IoU (avg ± std) | Dice (avg ± std) | Seeds | Epochs | Wall time |",
            "|---|---|---|---|---|---|---|---|",
        ]
        methods: dict[tuple, list[dict]] = {}
        for r in members:
            mining = r["schedule"] in MINING_SCHEDULES
            ident = (r["schedule"], r["teacher"], r["prompts"], r.get("strategy", "default")) if mining else (r["schedule"],)
            methods.setdefault(ident, []).append(r)
        for ident, rs in methods.items():
            lines.append(_table_row(ident, rs, sub))
        lines.append("")
    lines.append(
        "Avg ± std: over seeds (of each seed's mean over images) when there are several seeds; "
        "over images when there is one (marked *)."
    )
    return "\n".join(lines) + "\n"


def _table_row(ident: tuple, rs: list[dict], sub: str) -> str:
    def stat(metric: str) -> str:
        if len(rs) > 1:
            m, s = mean_std(r[f"{sub}_{metric}_mean"] for r in rs)
            return f"{m:.3f} ± {s:.3f}"
        return f"{rs[0][f'{sub}_{metric}_mean']:.3f} ± {rs[0][f'{sub}_{metric}_std']:.3f}*"

    teacher, prompts = (ident[1], ident[2]) if len(ident) > 1 else ("–", "–")
    if len(ident) > 3 and ident[3] != "default":
        prompts += f", {ident[3]}"
    epochs = "/".join(str(r["epochs"]) for r in rs)
    minutes = sum(r["seconds"] for r in rs) / 60
    return (
        f"| {METHOD_NAMES[ident[0]]} | {teacher} | {prompts} | {stat('iou')} | {stat('dice')} | "
        f"{len(rs)} | {epochs} | {minutes:.1f} min |"
    )
