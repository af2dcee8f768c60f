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
import logging
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import yaml

from kmine.fileio import save_json
from kmine.metrics import mean_std
from kmine.prompts import PromptConfig
from kmine.teacher.backends import DEFAULT_TEACHER, TEACHER_NAMES
from kmine.text import shown
from kmine.training.config import MINING_SCHEDULES, SCHEDULES, TrainConfig
from kmine.training.strategy import PseudoStrategy

log = logging.getLogger(__name__)

METHOD_NAMES = {
    "supervised": "Supervised training on labelled data",
    "one-time": "One-time pseudo-label generation",
    "continuous": "Continuous pseudo-label generation",
    "extended": "Supervised, as many epochs as mining (control)",
}
PRETRAINING_NAMES = {"simclr": "SimCLR"}


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
    teachers: list[str] = field(default_factory=lambda: [DEFAULT_TEACHER])
    prompts: list[str] = field(default_factory=lambda: ["per-component"])
    # name -> PseudoStrategy settings and second-phase training settings (SECOND_PHASE_KEYS);
    # "default" is the library's defaults. The control arm runs once per distinct set of the
    # settings that change it (control_settings), so it trains as its mining arms train their
    # labelled images.
    strategies: dict[str, dict] = field(default_factory=lambda: {"default": {}})
    seeds: list[int] = field(default_factory=lambda: [0])
    train: dict = field(default_factory=dict)
    subset: str = "val"
    frame: str = "crop"
    # Self-supervised encoder pretraining before every arm: {"method": "simclr", ...SimCLRConfig
    # settings}; run once per dataset and seed on its train images (no masks), so shared by
    # every fraction. None: arms start from the encoder's own weights.
    pretrain: dict | None = None

    def __post_init__(self) -> None:
        """Refuse unknown schedules, teachers, prompt kinds, strategies and train settings."""
        for s in self.schedules:
            if s not in SCHEDULES:
                raise ValueError(f"schedule {shown(s)} unknown; choose from {', '.join(SCHEDULES)}")
        for t in self.teachers:
            if t not in TEACHER_NAMES:
                raise ValueError(f"teacher {shown(t)} unknown; choose from {', '.join(TEACHER_NAMES)}")
        for p in self.prompts:
            PromptConfig.parse(p)  # raises on an unknown kind
        for name, settings in self.strategies.items():
            pseudo, second = split_strategy(settings)
            try:
                PseudoStrategy(**pseudo)
                TrainConfig.from_dict({**self.train, **second, "data": "x"})
            except (TypeError, ValueError) as e:
                raise ValueError(f"strategy {shown(name)}: {e}") from e
        TrainConfig.from_dict({**self.train, "data": "x"})  # raises on an unknown setting

    @classmethod
    def load(cls, path: str | Path) -> ExperimentConfig:
        path = Path(path)
        text = path.read_text()
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
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
        try:
            config = cls(**raw)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e
        if config.pretrain is not None:
            try:
                config.simclr_config(config.datasets[0], 0)
            except (TypeError, ValueError) as e:
                raise ValueError(f"{path}: pretrain: {e}") from e
        return config

    def simclr_config(self, dataset: DatasetSpec, seed: int):
        from kmine.training.simclr import SimCLRConfig

        settings = dict(self.pretrain or {})
        method = settings.pop("method", "simclr")
        if method not in PRETRAINING_NAMES:
            raise ValueError(f"method {shown(method)} unknown; choose one of {', '.join(PRETRAINING_NAMES)}")
        train = self.train
        shared = {k: train[k] for k in ("encoder", "pretrained", "size", "device", "weights_dir") if k in train}
        return SimCLRConfig(**{**shared, **settings, "data": dataset.path, "split": dataset.split, "seed": seed})

    def pretrained_encoder(self, out: Path, dataset: DatasetSpec, seed: int) -> Path | None:
        """Where the pretrained encoder of ``dataset`` and ``seed`` lives (None: no pretraining)."""
        return out / dataset.name / f"simclr-s{seed}" / "encoder.pt" if self.pretrain is not None else None


# Training settings a strategy may set: they change only the second phase, so arms that differ
# in them still share their supervised arm.
SECOND_PHASE_KEYS = ("perturb", "second_phase", "lam_rampup", "lam", "mining_epochs", "labelled_share")
# Those of them that change a second phase on the labelled images alone (the control's).
CONTROL_KEYS = ("perturb", "second_phase", "mining_epochs")


