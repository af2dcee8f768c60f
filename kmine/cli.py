"""The engine's commands: split, train, pretrain, predict, evaluate, experiment, demo.

The ``kmine`` console script (``server/cli.py``, the composition root) adds ``serve`` and
``worker`` to this app; the engine itself imports nothing above it."""

from __future__ import annotations

import json
import logging
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

# The engine's lists, read at import for the choices: these modules and their packages' __init__s
# import torch, Pillow etc. only on first use, so --help and argument errors answer at once
# (tests/test_cli_help.py). Everything heavy is imported inside the commands.
from kmine.data import SUBSETS
from kmine.evaluation import FRAMES
from kmine.predict import MODES
from kmine.prompts import PROMPT_CHOICES
from kmine.teacher import DEFAULT_TEACHER, TEACHER_NAMES
from kmine.training.callbacks import Callback
from kmine.training.config import PERTURBATIONS, SCHEDULES, SECOND_PHASE_STARTS, TrainConfig
from kmine.training.strategy import PseudoStrategy

_STRATEGY = PseudoStrategy()  # the library's defaults are the CLI's
_TRAIN = TrainConfig()

app = typer.Typer(
    help="kmine: train a small segmentation student by mining SAM for pseudo-labels.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _choices(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A typer choice type over one of the engine's lists (the list is written once, there)."""
    return Enum(name, {v: v for v in values}, type=str)  # type: ignore[return-value]


if TYPE_CHECKING:
    # Built at import from the engine's lists, which a type checker cannot read: to it each
    # is a str enum of unknown members, picked by name (Mode["refine"]: names are the values).
    class Schedule(str, Enum): ...
    class Mode(str, Enum): ...
    class Frame(str, Enum): ...
    class Teacher(str, Enum): ...
    class Prompts(str, Enum): ...
    class Subset(str, Enum): ...
    class Perturb(str, Enum): ...
    class SecondPhase(str, Enum): ...
else:
    Schedule = _choices("Schedule", SCHEDULES)
    Mode = _choices("Mode", MODES)
    Frame = _choices("Frame", FRAMES)
    Teacher = _choices("Teacher", TEACHER_NAMES)
    Prompts = _choices("Prompts", PROMPT_CHOICES)
    Subset = _choices("Subset", (*SUBSETS, "all"))
    Perturb = _choices("Perturb", PERTURBATIONS)
    SecondPhase = _choices("SecondPhase", SECOND_PHASE_STARTS)


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _report_problems(index) -> None:
    for p in index.problems:
        typer.secho(f"warning: {p.path}: {p.reason}", fg=typer.colors.YELLOW, err=True)


WeightsDir = Annotated[Path | None, typer.Option(help="Folder holding the checkpoints (default: $KMINE_WEIGHTS_DIR, else ../shared/weights).")]
Device = Annotated[str, typer.Option(help="'auto' (CUDA if available), 'cpu' or 'cuda:N'.")]


@app.command()
def split(
    data: Annotated[Path, typer.Argument(help="Dataset folder with images/ and masks/.")],
    out: Annotated[Path, typer.Option(help="Where to write the split JSON.")],
    val: Annotated[float, typer.Option(help="Share of labelled images for validation.")] = 0.1,
    test: Annotated[float, typer.Option(help="Share of labelled images held out for testing.")] = 0.1,
    labelled: Annotated[float, typer.Option(help="Share of train that keeps its labels (rest: unlabelled).")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same split.")] = 0,
    from_split: Annotated[Path | None, typer.Option("--from", help="Re-partition an existing split's train part instead of making a new split.")] = None,
):
    """Make a reproducible train/val/test split with a labelled/unlabelled partition of train."""
    from kmine.data import load_split, make_split, save_split, scan_dataset

    index = scan_dataset(data)
    _report_problems(index)
    if from_split:
        s = load_split(from_split).with_labelled_fraction(labelled, seed)
    else:
        s = make_split(index.labelled_stems, val_fraction=val, test_fraction=test, labelled_fraction=labelled, seed=seed)
    save_split(s, out)
    typer.echo(
        f"{out}: train {len(s.train)} (labelled {len(s.labelled)}, unlabelled {len(s.unlabelled)}), "
        f"val {len(s.val)}, test {len(s.test)}, seed {seed}"
    )


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="Dataset folder with images/ and masks/.")],
    out: Annotated[Path, typer.Option(help="Run folder: checkpoints, history.jsonl, result.json. An unfinished run there resumes.")] = Path("runs/train"),
    schedule: Annotated[Schedule, typer.Option(help="supervised: labelled only; one-time: pseudo-labels once; continuous: afresh at every revisit; extended: supervised for both phases (the same-compute control).")] = Schedule["continuous"],
    split_file: Annotated[Path | None, typer.Option("--split", help="Split JSON (default: <data>/split.json, else a seeded 80/10/10 split).")] = None,
    labelled: Annotated[float | None, typer.Option(help="Share of train that keeps its labels, e.g. 0.75 (default: the split's own partition).")] = None,
    encoder: Annotated[str, typer.Option(help="Student encoder: timm-tf_efficientnet_lite0 (ImageNet weights) or resnet34 (paper's; random init here).")] = "timm-tf_efficientnet_lite0",
    encoder_init: Annotated[Path | None, typer.Option(help="Start the encoder from this checkpoint (e.g. `kmine pretrain`'s encoder.pt).")] = None,
    teacher: Annotated[Teacher, typer.Option(help="SAM teacher (litemedsam takes box prompts only).")] = Teacher[DEFAULT_TEACHER],
    teacher_checkpoint: Annotated[Path | None, typer.Option(help="Teacher checkpoint file overriding the weights folder.")] = None,
    prompts: Annotated[Prompts, typer.Option(help="Prompt kinds: per-component (points+box per connected component), or one prompt set around everything (the paper: points+box).")] = Prompts["per-component"],
    n_points: Annotated[int, typer.Option(help="Foreground points at the student's highest probabilities.")] = 1,
    negatives: Annotated[int, typer.Option(help="Background points inside the box, at the student's lowest probabilities.")] = 0,
    pseudo_label: Annotated[str, typer.Option(help="Pseudo-label rule: teacher (the paper), student (self-training), fuse (pixel vote of both), gate (teacher if it agrees with the student).")] = _STRATEGY.label,
    teacher_size: Annotated[int, typer.Option(help="Side of the crop the teacher sees (0: the student's training crop).")] = _STRATEGY.teacher_size or 0,
    tta: Annotated[bool, typer.Option("--tta/--no-tta", help="Prompt from the student's mean over flipped/rotated views.")] = _STRATEGY.tta,
    tta_views: Annotated[int, typer.Option(help="Views in that mean: 2 (identity, left-right flip), 4 (the flips) or 8 (flips and rotations).")] = _STRATEGY.tta_views,
    multimask: Annotated[str, typer.Option(help="Teacher output: single, or agree (of SAM's candidate masks, the one closest to the student's).")] = _STRATEGY.multimask,
    doubt_weight: Annotated[float, typer.Option(help="Loss weight of pixels where the student's and the teacher's masks differ.")] = _STRATEGY.doubt_weight,
    seed: Annotated[int, typer.Option(help="Seed for splits, shuffling, augmentation, prompts, init.")] = 0,
    epochs: Annotated[int, typer.Option(help="Most epochs per phase (supervised, then mining).")] = 100,
    mining_epochs: Annotated[int | None, typer.Option(help="Most epochs of the second phase when it should differ from --epochs (the few-labels benchmarks cap it at 12).")] = _TRAIN.mining_epochs,
    early_stop: Annotated[int, typer.Option(help="Epochs without validation-loss improvement that end a phase.")] = 10,
    size: Annotated[int, typer.Option(help="Training size S: shortest side rescaled to S, centre crop S×S (multiple of 32).")] = 224,
    batch_size: Annotated[int, typer.Option(help="Images per batch (labelled and unlabelled together).")] = 8,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 5e-5,
    k: Annotated[float, typer.Option(help="BCE weight in Dice + k·BCE.")] = 0.2,
    lam: Annotated[float, typer.Option(help="Weight λ of the pseudo-label loss.")] = _TRAIN.lam,
    lam_rampup: Annotated[float, typer.Option(help="Second-phase epochs over which λ grows from 0.")] = _TRAIN.lam_rampup,
    second_phase: Annotated[SecondPhase, typer.Option(help="fresh: a new optimizer for the second phase (the paper); continue: the supervised phase's.")] = SecondPhase[_TRAIN.second_phase],
    perturb: Annotated[Perturb, typer.Option(help="The second phase trains on strongly perturbed views (colour, gamma, blur, noise, CutMix) of the pseudo-labelled images (pseudo) or of all (strong).")] = Perturb[_TRAIN.perturb],
    labelled_share: Annotated[float, typer.Option(help="Share of each second-phase batch drawn from the labelled images; 0: labelled and unlabelled shuffled together (the paper's).")] = _TRAIN.labelled_share or 0.0,
    paper: Annotated[bool, typer.Option("--paper", help="The paper's recipe: SAM's mask as the pseudo-label, no TTA or vote, fresh optimizer, λ 0.25, no perturbation, batches as they come (overrides those options).")] = False,
    no_augment: Annotated[bool, typer.Option("--no-augment", help="Turn off flips/rotation/transpose.")] = False,
    cache_dir: Annotated[Path | None, typer.Option(help="Optional on-disk store of teacher encodings, reused across runs.")] = None,
    weights_dir: WeightsDir = None,
    device: Device = "auto",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
):
    """Train a student (and mine the teacher for pseudo-labels); prints validation Dice/IoU."""
    from kmine.prompts import PromptConfig
    from kmine.training import TrainConfig
    from kmine.training import train as run_training

    _setup_logging(verbose)
    try:
        config = TrainConfig(
            data=str(data), split=str(split_file) if split_file else None, labelled_fraction=labelled,
            schedule=schedule.value, encoder=encoder, encoder_init=str(encoder_init) if encoder_init else None, teacher=teacher.value,
            teacher_checkpoint=str(teacher_checkpoint) if teacher_checkpoint else None,
            prompts=PromptConfig.parse(prompts.value, n_points=n_points, negatives=negatives), seed=seed, max_epochs=epochs,
            mining_epochs=mining_epochs,
            strategy=PseudoStrategy(
                label=pseudo_label, teacher_size=teacher_size or None, tta=tta, tta_views=tta_views, multimask=multimask, doubt_weight=doubt_weight
            ),
            early_stop=early_stop, size=size, batch_size=batch_size, lr=lr, k=k, lam=lam, lam_rampup=lam_rampup,
            second_phase=second_phase.value, perturb=perturb.value, labelled_share=labelled_share or None, augment=not no_augment,
            cache_dir=str(cache_dir) if cache_dir else None, weights_dir=str(weights_dir) if weights_dir else None,
            device=device,
        )
        if paper:
            config = config.as_paper()
        result = run_training(config, out, callbacks=[_EpochPrinter()])
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    best = result.best
    typer.echo(
        f"best ({best.get('phase')} epoch {best.get('epoch', -1) + 1}): val Dice {best.get('val_dice', float('nan')):.4f} "
        f"IoU {best.get('val_iou', float('nan')):.4f} → {result.best_checkpoint}"
    )


