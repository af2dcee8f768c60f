"""One Table-1-shaped markdown table from the rows of several ``kmine experiment`` runs.

    python benchmarks/merge_tables.py benchmarks/results/kvasir-cpu-session4/results.json \
        benchmarks/results/kvasir-cpu-seeds/results.json --name "Kvasir-SEG, cpu protocol"

Rows of the same arm (split, schedule, teacher, prompts, strategy, pretraining) from different
runs and seeds are averaged as one: mean ± std over seeds. A seed measured in two runs counts
once, from the file named last (its newer measurement).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kmine.experiment import ExperimentConfig, table


def merged_rows(paths: list[Path]) -> list[dict]:
    """Complete rows by arm key, the last file's winning; ValueError if the files' students differ
    (an arm key names no protocol: merging a GPU run into a CPU one would mix them)."""
    rows: dict[str, dict] = {}
    for path in paths:
        for row in json.loads(path.read_text()):
            if row.get("complete", True):
                rows[row["key"]] = row
    encoders = {row["encoder"] for row in rows.values()}
    if len(encoders) > 1:
        raise ValueError(f"these runs trained different students ({', '.join(sorted(encoders))}): merge one protocol at a time")
    return list(rows.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, nargs="+", help="results.json files of kmine experiment runs")
    parser.add_argument("--name", default="merged", help="the table's title")
    parser.add_argument("--subset", default="val")
    args = parser.parse_args()
    config = ExperimentConfig(name=args.name, datasets=[], subset=args.subset)
    try:
        rows = merged_rows(args.results)
    except ValueError as err:
        parser.error(str(err))
    print(table(rows, config), end="")


if __name__ == "__main__":
    main()
