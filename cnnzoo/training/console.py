"""What a run prints: Keras-style epoch lines, a small table of final metrics, and no one else's noise.

Why this module exists: a learner reads a run's console as they read Keras' ``fit`` output.
``EpochLines`` prints one line per epoch that stays (``Epoch 3/20  12.4s  loss 0.1234  accuracy
0.9612  val_loss 0.2345  val_accuracy 0.9501``); the live bar within an epoch is shown only where
someone watches it (a terminal or a Jupyter kernel), as Keras' ``verbose='auto'`` does, so a log
file, CI or a SLURM job gets the epoch lines alone.  ``quiet_third_party`` silences, one by one,
the warnings and tips other libraries print on every run (``verbose=true`` or ``HYDRA_FULL_ERROR=1``
keeps them); a warning from the user's code or from cnnzoo still prints.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings

import lightning as L

#: (message regex, category) of the warnings other libraries raise on every ordinary run.
THIRD_PARTY_WARNINGS = (
    (r"`torch\.jit\.(trace|trace_method)` is deprecated", FutureWarning),  # Lightning's graph tracing
    (r".*isinstance\(treespec, LeafSpec\)", Warning),  # Lightning's pytree use on torch >= 2.9
    (r"The number of training batches \(\d+\) is smaller than the logging interval", Warning),
    (r"Total length of `list` across ranks is zero", Warning),  # no validation split, on purpose
    (r"Checkpoint directory .* exists and is not empty", Warning),  # a resumed run writes where it was
    # DDP: the epoch metrics are ClassCounts sums across ranks already (cnnzoo/training/metrics.py)
    (r"It is recommended to use `self\.log\('(train|val|test)/.*sync_dist=True", Warning),
)
#: Start of Lightning's info lines that are tips or restate the config.
THIRD_PARTY_INFO = ("GPU available:", "TPU available:", "HPU available:", "💡 Tip:")
LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
SHOWN = ("loss", "accuracy", "val_loss", "val_accuracy")


class _DropInfo(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(THIRD_PARTY_INFO)


def quiet_third_party(verbose: bool = False) -> None:
    """Silence the named third-party warnings and tips (idempotent); nothing when ``verbose`` or
    ``HYDRA_FULL_ERROR=1``."""
    if verbose or os.environ.get("HYDRA_FULL_ERROR") == "1":
        return
    for message, category in THIRD_PARTY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropInfo) for f in logger.filters):
            logger.addFilter(_DropInfo())


def watched() -> bool:
    """Whether someone watches the output live: a terminal, or a Jupyter kernel."""
    shell = type(sys.modules["IPython"].get_ipython()).__name__ if "IPython" in sys.modules else ""
    return shell == "ZMQInteractiveShell" or sys.stdout.isatty()


def epoch_of(epoch: int, max_epochs: int | None) -> str:
    """Lightning's 0-based ``epoch`` as the epoch lines and Keras count: ``3/20`` (``3`` with no
    epoch limit)."""
    return f"{epoch + 1}/{max_epochs}" if max_epochs is not None and max_epochs > 0 else str(epoch + 1)


def epoch_line(epoch: str, seconds: float, values: dict[str, float]) -> str:
    shown = "  ".join(f"{name} {values[name]:.4f}" for name in SHOWN if name in values)
    return f"Epoch {epoch}  {seconds:.1f}s  {shown}"


def metrics_table(metrics: dict[str, dict[str, float]]) -> str:
    """Final metrics, one row per split, rounded: what Keras' ``evaluate`` prints, for every split."""
    columns = ("loss", "accuracy", "f1", "top5")
    rows = [("", *columns)] + [(split, *(f"{metrics[split][c]:.4f}" if c in metrics[split] else "" for c in columns))
                              for split in ("train", "val", "test") if split in metrics]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns) + 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


class EpochLines(L.Callback):
    """One line per epoch that stays on screen (and in logs), Keras style."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.perf_counter()  # a run resumed mid-epoch starts no epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        line = epoch_line(epoch_of(trainer.current_epoch, trainer.max_epochs), time.perf_counter() - self.started,
                          pl_module.epoch_values())
        bar = trainer.progress_bar_callback
        if bar is not None and hasattr(bar, "print"):
            bar.print(line)  # above the live bar, which it leaves intact
        else:
            print(line, flush=True)