def split_strategy(settings: dict) -> tuple[dict, dict]:
    """A strategy's settings as (PseudoStrategy settings, second-phase TrainConfig settings); a
    second-phase setting given as None (null) is left to the experiment's ``train``."""
    second = {k: v for k, v in settings.items() if k in SECOND_PHASE_KEYS and v is not None}
    return {k: v for k, v in settings.items() if k not in SECOND_PHASE_KEYS}, second


def control_settings(settings: dict, train: dict) -> dict:
    """The second-phase settings a strategy's same-compute control trains under: those of
    CONTROL_KEYS that differ, in effect, from the experiment's ``train`` (``perturb: pseudo``
    leaves labelled images weak, so for the control it is ``none``)."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}

    def effect(key: str, value):
        return "none" if key == "perturb" and value == "pseudo" else value

    second = split_strategy(settings)[1]
    return {k: effect(k, second[k]) for k in CONTROL_KEYS
            if k in second and effect(k, second[k]) != effect(k, train.get(k, defaults[k]))}


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
    pretrain: str = ""  # "simclr" for arms that start from a pretrained encoder

    @property
    def key(self) -> str:
        mining = ""
        named = "" if self.strategy == "default" else f"-{self.strategy}"
        if self.schedule in MINING_SCHEDULES:
            mining = f"-{self.teacher}-{self.prompts}{named}"
        elif self.schedule == "extended":
            mining = named
        pretrain = f"{self.pretrain}-" if self.pretrain else ""
        return f"{self.dataset.name}/l{round(self.fraction * 100)}/{pretrain}{self.schedule}{mining}-s{self.seed}"

    def train_config(self, shared: dict, encoder_init: Path | None = None) -> TrainConfig:
        pseudo, second = split_strategy(self.strategy_settings)
        return TrainConfig.from_dict(
            {
                **shared,
                **second,
                "encoder_init": str(encoder_init) if encoder_init else None,
                "strategy": {**shared.get("strategy", {}), **pseudo},
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
    pretrain = (config.pretrain or {}).get("method", "simclr") if config.pretrain is not None else ""
    arms = []
    for ds in config.datasets:
        for fraction in config.fractions:
            for seed in config.seeds:
                first = partial(Arm, teacher=config.teachers[0], prompts=config.prompts[0], seed=seed, pretrain=pretrain)
                arms.append(first(ds, fraction, "supervised"))
                if fraction >= 1.0:
                    continue  # nothing unlabelled to mine
                if "extended" in config.schedules:
                    controls: dict[str, str] = {}  # second-phase settings -> the first strategy naming them
                    for name, settings in config.strategies.items():
                        second = control_settings(settings, config.train)
                        controls.setdefault(json.dumps(second, sort_keys=True), "default" if not second else name)
                    for second_json, name in controls.items():
                        arms.append(first(ds, fraction, "extended", strategy=name, strategy_settings=json.loads(second_json)))
                for schedule in (s for s in config.schedules if s in MINING_SCHEDULES):
                    for teacher in config.teachers:
                        for prompts in config.prompts:
                            for name, settings in config.strategies.items():
                                arms.append(Arm(ds, fraction, schedule, teacher, prompts, seed, name, settings, pretrain))
    return arms


def run_experiment(
    config: ExperimentConfig, out_dir: str | Path, evaluate_fn=None, jobs: int = 1, time_limit: float | None = None
) -> list[dict]:
    """Run every arm not finished yet; returns the result rows and writes ``results.json``
    and ``table.md``.

    jobs: arms trained at once, each in its own process (a small student leaves most of a
        GPU idle, so several share one); a mining arm starts once its supervised arm is done.
    time_limit: seconds; arms still training then stop after the epoch in flight (each
        started arm trains at least one epoch per run, so repeated runs always progress) and
        are evaluated on their best checkpoint so far (rows marked ``complete: false``, resumed
        by the next run); arms not started are left for the next run.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.time() + time_limit if time_limit else None
    rows = _load_rows(out)  # a row stopped by a time limit stays until its arm finishes
    finished = {r["key"] for r in rows if r.get("complete", True)}
    pending = [arm for arm in plan(config) if arm.key not in finished]
    _pretrain_encoders(config, out, pending)
    try:
        if jobs > 1:
            _run_parallel(config, out, rows, pending, jobs, deadline)
        else:
            for arm in pending:
                if deadline and time.time() >= deadline:
                    log.warning("time limit reached: %s not started", arm.key)
                    continue
                _record(rows, run_arm(arm, config, out, evaluate_fn, deadline), config, out)
    finally:
        (out / "table.md").write_text(table(rows, config))
    return rows