class _EpochPrinter(Callback):
    """Prints one line per epoch (the CLI's view of the training callback)."""

    def on_phase_start(self, phase, trainer):
        typer.echo(f"— {phase} phase")

    def on_epoch_end(self, r):
        extra = ""
        if "quality_pseudo_dice" in r:
            extra = f" | on unlabelled, Dice: student {r['quality_student_dice']:.3f} pseudo-labels {r['quality_pseudo_dice']:.3f}"
        if r.get("encode_calls"):
            extra += f" | encodes {r['encode_calls']}"
        typer.echo(
            f"{r['phase']} epoch {r['epoch'] + 1}: loss {r['train_loss']:.4f} val loss {r['val_loss']:.4f} "
            f"Dice {r['val_dice']:.4f} IoU {r['val_iou']:.4f} lr {r['lr']:.1e} {r['seconds']:.0f}s{extra}"
        )



IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"}


def _image_files(inputs: list[Path]) -> list[Path]:
    files = []
    for p in inputs:
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            files.append(p)
        else:
            _fail(f"{p}: no such file or folder")
    return files


@app.command()
def pretrain(
    data: Annotated[Path, typer.Argument(help="Dataset folder; its train images (labelled and unlabelled) are used, no masks.")],
    out: Annotated[Path, typer.Option(help="Folder for encoder.pt and history.json.")] = Path("runs/pretrain"),
    split_file: Annotated[Path | None, typer.Option("--split", help="Split JSON (default: <data>/split.json, else a seeded 80/10/10 split).")] = None,
    encoder: Annotated[str, typer.Option(help="Student encoder to pretrain (as `kmine train --encoder`).")] = "timm-tf_efficientnet_lite0",
    from_scratch: Annotated[bool, typer.Option("--from-scratch", help="Start from random weights instead of ImageNet's.")] = False,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the train images.")] = 10,
    size: Annotated[int, typer.Option(help="Side of each random view in pixels.")] = 128,
    batch_size: Annotated[int, typer.Option(min=2, help="Images per step (two views each; the others are negatives).")] = 32,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    temperature: Annotated[float, typer.Option(help="NT-Xent temperature.")] = 0.5,
    seed: Annotated[int, typer.Option(help="Seed for views and order.")] = 0,
    weights_dir: WeightsDir = None,
    device: Device = "auto",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
):
    """Self-supervised SimCLR pretraining of the student's encoder on the train images; start
    `kmine train --encoder-init OUT/encoder.pt` from it (the paper's "SimCLR +" rows)."""
    from kmine.training.simclr import SimCLRConfig
    from kmine.training.simclr import pretrain as run_pretraining

    _setup_logging(verbose)
    try:
        config = SimCLRConfig(
            data=str(data), split=str(split_file) if split_file else None, encoder=encoder, pretrained=not from_scratch,
            size=size, batch_size=batch_size, epochs=epochs, lr=lr, temperature=temperature, seed=seed,
            weights_dir=str(weights_dir) if weights_dir else None, device=device,
        )
        path = run_pretraining(config, out)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    history = json.loads((out / "history.json").read_text())["history"]
    for r in history:
        typer.echo(f"epoch {r['epoch'] + 1}: loss {r['loss']:.4f}, twin found {r['twin_accuracy']:.1%} ({r['seconds']:.0f} s)")
    typer.echo(f"→ {path}")


