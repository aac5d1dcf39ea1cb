#!/usr/bin/env python
"""``scripts/bench.py --extras``: Sign-MNIST CSV load times and a whole ``cnnzoo.train`` process's start-up
(time to its first optimizer step, peak RSS).  Imported by bench.py; ``FirstStep`` is the callback the
started process instantiates (``scripts/`` is on its PYTHONPATH)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

import lightning.pytorch as pl

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().with_name("bench_keras_worker.py")
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from cnnzoo.data.sources import SIGN_MNIST, default_data_dir  # noqa: E402 - after the repo root is on sys.path


class FirstStep(pl.Callback):
    """For ``--extras``: writes the wall-clock time of the first optimizer step to $BENCH_FIRST_STEP."""

    def on_train_batch_end(self, *args) -> None:
        if not (path := Path(os.environ["BENCH_FIRST_STEP"])).exists():
            path.write_text(str(time.time()))


def extras(tmp: Path) -> dict:
    """Sign-MNIST CSV load (no cache, then cached) and a whole ``cnnzoo.train`` process's start-up."""
    out: dict[str, Any] = {"sign_mnist_csv_load_s": {"error": f"no {SIGN_MNIST.folder}/ in {default_data_dir()}"}}
    if (source := default_data_dir() / SIGN_MNIST.folder).is_dir():
        shutil.copytree(source, tmp / "csv" / SIGN_MNIST.folder)
        times = []  # the first load finds the empty cache and parses the CSVs
        with mock.patch.dict(os.environ, {"XDG_CACHE_HOME": str(tmp / "csv" / "cache")}):
            for _ in range(4):
                started = time.perf_counter()
                SIGN_MNIST.load(tmp / "csv")
                times.append(time.perf_counter() - started)
        out["sign_mnist_csv_load_s"] = {"no_cache": round(times[0], 3), "cached": round(min(times[1:]), 3)}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(WORKER.parent), str(REPO)]),
           "BENCH_FIRST_STEP": str(tmp / "first_step")}
    started = time.time()
    subprocess.run([sys.executable, "-c", "import torch, lightning, hydra"], env=env, check=True)
    out["import_torch_lightning_hydra_s"] = round(time.time() - started, 2)
    command = [sys.executable, "-m", "cnnzoo.train", "model=asl_cnn", "trainer.max_epochs=1", "test=false",
               "+trainer.limit_train_batches=5", f"hydra.run.dir={tmp / 'startup'}",
               "+callbacks.first_step._target_=bench_extras.FirstStep"]
    with open(tmp / "startup.log", "w") as output:
        started = time.time()
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=output)
        _, status, usage = os.wait4(process.pid, 0)  # usage: this child's own peak RSS
    if status or not (tmp / "first_step").exists():
        return {**out, "cnnzoo_train": {"error": (tmp / "startup.log").read_text()[-500:]}}
    out["cnnzoo_train"] = {"command": " ".join(command[1:]), "wall_s": round(time.time() - started, 2),
                           "first_step_s": round(float((tmp / "first_step").read_text()) - started, 2),
                           "peak_rss_mb": round(usage.ru_maxrss / 1024)}
    return out
