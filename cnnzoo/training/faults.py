"""What keeps a training run's results safe when something goes wrong.

- ``AtomicCheckpointIO``: checkpoints are written to a temporary file and renamed, so a killed
  write never leaves a truncated ``last.ckpt``.
- ``FaultHandling`` (a callback): SIGINT/SIGTERM stop training after the current batch (through
  Lightning's own SIGTERM path, which also keeps DDP ranks in step) and write ``last.ckpt`` of that
  exact state, which ``ckpt_path=last`` resumes; a second Ctrl+C stops at once.  A non-finite
  training loss stops the run before any checkpoint of the broken weights is written (checked
  with one host sync per logging interval, not one per step).
- ``check_output_dirs``: an output dir that cannot be written, or a disk without room for the
  checkpoints, is reported before training starts instead of after the first epoch.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException

from cnnzoo.atomic import atomic_path
from cnnzoo.errors import TrainingError

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` into a temporary file next to the target, then rename it over the target."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


class FaultHandling(L.Callback):
    """Graceful stop on SIGINT/SIGTERM with a resumable checkpoint; stop on a non-finite loss."""

    def __init__(self, checkpoint_dir: str | Path) -> None:
        self.checkpoint_dir = Path(checkpoint_dir)
        self.signal_number: int | None = None
        self.saved_to: Path | None = None
        self._previous: dict[int, Any] = {}
        self._losses: list[torch.Tensor] = []  # training losses since the last check, on their device
        self._where: list[tuple[int, int, int]] = []  # (epoch, global step, batch) of each

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning has installed its SIGTERM handler by now: it makes the loops stop at the end of
        # the current batch (on every DDP rank).  SIGINT is routed through it too.
        self._stop_after_batch = signal.getsignal(signal.SIGTERM)
        if callable(self._stop_after_batch):
            self._previous = {s: signal.signal(s, self._on_signal) for s in HANDLED_SIGNALS}

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.signal_number is not None:
            raise KeyboardInterrupt  # a second signal: stop now, without a checkpoint
        self.signal_number = signum
        self._stop_after_batch(signal.SIGTERM, frame)

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_handlers()
        self.check_losses()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        """Notes whether the loss is finite without a host sync; the notes are read (one sync) every
        ``log_every_n_steps`` steps, when Lightning syncs to log anyway, and before any checkpoint or
        validation, so broken weights are never saved or reported."""
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        self._losses.append(loss.detach())
        self._where.append((trainer.current_epoch, trainer.global_step, batch_idx))
        if trainer.global_step % max(1, trainer.log_every_n_steps) == 0:
            self.check_losses()

    def check_losses(self, *args: Any) -> None:
        """Raise ``TrainingError`` for the first non-finite loss noted since the last check."""
        losses, where, self._losses, self._where = self._losses, self._where, [], []
        if not losses:
            return
        stacked = torch.stack([loss.float().reshape(()) for loss in losses])
        bad = (~torch.isfinite(stacked)).nonzero().flatten().tolist()  # the one host sync
        if bad:
            epoch, step, batch_idx = where[bad[0]]
            raise TrainingError(
                f"non-finite training loss ({stacked[bad[0]].item()}) at epoch {epoch}, "
                f"step {step} (batch {batch_idx}); the checkpoints written before it are kept"
            )

    on_train_epoch_end = on_validation_start = check_losses

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        if self.signal_number is None:  # a signal's checkpoint is the state to resume from, as it is
            self.check_losses()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore_handlers()
        if isinstance(exception, SIGTERMException) and self.signal_number is not None:
            self.saved_to = self.checkpoint_dir / "last.ckpt"
            trainer.save_checkpoint(self.saved_to)  # every rank calls it; rank 0 writes

    def interruption_message(self, trainer: L.Trainer) -> str:
        name = signal.Signals(self.signal_number).name
        return (
            f"training interrupted by {name} at epoch {trainer.current_epoch}, step {trainer.global_step}; "
            f"state saved to {self.saved_to}; resume with ckpt_path={self.saved_to}"
        )


def check_output_dirs(paths: list[Path], checkpoint_bytes: int) -> None:
    """Each dir can be created and written, and the checkpoint dir has room for a few checkpoints."""
    for path in paths:
        try:
            path.mkdir(parents=True, exist_ok=True)
            with atomic_path(path / ".cnnzoo-write-test") as probe:
                probe.write_bytes(b"ok")
            (path / ".cnnzoo-write-test").unlink()
        except OSError as e:
            raise TrainingError(f"output dir {path}: cannot write there ({e.strerror or e})") from None
    needed = 3 * checkpoint_bytes  # best + last + the temporary copy while one is being replaced
    free = shutil.disk_usage(paths[-1]).free
    if free < needed:
        raise TrainingError(
            f"output dir {paths[-1]}: {free / 2**20:.1f} MiB free, checkpoints need about {needed / 2**20:.1f} MiB"
        )