def _pretrain_encoders(config: ExperimentConfig, out: Path, arms: list[Arm]) -> None:
    """Each (dataset, seed) that an arm to run needs a pretrained encoder for, once."""
    for dataset, seed in dict.fromkeys((arm.dataset.name, arm.seed) for arm in arms if arm.pretrain):
        spec = next(a.dataset for a in arms if a.dataset.name == dataset)
        path = config.pretrained_encoder(out, spec, seed)
        if path is None:  # the config asks for no pretraining
            continue
        if not path.exists():
            from kmine.training.simclr import pretrain  # here: a run without pretraining never loads it

            log.info("pretraining the encoder for %s, seed %d → %s", dataset, seed, path)
            pretrain(config.simclr_config(spec, seed), path.parent)


def run_arm(arm: Arm, config: ExperimentConfig, out: Path, evaluate_fn=None, deadline: float | None = None) -> dict:
    """Train and evaluate one arm (a mining arm from its supervised arm's best checkpoint)."""
    from kmine.training.callbacks import Callback
    from kmine.training.loop import TrainingCancelled, train

    class StopAtDeadline(Callback):
        """Stops the arm at the deadline, but only once it has trained an epoch in this run:
        successive time-limited runs then always make progress, however long a start takes."""

        trained = False

        def on_epoch_end(self, record: dict) -> None:
            self.trained = True

        def should_stop(self) -> bool:
            return self.trained and deadline is not None and time.time() >= deadline

    tc = arm.train_config(config.train, config.pretrained_encoder(out, arm.dataset, arm.seed))
    arm_dir = out / arm.key
    init = None
    if arm.schedule != "supervised":
        init = out / _supervised_of(arm).key / "best_supervised.pt"
    start = time.perf_counter()
    try:
        result = train(tc, arm_dir, callbacks=[StopAtDeadline()], init_checkpoint=init, score_true_box=True)
        best, history, complete = result.best_checkpoint, result.history, True
    except TrainingCancelled:
        best, complete = arm_dir / "best.pt", False
        lines = (arm_dir / "history.jsonl").read_text().splitlines() if (arm_dir / "history.jsonl").exists() else []
        history = [json.loads(line) for line in lines]
    seconds = time.perf_counter() - start
    final_phase = "supervised" if arm.schedule == "supervised" else "mining"
    epochs = [r for r in history if "val_loss" in r and r["phase"] == final_phase]
    chosen = min(epochs, key=lambda r: r["val_loss"]) if epochs else {}
    metrics = (evaluate_fn or _evaluate_arm)(best, tc, config) if best.exists() else {}
    return {
        "key": arm.key,
        **{k: v for k, v in dataclasses.asdict(arm).items() if k != "dataset"},
        "dataset": arm.dataset.name,
        "encoder": tc.encoder,
        # The arm's own epochs: a second phase starts from the supervised arm's best checkpoint.
        "epochs": len(epochs),
        # What the checkpoint was chosen by (the training val, at the training crop), whatever
        # subset the arm is then reported on.
        "selected_val_dice": chosen.get("val_dice"),
        "seconds": seconds,
        "reported": arm.schedule in config.schedules,
        "complete": complete,
        **metrics,
    }


def _supervised_of(arm: Arm) -> Arm:
    return Arm(arm.dataset, arm.fraction, "supervised", arm.teacher, arm.prompts, arm.seed, pretrain=arm.pretrain)


def _load_rows(out: Path) -> list[dict]:
    path = out / "results.json"
    return json.loads(path.read_text()) if path.exists() else []


def _record(rows: list[dict], row: dict, config: ExperimentConfig, out: Path) -> None:
    """Add (or replace) an arm's row and rewrite results.json and table.md."""
    rows[:] = [r for r in rows if r["key"] != row["key"]] + [row]
    save_json(rows, out / "results.json")
    (out / "table.md").write_text(table(rows, config))


def _run_parallel(config: ExperimentConfig, out: Path, rows: list[dict], pending: list[Arm], jobs: int, deadline) -> None:
    """Up to ``jobs`` arms at once, each ``kmine experiment --arm KEY`` in its own process.
    This process alone writes results.json; a child leaves its row in ``<arm>/row.json``."""
    import os
    import subprocess
    import sys

    save_json(dataclasses.asdict(config), out / "experiment.json")  # dataset paths already absolute
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // jobs))}
    running: dict[str, tuple[Arm, subprocess.Popen]] = {}
    failed: set[str] = set()
    try:
        while pending or running:
            done = {r["key"] for r in rows if r.get("complete", True)}
            for arm in list(pending):
                sup = _supervised_of(arm).key
                if arm.schedule != "supervised" and sup not in done:
                    if sup in failed or (sup not in running and sup not in {a.key for a in pending}):
                        log.warning("%s not started: its supervised arm %s did not finish", arm.key, sup)
                        pending.remove(arm)
                    continue
                if deadline and time.time() >= deadline:
                    log.warning("time limit reached: %s not started", arm.key)
                    pending.remove(arm)
                elif len(running) < jobs:
                    pending.remove(arm)
                    running[arm.key] = (arm, _spawn(arm, out, deadline, env, sys.executable, subprocess))
            time.sleep(0.5)
            for key, (_arm, proc) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[key]
                row_path = out / key / "row.json"
                if proc.returncode == 0 and row_path.exists():
                    _record(rows, json.loads(row_path.read_text()), config, out)
                    log.info("%s finished", key)
                else:
                    failed.add(key)
                    log.error("%s failed (exit code %s); its log: %s", key, proc.returncode, out / key / "log.txt")
    finally:
        for _, proc in running.values():
            proc.terminate()
    if failed:
        raise RuntimeError(f"{len(failed)} arm(s) failed: {', '.join(sorted(failed))}; see log.txt in each arm's folder")


