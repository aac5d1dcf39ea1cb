"""Callbacks that break a training run on purpose at an exact step, for the fault-handling tests.

They are added from the command line (``+callbacks.kill._target_=tests.fault_injection.SignalAtStep``)
so the real ``python -m cnnzoo.train`` process receives a real signal at a known point.
"""

from __future__ import annotations

import os
import signal

import lightning as L
import torch


def _first_time(once: str | None) -> bool:
    """True unless the file ``once`` exists (it is created): a rerun is not stopped again."""
    if once is None:
        return True
    if os.path.exists(once):
        return False
    open(once, "w").close()
    return True


class SignalAtStep(L.Callback):
    """Send ``signal_name`` to this process once ``trainer.global_step`` reaches ``step``; with
    ``job``, only in that multirun job; with ``once``, only if the file ``once`` does not exist yet
    (it is created), so a rerun with the same overrides (``resume=true``) is not stopped again."""

    def __init__(self, step: int, signal_name: str = "SIGTERM", job: int | None = None,
                 once: str | None = None, rank: int | None = None) -> None:
        self.step, self.signum, self.job, self.once = step, signal.Signals[signal_name], job, once
        self.rank = rank  # only on this global rank of a DDP run

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step != self.step or self.rank not in (None, trainer.global_rank):
            return
        if self.job is not None:
            from hydra.core.hydra_config import HydraConfig

            if HydraConfig.get().job.num != self.job:
                return
        if _first_time(self.once):
            os.kill(os.getpid(), self.signum)


class PoisonWeightsAtStep(L.Callback):
    """Set every weight to NaN after optimizer step ``step`` (the next loss is then NaN)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                for parameter in pl_module.parameters():
                    parameter.fill_(float("nan"))


class WarnAtStart(L.Callback):
    """Raise a ``UserWarning`` from user code when training starts (it must still be shown)."""

    def on_train_start(self, trainer, pl_module) -> None:
        import warnings

        warnings.warn("a warning from the user's own callback", UserWarning, stacklevel=1)


class SignalInHook(L.Callback):
    """Send ``signal_name`` to this process in the callback hook ``hook`` (``on_validation_batch_end``,
    ``on_train_end``, ``on_test_batch_end`` ...) of epoch ``epoch`` (0-based) at batch ``batch``,
    once per process (a resumed run in the same process is not stopped again when ``once`` is a file)."""

    def __init__(self, hook: str, epoch: int = 0, batch: int = 0, signal_name: str = "SIGINT",
                 once: str | None = None) -> None:
        self.epoch, self.batch, self.signum, self.once = epoch, batch, signal.Signals[signal_name], once
        setattr(self, hook, self._maybe)

    def _maybe(self, trainer, *args) -> None:
        batch_idx = args[-1] if args and isinstance(args[-1], int) else 0
        if trainer.sanity_checking or trainer.current_epoch != self.epoch or batch_idx != self.batch:
            return
        if _first_time(self.once):
            os.kill(os.getpid(), self.signum)
