"""Plot a run's learning curves from its TensorBoard event files into one PNG.

Usage: python scripts/plot_tensorboard.py <run_dir> [<run_dir> ...] --out curves.png [--title T]

Reads ``<run_dir>/tensorboard/<run name>`` (what ``cnnzoo.train`` writes) and draws loss and accuracy per
epoch, train and validation, one colour per run: the same curves TensorBoard's SCALARS tab shows,
as a file for the README and ``docs/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnnzoo.training.figures import plt, save_png
from cnnzoo.training.loggers import event_dir

CURVES = {"loss": ("train/loss", "val/loss"), "accuracy": ("train/accuracy", "val/accuracy")}


def epoch_values(events: EventAccumulator, tag: str) -> list[float]:
    return [event.value for event in events.Scalars(tag)] if tag in events.Tags()["scalars"] else []


def plot(run_dirs: list[Path], out: Path, title: str, labels: list[str] | None = None) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for colour, run_dir, label in zip(colours, run_dirs, labels or [d.name for d in run_dirs]):
        events = EventAccumulator(str(event_dir(run_dir)), size_guidance={"scalars": 0})
        events.Reload()
        for ax, (name, (train_tag, val_tag)) in zip(axes, CURVES.items()):
            for tag, style in ((train_tag, "--"), (val_tag, "-")):
                values = epoch_values(events, tag)
                epochs = range(1, len(values) + 1)
                ax.plot(epochs, values, style, color=colour, label=f"{label} {tag.split('/')[0]}")
            ax.set(xlabel="epoch", ylabel=name, title=name)
            ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, out)
    plt.close(fig)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--title", default="learning curves (from TensorBoard scalars)")
    args = parser.parse_args()
    for run_dir in args.run_dirs:
        try:
            event_dir(run_dir)
        except FileNotFoundError as e:
            raise SystemExit(f"error: {e}; expected a cnnzoo.train run dir") from None
    print(plot(args.run_dirs, args.out, args.title))


if __name__ == "__main__":
    main()
