"""``kmine demo``: a newcomer's first minutes on a small real dataset."""

from __future__ import annotations

from pathlib import Path

from kmine.weights import default_weights_dir


def default_demo_data() -> Path:
    """``covid-qu-ex-sample`` beside the weights folder (``../shared/data``)."""
    return default_weights_dir().parent / "data" / "covid-qu-ex-sample"


def run_demo(data: Path | None, out: Path, epochs: int, device: str, echo=print, callbacks=None) -> dict:
    """Split 50 % labelled (seed 0), train with continuous mining, score the test images
    with the student alone and with student → SAM. Returns the two summaries.

    Prompts are per component: the demo data are chest X-rays, and one box around both
    lungs prompts SAM far worse than one box per lung."""
    from kmine.data import make_split, save_split, scan_dataset
    from kmine.evaluation import evaluate
    from kmine.predict import Predictor
    from kmine.prompts import PromptConfig
    from kmine.teacher import build_teacher
    from kmine.training import TrainConfig, train
    from kmine.training.setup import resolve_device

    data = Path(data) if data else default_demo_data()
    if not data.is_dir():
        raise FileNotFoundError(f"demo dataset {data} not found; pass --data <folder with images/ and masks/>")
    out.mkdir(parents=True, exist_ok=True)
    index = scan_dataset(data)
    split = make_split(index.labelled_stems, val_fraction=0.17, test_fraction=0.17, labelled_fraction=0.5, seed=0)
    save_split(split, out / "split.json")
    echo(
        f"{data.name}: {len(split.labelled)} labelled, {len(split.unlabelled)} unlabelled, "
        f"{len(split.val)} val, {len(split.test)} test images"
    )
    config = TrainConfig(
        data=str(data), split=str(out / "split.json"), schedule="continuous", max_epochs=epochs,
        early_stop=epochs, lr=3e-4, batch_size=4, device=device, prompts=PromptConfig.parse("per-component"),
    )
    result = train(config, out / "run", callbacks)
    teacher = build_teacher(config.teacher, device=str(resolve_device(device)))
    predictor = Predictor.from_checkpoint(result.best_checkpoint, teacher=teacher)
    summaries = {}
    for mode in ("student", "refine"):
        report = evaluate(predictor, index, split.test, mode, "full")
        report.write(out, f"test_{mode}")
        summaries[mode] = s = report.summary
        label = "student alone " if mode == "student" else "student → SAM "
        echo(f"test, {label}: Dice {s['dice_mean']:.3f} ± {s['dice_std']:.3f}  IoU {s['iou_mean']:.3f} ± {s['iou_std']:.3f}")
    echo(f"model: {result.best_checkpoint}\nnext: kmine predict {result.best_checkpoint} <images> --mode refine")
    return summaries