def _spawn(arm: Arm, out: Path, deadline, env, python: str, subprocess):
    (out / arm.key).mkdir(parents=True, exist_ok=True)
    (out / arm.key / "row.json").unlink(missing_ok=True)
    cmd = [python, "-m", "kmine.cli", "experiment", str(out / "experiment.json"), "--out", str(out), "--arm", arm.key]
    if deadline:
        cmd += ["--deadline", str(deadline)]
    with open(out / arm.key / "log.txt", "a") as log_file:
        return subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env)


def run_one(config: ExperimentConfig, out: Path, key: str, deadline: float | None = None) -> dict:
    """A child of :func:`run_experiment` with ``jobs > 1``: one arm, its row to ``<arm>/row.json``."""
    arms = {arm.key: arm for arm in plan(config)}
    if key not in arms:
        raise ValueError(f"no arm {shown(key)} in experiment {shown(config.name)}; its arms: {', '.join(arms)}")
    row = run_arm(arms[key], config, Path(out), deadline=deadline)
    save_json(row, Path(out) / key / "row.json")
    return row


def _evaluate_arm(checkpoint: Path, tc: TrainConfig, config: ExperimentConfig) -> dict:
    from kmine.data import scan_dataset
    from kmine.evaluation import evaluate
    from kmine.predict import Predictor
    from kmine.training.setup import resolve_split

    index = scan_dataset(tc.data)
    split = resolve_split(tc, index)
    stems = getattr(split, config.subset)
    from kmine.training.setup import resolve_device

    predictor = Predictor.from_checkpoint(checkpoint, device=str(resolve_device(tc.device)))
    report = evaluate(predictor, index, stems, "student", config.frame)
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
            strategy = r.get("strategy", "default")
            ident = (r["schedule"], r["teacher"], r["prompts"], strategy) if mining else (r["schedule"], strategy)
            ident = (r.get("pretrain", ""),) + ident
            methods.setdefault(ident, []).append(r)
        for ident, rs in methods.items():
            lines.append(_table_row(ident, rs, sub))
        lines.append("")
    lines.append(
        "Avg ± std: over seeds (of each seed's mean over images) when there are several seeds; "
        "over images when there is one (marked *). Epochs: the arm's own (the control and "
        "mining arms start from their supervised arm's best checkpoint); wall time likewise."
    )
    return "\n".join(lines) + "\n"


def _table_row(ident: tuple, rs: list[dict], sub: str) -> str:
    def stat(metric: str) -> str:
        if len(rs) > 1:
            m, s = mean_std(r[f"{sub}_{metric}_mean"] for r in rs)
            return f"{m:.3f} ± {s:.3f}"
        return f"{rs[0][f'{sub}_{metric}_mean']:.3f} ± {rs[0][f'{sub}_{metric}_std']:.3f}*"

    pretrain, ident = ident[0], ident[1:]
    teacher, prompts = (ident[1], ident[2]) if len(ident) > 2 else ("–", "–")
    strategy = ident[-1] if len(ident) in (2, 4) else "default"
    if strategy != "default":
        prompts = f"{prompts}, {strategy}" if len(ident) > 2 else strategy
    method = METHOD_NAMES[ident[0]]
    if pretrain:
        method = f"{PRETRAINING_NAMES[pretrain]} + {method[0].lower()}{method[1:]}"
    epochs = "/".join(str(r["epochs"]) + ("" if r.get("complete", True) else " (stopped at time limit)") for r in rs)
    minutes = sum(r["seconds"] for r in rs) / 60
    return (
        f"| {method} | {teacher} | {prompts} | {stat('iou')} | {stat('dice')} | "
        f"{len(rs)} | {epochs} | {minutes:.1f} min |"
    )
