#!/usr/bin/env python
"""Reproduce every notebook's result, and the "beat it" recipes, on the real data; write docs/results.md.

Usage (real data in ``CNNZOO_DATA_DIR``; runs go to ``outputs/reproduce/<recipe>/seed<N>/``)::

    python scripts/reproduce.py                      # run what is missing (2 jobs), then write the report
    python scripts/reproduce.py --only asl_cnn       # the recipes whose name starts with asl_cnn
    python scripts/reproduce.py --seeds 3            # run seed 3 only (the report still covers every record)
    python scripts/reproduce.py --report-only        # rebuild docs/results.md (and README's table) from the records

Each run is ``python -m cnnzoo.train <recipe overrides> seed=N hydra.run.dir=<run dir>``. When it
completes, its ``metrics.json``, overrides, wall time and per-epoch validation accuracy (from
TensorBoard) are kept as a record in ``docs/results/runs/<recipe>-seed<N>.json``: small files
committed with the report, so the table can be rebuilt and extended on any machine. A recipe/seed
with a record is never run again; a run that was stopped (its process stopped, the session over) is
resumed from its ``checkpoints/last.ckpt``, so the full set, hours on a CPU, can be run in pieces.
Ctrl-C or SIGTERM stops it cleanly: the running trainings get SIGTERM, write their mid-epoch
``last.ckpt`` and exit, and no new run starts. Wall times add up the pieces (``reproduce.json`` per
run).
The report is built only from those records.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from cnnzoo.atomic import atomic_path, write_json_atomic
from cnnzoo.recipes import recipes

REPO = Path(__file__).resolve().parents[1]
MIN_SEEDS = 3  # a result holds or fails on the median of at least 3 seeds, never fewer
STOPPING = threading.Event()
RUNNING: set[subprocess.Popen] = set()


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What the report needs of a recipe; every fact is read from its config (``cnnzoo.recipes``)."""

    name: str
    model: str
    overrides: tuple[str, ...]
    split: str  # the split whose final accuracy is reported: "val" or "test"
    notebook: float | None  # the notebook's figure (accuracy)
    target: float | None  # the "beat it" target
    source: str

    @property
    def bound(self) -> float | None:
        """A reproduction holds at the notebook figure minus 0.5 points; a "beat it" at its target."""
        if self.target is not None:
            return self.target
        return None if self.notebook is None else self.notebook - 0.005


def load_recipes() -> tuple[Recipe, ...]:
    """The notebook recipes and the experiments with a target, in run-queue order: the notebooks
    with a figure, then the targets, then the rest."""
    found = []
    for r in recipes():
        if r.overrides[0].startswith("experiment=") and r.target_accuracy is None:
            continue  # a variant of a notebook recipe with nothing to reach
        found.append(Recipe(r.name, r.arch, r.overrides, r.split, r.notebook_accuracy, r.target_accuracy,
                            r.source if r.target_accuracy is None else ""))
    return tuple(sorted(found, key=lambda r: (r.target is None and r.notebook is None, r.target is not None)))


RECIPES = load_recipes()


def run_dir(out: Path, recipe: Recipe, seed: int) -> Path:
    return out / recipe.name / f"seed{seed}"


def record_path(records: Path, recipe: Recipe, seed: int) -> Path:
    return records / f"{recipe.name}-seed{seed}.json"


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def completed(path: Path) -> bool:
    """A finished run dir, or a record of one."""
    data = read_json(path / "metrics.json" if path.is_dir() else path) or {}
    return data.get("status") == "completed"


def keep_record(path: Path, record: Path, overrides: list[str], wall_time_s: float, pieces: int,
                environment: str) -> None:
    """The completed run's metrics.json plus the overrides it ran with, its total wall time and val/accuracy per epoch."""
    data = read_json(path / "metrics.json")
    data.update(overrides=overrides, wall_time_s_total=round(wall_time_s, 1), pieces=pieces,
                val_accuracy_per_epoch=[round(v, 5) for v in scalars(path, "val/accuracy")], environment=environment)
    write_json_atomic(record, data)


