"""Callbacks that break a training run on purpose at an exact step, for the fault-handling tests.

They are added from the command line (``+callbacks.kill._target_=tests.fault_injection.SignalAtStep``)
so the real ``python -m cnnzoo.train`` process receives a real signal at a known point.
"""

from __future__ import annotations

import os
import signal

import lightning as L
import torch


class SignalAtStep(L.Callback):
    """Send ``signal_name`` to this process once ``trainer.global_step`` reaches ``step``."""

    def __init__(self, step: int, signal_name: str = "SIGTERM") -> None:
        self.step, self.signum = step, signal.Signals[signal_name]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
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
