"""What keeps a training run's results safe when something goes wrong.

- ``AtomicCheckpointIO``: checkpoints are written to a temporary file and renamed, so a killed
  write never leaves a truncated ``last.ckpt``.
- ``FaultHandling`` (a callback): SIGINT/SIGTERM stop training after the current batch (through
  Lightning's own SIGTERM path, which also keeps DDP ranks in step) and write ``last.ckpt`` of that
  exact state, which ``ckpt_path=last`` resumes; a second Ctrl+C stops at once.  A signal during a
  validation within fit stops once that validation ends (Lightning cannot resume a validation
  halfway); one during the test pass after fit stops it after its current batch (the fit's
  ``last.ckpt`` is kept as it is).  A cluster's
  "about to be stopped, requeue me" signal is handled the same way, then handed to the handler that
  requeues the job: SIGUSR1 under Lightning's ``SLURMEnvironment(auto_requeue=True)`` (then
  ``scontrol requeue <job id>``, as Lightning's handler does; not Lightning's handler itself, which
  saves an ``hpc_ckpt_N.ckpt`` in the middle of a step, and which Lightning under SLURM then also loads
  for a later ``trainer.test`` instead of the final weights), and submitit's preemption/timeout
  signal (SIGUSR2; submitit then requeues the job with the same arguments).  ``checkpoints/.requeued`` tells the requeued job to resume (``cnnzoo.training.resume``).  A non-finite
  training loss stops the run before any checkpoint of the broken weights is written.  Each step's
  loss is copied into a small buffer on its device (one copy, no host sync per step); the host
  checks the buffer, in one read, every ``trainer.log_every_n_steps`` steps, before every
  checkpoint write and at each epoch's end.
- ``check_output_dirs``: an output dir that cannot be written, or a disk without room for the
  checkpoints, is reported before training starts instead of after the first epoch.
"""

from __future__ import annotations

import logging
import shutil
import signal
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException

from cnnzoo.atomic import atomic_path
from cnnzoo.errors import TrainingError
from cnnzoo.training.console import epoch_of

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
REQUEUE_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)
REQUEUED = ".requeued"  # in the checkpoint dir: this run was requeued, the next start resumes it
#: Logs "Received SIGTERM: 15" for every signal routed through Lightning's handler (a SIGINT too).
LIGHTNING_SIGNAL_LOG = logging.getLogger("lightning.pytorch.trainer.connectors.signal_connector")


def _requeues(handler: Any) -> bool:
    """Whether ``handler`` is Lightning's SLURM auto-requeue handler or submitit's."""
    handlers = getattr(handler, "signal_handlers", [handler])  # Lightning's _HandlersCompose
    names = {getattr(h, "__name__", "") for h in handlers}
    return bool(names & {"_slurm_sigusr_handler_fn", "checkpoint_and_try_requeue"})


