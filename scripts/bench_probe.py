"""What a benchmarked ``python -m cnnzoo.train`` process tells about itself, added through its own config
(``+callbacks.first_step._target_=bench_probe.FirstStep``, ``scripts/`` on its PYTHONPATH): the moment its
first optimizer step ended, so that a whole-process benchmark can split start-up (imports, data, set-up)
from the epoch without timing anything inside the process it measures."""

from __future__ import annotations

import os
import time
from pathlib import Path

import lightning.pytorch as pl


class FirstStep(pl.Callback):
    """Writes ``time.time()`` at the end of the first training batch to the file $BENCH_FIRST_STEP, once."""

    def __init__(self) -> None:
        self.path: Path | None = Path(os.environ["BENCH_FIRST_STEP"])

    def on_train_batch_end(self, *args) -> None:
        if self.path is not None:
            self.path.write_text(repr(time.time()))
            self.path = None