def stop(signum: int, frame) -> None:  # noqa: ANN001 - signal handler
    """Start no new run; ask the running ones to checkpoint and exit (cnnzoo.training.faults does that)."""
    STOPPING.set()
    for process in list(RUNNING):
        process.send_signal(signal.SIGTERM)


def run_one(recipe: Recipe, seed: int, out: Path, records: Path, threads: int, jobs: int, extra: list[str]) -> str:
    """Train one recipe/seed (resuming a stopped run); returns a one-line outcome."""
    if STOPPING.is_set():
        return f"{recipe.name} seed {seed}: not started (stopping)"
    path = run_dir(out, recipe, seed)
    resume = (path / "checkpoints" / "last.ckpt").is_file()
    overrides = [*recipe.overrides, f"seed={seed}", f"threads={threads}", *extra]
    command = [sys.executable, "-m", "cnnzoo.train", *overrides, f"hydra.run.dir={path}",
               *(["ckpt_path=last"] if resume else [])]
    path.mkdir(parents=True, exist_ok=True)
    record = read_json(path / "reproduce.json") or {"wall_time_s": 0.0, "pieces": 0}
    started = time.time()
    with open(path / "reproduce.log", "a") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        RUNNING.add(process)
        if STOPPING.is_set():  # the signal came while it was starting
            process.send_signal(signal.SIGTERM)
        code = process.wait()
        RUNNING.discard(process)
    record["wall_time_s"] += time.time() - started
    record["pieces"] += 1
    record["command"] = command
    write_json_atomic(path / "reproduce.json", record)
    if code == 0 and completed(path):
        keep_record(path, record_path(records, recipe, seed), overrides, record["wall_time_s"], record["pieces"],
                    environment(threads, jobs))
    return f"{recipe.name} seed {seed}: {'ok' if code == 0 else f'exit {code}, see {path}/reproduce.log'}" \
           f" ({record['wall_time_s']:.0f} s)"


def scalars(path: Path, tag: str) -> list[float]:
    """A scalar's values per epoch, from the run's TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from cnnzoo.training.loggers import event_dir

    logging.getLogger("tensorboard").setLevel(logging.ERROR)  # not its notes on a resumed run's graphs
    events = EventAccumulator(str(event_dir(path)), size_guidance={"scalars": 0})
    events.Reload()
    return [e.value for e in events.Scalars(tag)] if tag in events.Tags()["scalars"] else []


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def summarise(recipe: Recipe, records: Path) -> dict | None:
    """The recipe's row from every completed record, whichever call of the script ran it."""
    prefix = f"{recipe.name}-seed"
    runs = sorted((int(path.stem[len(prefix):]), read_json(path)) for path in records.glob(f"{prefix}*.json")
                  if path.stem[len(prefix):].isdigit())
    runs = [(seed, m) for seed, m in runs if m and m.get("status") == "completed"]
    if not runs:
        return None
    accs = [m["metrics"][recipe.split]["accuracy"] for _, m in runs]
    walls = [m["wall_time_s_total"] for _, m in runs]
    peaks = [max(m["val_accuracy_per_epoch"]) for _, m in runs if m["val_accuracy_per_epoch"]] if recipe.split == "val" else []
    median = statistics.median(accs)
    bound = recipe.bound
    return {
        "recipe": recipe.name, "model": recipe.model, "split": recipe.split, "seeds": [s for s, _ in runs],
        "median": median, "min": min(accs), "max": max(accs), "epochs": runs[0][1]["epochs"],
        "wall_median_s": statistics.median(walls), "peak_median": statistics.median(peaks) if peaks else None,
        "holds": None if bound is None or len(runs) < MIN_SEEDS else median >= bound,
        "runs": [(seed, acc, wall, sharing(m)) for (seed, m), acc, wall in zip(runs, accs, walls)],
    }


