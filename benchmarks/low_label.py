"""Mining against its control with few labels (issue 17): the tables BENCHMARKS.md reports.

    kmine experiment configs/kvasir-cpu-l10.yaml --out runs/experiments/kvasir-low
    python benchmarks/low_label.py runs/experiments/kvasir-low

Reads an experiment folder (``results.json`` and every arm's ``history.jsonl``) and prints, per
labelled fraction: each arm's reported Dice per seed, mean ± std over seeds and its difference
from the control of the same recipe (per seed, then mean ± std); the checkpoint's own val Dice
(what it was chosen by); the pseudo-labels' quality (Dice against the unlabelled images' true
masks, which training never sees); and cost: seconds per second-phase epoch against a
supervised epoch over as many images (the supervised arm's seconds per image, times the images
a second-phase epoch trains on).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from kmine.experiment import control_settings


def history(out: Path, key: str) -> list[dict]:
    path = out / key / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def recipe(row: dict) -> str:
    """An arm's name without its seed: schedule, teacher and strategy."""
    if row["schedule"] in ("supervised",):
        return "supervised"
    name = row["schedule"] if row["schedule"] == "extended" else f"{row['schedule']} {row['teacher']}"
    return f"{name} ({row.get('strategy', 'default')})"


def control_of(row: dict, recipes: dict) -> str | None:
    """The control recipe a mining arm is compared with: the control arm trained under the
    settings that change its labelled images' training (``kmine.experiment.control_settings``;
    an experiment's own ``train`` is taken not to set them), else the one named after its strategy
    (experiments run before controls were shared)."""
    if row["schedule"] in ("supervised", "extended"):
        return None
    wanted = control_settings(row.get("strategy_settings") or {}, {})
    for name, seeds in recipes.items():
        if name.startswith("extended") and next(iter(seeds.values())).get("strategy_settings", {}) == wanted:
            return name
    return f"extended ({row.get('strategy', 'default')})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="an experiment folder")
    args = parser.parse_args()
    rows = [r for r in json.loads((args.out / "results.json").read_text()) if r.get("complete", True)]
    sub = rows[0]["subset"]
    by_fraction: dict[float, dict[str, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        by_fraction[r["fraction"]][recipe(r)][r["seed"]] = r
    for fraction, recipes in sorted(by_fraction.items()):
        print(f"\n## {round(fraction * 100)} % labelled ({sub} part)\n")
        print(f"| arm | {sub} Dice per seed | mean ± std | − control per seed (points) | mean ± std | "
              "val Dice (chosen by) | 2nd phase's first epoch − supervised best, val (points) | "
              "s per 2nd-phase epoch | × supervised |")
        print("|---|---|---|---|---|---|---|---|---|")
        supervised = recipes.get("supervised", {})
        for name, seeds in recipes.items():
            dice = {s: r[f"{sub}_dice_mean"] for s, r in sorted(seeds.items())}
            control = recipes.get(control_of(next(iter(seeds.values())), recipes) or "", {})
            diffs = [100 * (d - control[s][f"{sub}_dice_mean"]) for s, d in dice.items() if s in control]
            cost, ratio = cost_per_epoch(args.out, seeds, supervised)
            chosen = ", ".join(f"{r.get('selected_val_dice') or 0:.3f}" for r in seeds.values())
            dips = ", ".join(dip(args.out, r, supervised.get(seed)) for seed, r in sorted(seeds.items()))
            print(f"| {name} | {', '.join(f'{d:.3f}' for d in dice.values())} | {_ms(list(dice.values()))} | "
                  f"{', '.join(f'{d:+.1f}' for d in diffs) or '–'} | {_ms(diffs, 1) if diffs else '–'} | "
                  f"{chosen} | {dips} | {cost} | {ratio} |")
        quality(args.out, recipes)


def dip(out: Path, row: dict, supervised: dict | None) -> str:
    """Val Dice after the second phase's first epoch minus the supervised phase's best: how far
    the second phase falls before it climbs (a fresh Adam's first steps; pseudo-labels' weight)."""
    second = [r for r in history(out, row["key"]) if r["phase"] == "mining" and "val_loss" in r]
    first = [r for r in history(out, supervised["key"]) if "val_loss" in r] if supervised else []
    if not second or not first:
        return "–"
    best = min(first, key=lambda r: r["val_loss"])["val_dice"]
    return f"{100 * (second[0]['val_dice'] - best):+.1f}"


def _ms(values: list[float], digits: int = 3) -> str:
    if len(values) < 2:
        return f"{values[0]:.{digits}f}" if values else "–"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def cost_per_epoch(out: Path, seeds: dict[int, dict], supervised: dict[int, dict]) -> tuple[str, str]:
    """Median seconds per second-phase epoch (validation and the benchmark's true-box scoring left
    out, a one-time arm's labelling pass spread over its epochs), and its ratio to a supervised
    epoch over as many images (the supervised arm's median training seconds per image)."""
    seconds, ratios = [], []
    for seed, row in seeds.items():
        runs = history(out, row["key"])
        phase = "supervised" if row["schedule"] == "supervised" else "mining"
        epochs = [r for r in runs if r["phase"] == phase and "val_loss" in r]
        sup = [r for r in history(out, supervised[seed]["key"]) if "val_loss" in r] if seed in supervised else []
        if not epochs or not sup:
            continue
        once = sum(m.get(f"t_{k}", 0) for m in runs if m["phase"] == "pseudo-labels"
                   for k in ("tta", "crops", "prompts", "encode", "decode")) / len(epochs)
        per_epoch = float(np.median([r["seconds"] - r["t_val"] - r.get("t_score", 0) for r in epochs])) + once
        images = _images(out, row)
        labelled = max(1, round(row["fraction"] * images))
        per_image = float(np.median([r["seconds"] - r["t_val"] for r in sup])) / labelled
        seconds.append(per_epoch)
        ratios.append(per_epoch / (per_image * (labelled if phase == "supervised" else images)))
    if not seconds:
        return "–", "–"
    return f"{np.mean(seconds):.0f}", f"{np.mean(ratios):.1f}"


def _images(out: Path, row: dict) -> int:
    """Images a second-phase epoch trains on: all of the run's train part (the control draws as
    many steps from its labelled images)."""
    from kmine.data import load_split, scan_dataset
    from kmine.training import TrainConfig
    from kmine.training.setup import resolve_split

    config = json.loads((out / row["key"] / "result.json").read_text())["config"]
    if config["split"]:
        return len(load_split(config["split"]).train)
    # No split file: the run made a seeded one from its dataset (which has to be here, then).
    run = TrainConfig.from_dict(config)
    return len(resolve_split(run, scan_dataset(run.data)).train)


def quality(out: Path, recipes: dict[str, dict[int, dict]]) -> None:
    """Pseudo-label quality per seed: one-time's single pass, continuous's first → last epoch."""
    lines = []
    for name, seeds in recipes.items():
        for seed, row in sorted(seeds.items()):
            made = [r for r in history(out, row["key"]) if "quality_pseudo_dice" in r]
            if not made:
                continue
            first, last = made[0], made[-1]

            def span(k: str, first=first, last=last) -> str:
                a, b = first.get(k), last.get(k)
                if a is None:
                    return "–"
                return f"{a:.3f}" if first is last else f"{a:.3f} → {b:.3f}"

            lines.append(f"| {name} | {seed} | {first['quality_n']} | {span('quality_student_dice')} | "
                         f"{span('quality_teacher_dice')} | {span('quality_pseudo_dice')} | "
                         f"{span('quality_pseudo_beats_student')} | {span('quality_truebox_dice')} |")
    if lines:
        print("\n| arm | seed | images | student (TTA) | SAM | pseudo-label | beats student on | SAM, true box |")
        print("|---|---|---|---|---|---|---|---|")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