@app.command()
def predict(
    checkpoint: Annotated[Path, typer.Argument(help="A student checkpoint (best.pt of a training run).")],
    inputs: Annotated[list[Path], typer.Argument(help="Image files or folders of images, any size.")],
    out: Annotated[Path, typer.Option(help="Output folder: <stem>.png masks (0/255, input size) and <stem>_overlay.png.")] = Path("predictions"),
    mode: Annotated[Mode, typer.Option(help="student: the student alone; refine: student (4 flips) prompts SAM, their pixel vote; sam: SAM's own mask.")] = Mode["student"],
    teacher: Annotated[Teacher, typer.Option(help="SAM teacher for refine and sam modes.")] = Teacher[DEFAULT_TEACHER],
    prompts: Annotated[Prompts | None, typer.Option(help="Prompt kinds for refine mode (default: the checkpoint's).")] = None,
    overlay: Annotated[bool, typer.Option(help="Also write an overlay with masks and prompts.")] = True,
    weights_dir: WeightsDir = None,
    device: Device = "auto",
):
    """Predict masks for images; one PNG per image at the image's own full size."""
    import numpy as np
    from PIL import Image

    from kmine.data import DataError, load_image
    from kmine.predict import Predictor
    from kmine.prompts import PromptConfig
    from kmine.training.setup import resolve_device
    from kmine.visualize import render_overlay

    dev = str(resolve_device(device))
    teacher_model = None
    if mode != Mode["student"]:
        from kmine.teacher import build_teacher

        teacher_model = build_teacher(teacher.value, weights_dir=weights_dir, device=dev)
    predictor = Predictor.from_checkpoint(checkpoint, teacher=teacher_model, prompts=PromptConfig.parse(prompts.value) if prompts else None, device=dev)
    out.mkdir(parents=True, exist_ok=True)
    files = _image_files(inputs)
    failed = 0
    from tqdm.auto import tqdm

    for f in tqdm(files, desc="predict", unit="img", disable=None):  # on a terminal only
        try:
            image = load_image(f)
        except DataError as e:
            typer.secho(f"warning: {e}", fg=typer.colors.YELLOW, err=True)
            failed += 1
            continue
        p = predictor.predict(image, mode.value)
        Image.fromarray(p.mask.astype(np.uint8) * 255).save(out / f"{f.stem}.png")
        if mode == Mode["refine"]:  # SAM's own mask beside the vote (empty when nothing prompted it)
            sam = p.teacher_mask if p.teacher_mask is not None else np.zeros_like(p.mask)
            Image.fromarray(sam.astype(np.uint8) * 255).save(out / f"{f.stem}_sam.png")
        if overlay:
            Image.fromarray(render_overlay(image, p.student_mask, p.refined_mask, p.prompts)).save(out / f"{f.stem}_overlay.png")
    typer.echo(f"wrote {len(files) - failed} masks to {out}" + (f"; {failed} unreadable images skipped" if failed else ""))