def _scontrol_requeue(signum: int, frame: Any) -> None:
    """Lightning's SLURM requeue, without its mid-step hpc checkpoint: ``scontrol requeue <job id>``."""
    import os
    import subprocess

    from lightning.pytorch.utilities import rank_zero_info

    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    job_id = f"{array_job}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array_job else os.environ["SLURM_JOB_ID"]
    result = subprocess.call(["scontrol", "requeue", job_id])
    rank_zero_info(f"requeued SLURM job {job_id}" if result == 0 else f"scontrol requeue {job_id} failed ({result})")


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
        self._requeue: dict[int, Any] = {}  # signal -> the handler that requeues the job
        self._distributed = False
        self._losses: torch.Tensor | None = None  # on the loss's device: the losses not checked yet
        self._positions: list[tuple[int, int, int]] = []  # (epoch, step, batch) of each of them
        self._failure: str | None = None  # the first non-finite loss found, once found
        self._unchecked_steps = 0
        self._trainer: L.Trainer | None = None
        self._stopped = "training"  # or "testing": what a signal stopped
        self._deferred = False  # a signal received during a validation within fit

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The test pass after fit stops on a signal too, after its current batch (the fit's
        ``last.ckpt`` is already written: ``resume=true`` then only tests)."""
        self.on_train_start(trainer, pl_module)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning has installed its SIGTERM handler by now: it makes the loops stop at the end of
        # the current batch (on every DDP rank).  SIGINT is routed through it too.
        self._stop_after_batch = signal.getsignal(signal.SIGTERM)
        self._distributed = trainer.world_size > 1
        self._trainer = trainer
        if callable(self._stop_after_batch):
            self._requeue = {s: h for s in REQUEUE_SIGNALS if _requeues(h := signal.getsignal(s))}
            self._previous = {s: signal.signal(s, self._on_signal) for s in (*HANDLED_SIGNALS, *self._requeue)}

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.signal_number is not None:
            raise KeyboardInterrupt  # a second signal: stop now, without a checkpoint
        self.signal_number = signum
        if self._trainer.validating:
            self._deferred = True  # the stop waits for the end of this validation (on_validation_end)
            return
        self._stop(frame)

    def _stop(self, frame: Any) -> None:
        """Lightning's SIGTERM flag: the loops stop at the end of the current training batch."""
        if not self._distributed:
            # Muted: its line would call a SIGINT SIGTERM; cnnzoo's error line names the signal received.
            muted, LIGHTNING_SIGNAL_LOG.disabled = LIGHTNING_SIGNAL_LOG.disabled, True
            try:
                self._stop_after_batch(signal.SIGTERM, frame)
            finally:
                LIGHTNING_SIGNAL_LOG.disabled = muted
        # DDP: Lightning's handler would broadcast from inside the signal handler (a collective at
        # an arbitrary point, which can meet another rank's gradient all-reduce: a hang) and forward
        # the signal to the other ranks; instead every rank learns of it at the end of the batch.

    def _agree_to_stop(self, trainer: L.Trainer) -> None:
        """DDP: at each batch end, the signal any rank got (max over ranks; one small all-reduce);
        when there is one, every rank stops after this same batch, as Lightning's own SIGTERM flag
        makes a single process stop."""
        mine = torch.tensor([float(self.signal_number or 0)], device=trainer.strategy.root_device)
        agreed = int(trainer.strategy.reduce(mine, reduce_op="max").item())
        if agreed:
            self.signal_number = self.signal_number or agreed
            trainer._signal_connector.received_sigterm = True  # checked right after this batch

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    @property
    def requeued(self) -> bool:
        return self.signal_number in self._requeue

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The handlers stay until Lightning's teardown puts back those from before the stage: a
        # signal in the end-of-fit work (the other callbacks' on_train_end) stops the run too.
        self.check_loss(trainer)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._previous = {}  # Lightning's teardown has put back the handlers from before this stage

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        """Records the loss without a host sync; the records are read (one sync) every
        ``log_every_n_steps`` steps, when Lightning syncs to log anyway, before any checkpoint write
        and at each epoch's end, so broken weights are never saved.  Under DDP the ranks also agree
        here on a stop signal one of them received."""
        if self._distributed and self._previous:
            self._agree_to_stop(trainer)
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None:
            self._record_loss(loss.detach(), trainer, batch_idx)
        self._unchecked_steps += 1
        if self._unchecked_steps >= max(1, trainer.log_every_n_steps):
            self.check_loss(trainer)

    def _record_loss(self, loss: torch.Tensor, trainer: L.Trainer, batch_idx: int) -> None:
        """Device-side only: the loss into this interval's slot of the buffer; where it came from stays
        on the host."""
        size = max(1, trainer.log_every_n_steps)
        if self._losses is None or self._losses.device != loss.device or len(self._losses) != size:
            self._losses = torch.zeros(size, dtype=torch.float32, device=loss.device)
        self._losses[len(self._positions)] = loss.reshape(())
        self._positions.append((trainer.current_epoch, trainer.global_step, batch_idx))

    def check_loss(self, trainer: L.Trainer) -> None:
        """Raise ``TrainingError`` if any training loss since the start was non-finite: one host read
        of the losses recorded since the last check (a sync on an accelerator)."""
        self._unchecked_steps, positions, self._positions = 0, self._positions, []
        if positions and self._failure is None:
            bad = ~torch.isfinite(self._losses[: len(positions)])
            if bad.any().item():
                first = int(bad.nonzero()[0].item())
                epoch, step, batch = positions[first]
                self._failure = (f"non-finite training loss ({self._losses[first].item()}) in epoch "
                                 f"{epoch_of(epoch, trainer.max_epochs)}, step {step} (batch {batch}); "
                                 "the checkpoints written before it are kept")
        if self._failure is not None:
            raise TrainingError(self._failure)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        # Runs while Lightning assembles a checkpoint, before it is written: a bad loss stops the write.
        self.check_loss(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check_loss(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A signal received while fit validated stops training now that the validation is whole:
        Lightning stops a validation in the middle (after the current batch) and cannot resume one,
        so a resumed run would skip the rest of that validation and no longer match."""
        if self._deferred and self._previous:
            self._deferred = False
            self._stop(None)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore_handlers()
        bar = trainer.progress_bar_callback
        if isinstance(bar, TQDMProgressBar) and trainer.training:
            bar.on_train_end(trainer, pl_module)  # ends the live bar's line: the error line gets its own
        if isinstance(exception, SIGTERMException) and self.signal_number is not None:
            self._keep_state(trainer, trainer.testing)

    def stopped_after(self, trainer: L.Trainer, testing: bool) -> bool:
        """Whether a signal came once the stage's loops had ended (Lightning checks for one no more);
        the state is then kept as for a stop within them."""
        if self.signal_number is None or self.saved_to is not None or self._distributed:
            return False  # DDP: the ranks agree on a stop at batch ends only; one rank alone must not stop
        self._keep_state(trainer, testing)
        return self.saved_to is not None

    def _keep_state(self, trainer: L.Trainer, testing: bool) -> None:
        """``last.ckpt`` of the exact state (a test pass keeps the fit's), and a requeue if asked for."""
        self._stopped = "testing" if testing else "training"
        last = self.checkpoint_dir / "last.ckpt"
        if testing:  # the fit's, written when its last epoch ended
            self.saved_to = last if last.is_file() else None
            return
        self.saved_to = last
        trainer.save_checkpoint(self.saved_to, weights_only=False)  # every rank calls it; rank 0 writes
        requeue = self._requeue.get(self.signal_number)
        if requeue is not None and trainer.is_global_zero:
            (self.checkpoint_dir / REQUEUED).touch()
            if getattr(requeue, "__name__", "") != "checkpoint_and_try_requeue":
                requeue = _scontrol_requeue  # in place of Lightning's
            requeue(self.signal_number, None)  # submitit's exits the process (to be started again)

    @staticmethod
    def _where(trainer: L.Trainer) -> str:
        """``in epoch 2/3`` (a stop within it), or ``after epoch 2/3`` (a stop once that epoch, its
        validation and its checkpoint were done: the resume starts with the next one, if any)."""
        epochs = trainer.fit_loop.epoch_progress.current
        if epochs.completed and epochs.completed == epochs.started:
            return f"after epoch {epoch_of(epochs.completed - 1, trainer.max_epochs)}"
        return f"in epoch {epoch_of(trainer.current_epoch, trainer.max_epochs)}"

    def interruption_message(self, trainer: L.Trainer) -> str:
        name = signal.Signals(self.signal_number).name
        then = "the job is requeued and resumes it" if self.requeued else f"resume with ckpt_path={self.saved_to}"
        return (
            f"{self._stopped} interrupted by {name} {self._where(trainer)}, step {trainer.global_step}; "
            f"{'trained state in' if self._stopped == 'testing' else 'state saved to'} {self.saved_to}; {then}"
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