def sharing(record: dict) -> str:
    """How many runs the script ran at once, from the record's environment line (its wall time depends on it)."""
    found = re.search(r"(\d+) run\(s\) at a time", record.get("environment", ""))
    return f", {found.group(1)} at a time" if found else ""


def environment(threads: int, jobs: int) -> str:
    import lightning
    import torch

    cpu = platform.processor() or platform.machine()
    device = (f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available()
              else f"CPU ({os.cpu_count()} cores, {cpu}), {threads} torch thread(s) per run, {jobs} run(s) at a time")
    return f"{device}; Python {platform.python_version()}, torch {torch.__version__}, lightning {lightning.__version__}"


def report(records: Path, doc: Path, curves: Path) -> str:
    rows = [(recipe, summarise(recipe, records)) for recipe in RECIPES]
    devices = sorted({m.get("environment", "?") for path in records.glob("*.json") if (m := read_json(path))})
    lines = [
        "# Results: the notebooks reproduced, then beaten with the same architectures",
        "",
        "Written by `python scripts/reproduce.py` from the runs' records (`docs/results/runs/<recipe>-seed<N>.json`:"
        " each run's `metrics.json` with its wall time and validation accuracy per epoch); do not edit by hand.",
        "Every recorded seed (column `seeds`); accuracy in % on the split named (val = the ASL course's 7,172"
        " validation images, test = the 10,000 test images), final epoch.",
        "A reproduction holds when the median is at least the notebook figure minus 0.5 points; a `_best` recipe"
        " (same architecture, better training: `conf/experiment/<recipe>.yaml`) when it reaches its target.",
        "Wall time is the median of the runs' own times; runs sharing the 2 cores with more jobs (see each"
        " record's `environment`) took longer.",
        "",
        "Device" + (":" if devices else ": no runs yet."),
        *(f"- {device}" for device in devices),
        "",
        "| recipe | split | notebook | bound | median | min | max | peak val (median) | seeds | epochs | wall time per run | holds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for recipe, row in rows:
        if row is None:
            lines.append(f"| {recipe.name} | {recipe.split} | {pct(recipe.notebook)} | {pct(recipe.bound)} |"
                         " not run yet | | | | 0 | | | |")
            continue
        holds = {None: "–" if recipe.bound is None else "pending", True: "yes", False: "**no**"}[row["holds"]]
        lines.append(
            f"| {recipe.name} | {recipe.split} | {pct(recipe.notebook)} | {pct(recipe.bound)} | {pct(row['median'])} |"
            f" {pct(row['min'])} | {pct(row['max'])} | {pct(row['peak_median'])} | {len(row['seeds'])} |"
            f" {row['epochs']} | {row['wall_median_s'] / 60:.1f} min | {holds} |")
    missed = [(recipe, row) for recipe, row in rows if row and row["holds"] is False]
    if missed:
        lines += ["", *(f"- **{recipe.name} misses its {'target' if recipe.target else 'bound'} by {100 * (recipe.bound - row['median']):.2f} points**;"
                        f" what was tried is written in `conf/{'experiment' if recipe.target else 'model'}/{recipe.name}.yaml`."
                        for recipe, row in missed)]
    lines += ["", "Every run: seed, accuracy in %, its wall time and how many runs the script ran at once (`--jobs`);"
              " other work on the machine slowed some runs, so one recipe's times can differ several-fold.",
              "", "| recipe | runs |", "|---|---|"]
    for recipe, row in rows:
        if row:
            runs = "; ".join(f"seed {seed}: {pct(acc)} ({wall / 60:.1f} min{shared})" for seed, acc, wall, shared in row["runs"])
            lines.append(f"| {recipe.name} | {runs} |")
    lines += ["", "Notebook figures: " + "; ".join(f"{r.name}: {r.source}" for r in RECIPES if r.source) + "."]
    if curves.is_file():
        lines += ["", f"![asl_cnn learning curves]({curves.relative_to(doc.parent)})",
                  "", "asl_cnn, seed 1 of each recipe: the notebook recipe (RMSprop, constant rate) and asl_cnn_best"
                  " (augmented batches, Adam with one-cycle; its loss includes label smoothing 0.1, so it stays"
                  " above 0.5)."]
    text = "\n".join(lines) + "\n"
    with atomic_path(doc) as tmp:
        tmp.write_text(text)
    return text


HEADLINE = ("asl_cnn", "mnist_cnn", "fashion_mlp", "fashion_cnn")
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def update_readme(readme: Path, records: Path) -> None:
    """The headline rows (the four notebooks with a figure, both recipes) between the README's markers."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return
    lines = ["| model | notebook | notebook recipe here | `<model>_best` here | `_best` target |", "|---|---|---|---|---|"]
    for model in HEADLINE:
        notebook, best = (next(r for r in RECIPES if r.name == name) for name in (model, f"{model}_best"))
        cells = []
        for recipe in (notebook, best):
            row = summarise(recipe, records)
            cells.append("not run yet" if row is None else
                         f"{pct(row['median'])} ({len(row['seeds'])} seed{'s' if len(row['seeds']) > 1 else ''})")
        lines.append(f"| {model} ({notebook.split}) | {pct(notebook.notebook)} | {cells[0]} | {cells[1]} | {pct(best.target)} |")
    head, rest = text.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    with atomic_path(readme) as tmp:
        tmp.write_text(head + README_START + "\n" + "\n".join(lines) + "\n" + README_END + tail)


def plot_curves(out: Path, curves: Path) -> None:
    from cnnzoo.training.loggers import event_dirs

    runs = [run_dir(out, recipe, 1) for recipe in RECIPES if recipe.model == "asl_cnn"]
    runs = [path for path in runs if completed(path) and event_dirs(path)]
    if len(runs) == 2:  # both recipes' curves, else keep the figure there is
        sys.path.insert(0, str(REPO / "scripts"))
        from plot_tensorboard import plot

        plot(runs, curves, "asl_cnn: notebook recipe vs asl_cnn_best (TensorBoard scalars)",
             labels=[path.parent.name for path in runs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "reproduce")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "results.md")
    parser.add_argument("--records", type=Path, default=REPO / "docs" / "results" / "runs")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md", help="its results block is rewritten")
    parser.add_argument("--seeds", type=lambda text: [int(s) for s in text.split(",")], default=[1, 2, 3],
                        help="seeds to run, comma separated (default 1,2,3); the report covers every record")
    parser.add_argument("--only", default="", help="comma-separated recipe name prefixes")
    parser.add_argument("--exact", action="store_true", help="--only names whole recipes, not prefixes")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--curves", type=Path, default=None,
                        help="the learning-curves figure the report shows, rewritten from --out's runs "
                             "(default: asl_cnn_curves.png beside --doc)")
    parser.add_argument("extra", nargs="*", help="more Hydra overrides for every run, e.g. trainer=gpu")
    args = parser.parse_args()
    if "CNNZOO_DATA_DIR" not in os.environ:
        raise SystemExit("error: CNNZOO_DATA_DIR is not set; expected the folder with mnist/, sign_mnist/ (README)")
    if not args.readme.is_file():
        raise SystemExit(f"error: --readme {args.readme}: no such file; expected the README whose results block to rewrite")
    prefixes = [p for p in args.only.split(",") if p]
    recipes = [r for r in RECIPES if not prefixes or any(r.name == p if args.exact else r.name.startswith(p)
                                                         for p in prefixes)]
    if not args.report_only:
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        queue = [(r, s) for s in args.seeds for r in recipes if not completed(record_path(args.records, r, s))]
        print(f"{len(queue)} runs to do, {args.jobs} at a time", flush=True)
        with ThreadPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(run_one, *job, args.out, args.records, args.threads, args.jobs, args.extra) for job in queue]
            for future in as_completed(futures):
                print(future.result(), flush=True)
    curves = args.curves or args.doc.parent / "asl_cnn_curves.png"
    plot_curves(args.out, curves)
    print(report(args.records, args.doc, curves))
    update_readme(args.readme, args.records)


if __name__ == "__main__":
    main()