@app.command()
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="A student checkpoint (best.pt).")],
    data: Annotated[Path, typer.Argument(help="Dataset folder with images/ and masks/.")],
    subset: Annotated[Subset, typer.Option(help="Which part of the split to score (all: every labelled image).")] = Subset["val"],
    split_file: Annotated[Path | None, typer.Option("--split", help="Split JSON (default: the checkpoint's own split).")] = None,
    mode: Annotated[Mode, typer.Option(help="student, refine (student → SAM, their vote) or sam (SAM's own mask).")] = Mode["student"],
    frame: Annotated[Frame, typer.Option(help="crop: paper protocol (shortest side S, centre crop); full: whole image at its own size.")] = Frame["crop"],
    teacher: Annotated[Teacher, typer.Option(help="SAM teacher for refine and sam modes.")] = Teacher[DEFAULT_TEACHER],
    out: Annotated[Path, typer.Option(help="Folder for the per-image CSV and summary JSON.")] = Path("evaluation"),
    weights_dir: WeightsDir = None,
    device: Device = "auto",
):
    """Per-image Dice and IoU (threshold 0.5; both masks empty = 1), mean ± std, CSV + JSON."""
    from kmine.data import Split, load_split, scan_dataset
    from kmine.evaluation import evaluate as run_eval
    from kmine.predict import Predictor
    from kmine.student import read_student_checkpoint
    from kmine.training.setup import resolve_device

    dev = str(resolve_device(device))
    index = scan_dataset(data)
    _report_problems(index)
    if split_file:
        s = load_split(split_file)
    else:
        meta = read_student_checkpoint(checkpoint)["extra"]
        if "split" not in meta:
            _fail(f"{checkpoint} records no split; pass --split")
        s = Split(**meta["split"])
    stems = index.labelled_stems if subset.value == "all" else getattr(s, subset.value)
    teacher_model = None
    if mode != Mode["student"]:
        from kmine.teacher import build_teacher

        teacher_model = build_teacher(teacher.value, weights_dir=weights_dir, device=dev)
    predictor = Predictor.from_checkpoint(checkpoint, teacher=teacher_model, device=dev)
    try:
        report = run_eval(predictor, index, list(stems), mode.value, frame.value)
    except ValueError as e:
        _fail(str(e))
    csv_path, json_path = report.write(out, f"{subset.value}_{mode.value}_{frame.value}")
    s_ = report.summary
    typer.echo(
        f"{subset.value} ({s_['n']} images, {mode.value}, {frame.value}): Dice {s_['dice_mean']:.4f} ± {s_['dice_std']:.4f}  "
        f"IoU {s_['iou_mean']:.4f} ± {s_['iou_std']:.4f}\n→ {csv_path}\n→ {json_path}"
    )


