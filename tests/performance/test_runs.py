"""Short in-process runs: bf16 (and auto) keep fp32 state, Sign-MNIST's test pass comes from its last
validation, and the training steps sync with the host at most once per logging interval."""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightning as L
import pytest
import torch

from cnnzoo.train import train
from cnnzoo.training import precision
from tests.conftest import compose_run, inject_callback, write_idx_dataset

FAST = ("trainer.accelerator=cpu", "~logger", "callbacks.input_inspection=null")


# /proc/cpuinfo as a CPU with and without bf16 would show it (precision=auto reads the flags)
CPUINFO = {"bf16 CPU": "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n",
           "CPU without bf16": "processor\t: 0\nflags\t\t: fpu avx2\n", "this CPU": None}


@pytest.mark.parametrize(("key", "cpu", "expected"), [("bf16", "this CPU", "bf16-mixed"),
                                                      ("auto", "bf16 CPU", "bf16-mixed"),
                                                      ("auto", "CPU without bf16", "32-true")])
def test_bf16_and_auto_runs_keep_weights_statistics_and_checkpoints_fp32(data_dir: Path, tmp_path: Path, monkeypatch,
                                                                         key: str, cpu: str, expected: str):
    if CPUINFO[cpu] is not None:
        monkeypatch.setattr(precision, "read_cpuinfo", lambda: CPUINFO[cpu])
    cfg = compose_run("train", tmp_path, "model=asl_cnn", "trainer.max_epochs=1", f"precision={key}", *FAST)
    result = train(cfg)
    assert cfg.trainer.precision == expected
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    tensors = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}  # the network
    assert tensors and {v.dtype for v in tensors.values()} == {torch.float32}
    stats = [k for k in tensors if k.endswith(("running_mean", "running_var"))]
    assert len(stats) == 6  # asl_cnn's three BatchNormalization layers
    slots = [v for state in checkpoint["optimizer_states"][0]["state"].values() for v in state.values()
             if torch.is_tensor(v) and v.is_floating_point() and v.dim()]
    assert slots and {v.dtype for v in slots} == {torch.float32}
    values = [v for stage in result["metrics"].values() for v in stage.values()]
    assert values and all(math.isfinite(v) for v in values)


def test_validation_on_the_test_file_is_not_evaluated_twice(data_dir: Path, tmp_path: Path, monkeypatch):
    def no_second_pass(*args, **kwargs):
        raise AssertionError("trainer.test ran although the last validation evaluated the test file")

    monkeypatch.setattr(L.Trainer, "test", no_second_pass)
    cfg = compose_run("train", tmp_path, "model=asl_cnn", "trainer.max_epochs=1", "trainer.accelerator=cpu",
                      "callbacks.input_inspection=null")
    result = train(cfg)
    assert cfg.data.validation == "test"
    assert result["metrics"]["test"] == result["metrics"]["val"]  # same file, same final weights
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"]["test"] == result["metrics"]["val"]
    assert (tmp_path / "confusion_matrix.png").stat().st_size and (tmp_path / "misclassified.png").stat().st_size


def test_a_partial_validation_still_gets_its_test_pass(data_dir: Path, tmp_path: Path):
    cfg = compose_run("train", tmp_path, "model=asl_cnn", "trainer.max_epochs=1", "+trainer.limit_val_batches=1",
                      *FAST)
    result = train(cfg)
    assert result["metrics"]["test"] != result["metrics"]["val"]  # 32 of the 48 test images validated


class CountSyncs(L.Callback):
    """Counts the calls that wait for the device (item, bool, tolist, cpu, float, int) during the
    steps ``first``..``last`` of training, and the steps in which any happened."""

    NAMES = ("item", "__bool__", "tolist", "cpu", "__float__", "__int__")

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last, self.count, self.originals = first, last, 0, {}
        self.steps: set[int] = set()
        self.step = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.step = batch_idx
        if batch_idx == self.first:
            for name in self.NAMES:
                original = self.originals[name] = getattr(torch.Tensor, name)
                setattr(torch.Tensor, name, self._counting(original))

    def _counting(self, original):
        def counted(tensor, *args, **kwargs):
            self.count += 1
            self.steps.add(self.step)
            return original(tensor, *args, **kwargs)
        return counted

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == self.last:
            self.restore()

    def restore(self) -> None:
        for name, original in self.originals.items():
            setattr(torch.Tensor, name, original)
        self.originals = {}


def test_at_most_one_host_sync_per_progress_bar_refresh_or_logging_interval(tmp_path: Path, monkeypatch):
    """On CPU a fair proxy of ``torch.cuda.set_sync_debug_mode``: of 100 steps, the default callbacks
    and TensorBoard on, those that wait for the device are at most one per progress-bar refresh
    (every 20 steps) and one per logging interval (every 50); a sync waits for the queue of kernels,
    so further reads in the same step cost little (tests/test_gpu.py counts them on a GPU)."""
    root = tmp_path / "data"
    write_idx_dataset(root / "fashion_mnist", n_train=440, n_test=20)
    monkeypatch.setenv("CNNZOO_DATA_DIR", str(root))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    counter = CountSyncs(first=5, last=104)  # 100 steps after 5 of warm-up
    cfg = compose_run("train", tmp_path / "run", "model=fashion_mlp", "data.batch_size=4", "trainer.max_epochs=1",
                      "trainer.accelerator=cpu", "test=false")
    cfg.callbacks.progress_bar.refresh_rate = 20
    cfg.trainer.log_every_n_steps = 50
    inject_callback(monkeypatch, counter)
    try:
        train(cfg)
    finally:
        counter.restore()
    allowed = 100 // 20 + 100 // 50
    assert 0 < len(counter.steps) <= allowed, f"syncs in steps {sorted(counter.steps)}: more than {allowed} of 100"
    assert counter.count <= 4 * allowed, f"{counter.count} reads of device values in 100 steps"
