#!/usr/bin/env python
"""bf16 against fp32 on the real data: each recipe's recorded seeds side by side.

Reads the run records ``scripts/reproduce.py`` keeps (fp32: ``docs/results/runs/``, bf16:
``docs/results/bf16_runs/``, written by ``scripts/bf16_accuracy.sh``) and each recipe's judged split
from ``cnnzoo.recipes``, and prints one Markdown row per recipe: the fp32 and bf16 accuracies per
seed, the bf16 median, and whether it lies within the fp32 seeds' range or by how much it misses::

    .venv/bin/python scripts/bf16_compare.py            # the issue's six recipes
    .venv/bin/python scripts/bf16_compare.py fashion_mlp
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cnnzoo.recipes import recipe  # noqa: E402 - after the repo root is on sys.path

RECIPES = ["asl_cnn", "mnist_cnn", "fashion_cnn", "asl_cnn_best", "mnist_cnn_best", "fashion_cnn_best"]
RECORDS = {"fp32": REPO / "docs/results/runs", "bf16": REPO / "docs/results/bf16_runs"}


def accuracies(folder: Path, name: str, split: str) -> dict[int, float]:
    """seed -> final accuracy in % on ``split``, from the completed records."""
    found = {}
    for path in folder.glob(f"{name}-seed*.json"):
        record = json.loads(path.read_text())
        if record.get("status") == "completed":
            found[int(path.stem.rpartition("seed")[2])] = 100 * record["metrics"][split]["accuracy"]
    return dict(sorted(found.items()))


def verdict(fp32: dict[int, float], bf16: dict[int, float]) -> str:
    if len(bf16) < 3 or len(fp32) < 3:
        return f"{len(bf16)} bf16 / {len(fp32)} fp32 seeds recorded, 3 each needed"
    low, high, median = min(fp32.values()), max(fp32.values()), statistics.median(bf16.values())
    if low <= median <= high:
        return "within the fp32 range"
    gap = median - high if median > high else median - low
    return f"{gap:+.2f} points {'above the best' if gap > 0 else 'below the worst'} fp32 seed"


def row(name: str) -> str:
    split = recipe(name).split
    fp32, bf16 = (accuracies(RECORDS[kind], name, split) for kind in ("fp32", "bf16"))
    cells = [", ".join(f"{seed}: {acc:.2f}" for seed, acc in seeds.items()) or "none" for seeds in (fp32, bf16)]
    median = f"{statistics.median(bf16.values()):.2f}" if bf16 else "-"
    return f"| {name} | {split} | {cells[0]} | {cells[1]} | {median} | {verdict(fp32, bf16)} |"


def main(argv: list[str]) -> None:
    print("| recipe | split | fp32 accuracy % by seed | bf16 accuracy % by seed | bf16 median | bf16 median against the fp32 seeds |")
    print("|---|---|---|---|---|---|")
    for name in argv or RECIPES:
        print(row(name))


if __name__ == "__main__":
    main(sys.argv[1:])