@app.command()
def experiment(
    config: Annotated[Path, typer.Argument(help="Experiment config (YAML/JSON): datasets, fractions, schedules, teachers, prompts, seeds, train settings.")],
    out: Annotated[Path | None, typer.Option(help="Output folder (default runs/experiments/<name>). Finished arms are skipped on re-runs.")] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Arms trained at once, each in its own process (several small students share one GPU).")] = 1,
    time_limit: Annotated[float | None, typer.Option(min=1, help="Seconds; arms still training then stop after their epoch in flight and are evaluated on their best checkpoint (marked in the table, resumed by the next run).")] = None,
    arm: Annotated[str | None, typer.Option(hidden=True, help="Run this arm alone (a child of --jobs).")] = None,
    deadline: Annotated[float | None, typer.Option(hidden=True, help="Unix time at which --arm stops.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
):
    """Run every arm of an experiment; writes results.json and a Table-1-shaped table.md."""
    from kmine.experiment import ExperimentConfig, run_experiment, run_one

    _setup_logging(verbose)
    try:
        cfg = ExperimentConfig.load(config)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    out = out or Path("runs/experiments") / cfg.name
    if arm:
        run_one(cfg, out, arm, deadline)
        return
    try:
        run_experiment(cfg, out, jobs=jobs, time_limit=time_limit)
    except RuntimeError as e:
        typer.echo((out / "table.md").read_text())
        _fail(str(e), code=1)
    typer.echo((out / "table.md").read_text())
    typer.echo(f"→ {out / 'results.json'}")


@app.command()
def demo(
    data: Annotated[Path | None, typer.Option(help="Small dataset to train on (default ../shared/data/covid-qu-ex-sample).")] = None,
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("runs/demo"),
    epochs: Annotated[int, typer.Option(help="Most epochs per phase.")] = 6,
    device: Device = "auto",
):
    """A few minutes' tour: split a small real dataset 50 % labelled, train with continuous
    SAM mining, and print test Dice/IoU for the student and for student → SAM."""
    from kmine.demo import run_demo

    try:
        run_demo(data, out, epochs, device, echo=typer.echo, callbacks=[_EpochPrinter()])
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))


if __name__ == "__main__":
    app()
