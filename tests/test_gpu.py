"""GPU checks (``pytest -m gpu``; skipped without CUDA): train, evaluate, predict, bf16, a resume that
ends identical under ``trainer.deterministic=true``, and the host syncs of 100 training steps counted
by ``torch.cuda.set_sync_debug_mode("warn")``.

``CNNZOO_DEVICE=cpu`` runs the same tests on the CPU (``scripts/gpu_check.sh --dry-run``), so the
script that runs them on a lent GPU has been run end to end before it gets one.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import pytest
import torch

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before CUDA starts: deterministic cuBLAS

DEVICE = os.environ.get("CNNZOO_DEVICE", "cuda")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(),
                                                  reason="needs CUDA (CNNZOO_DEVICE=cpu runs these on the CPU)")]
ACCELERATOR = "gpu" if DEVICE == "cuda" else "cpu"
RUN = ("model=asl_cnn", f"trainer.accelerator={ACCELERATOR}", "callbacks.input_inspection=null")
NO_FIGURES = "callbacks.prediction_report=null"  # the fp32 run and evaluate draw them on the device; the rest need not


def _train(run_dir: Path, *overrides: str, epochs: int = 1) -> dict:
    from cnnzoo.train import train
    from tests.conftest import compose_run

    return train(compose_run("train", run_dir, *RUN, f"trainer.max_epochs={epochs}", *overrides))


def _finite(result: dict) -> bool:
    values = [v for stage in result["metrics"].values() for v in stage.values()]
    return bool(values) and all(math.isfinite(v) for v in values)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_train_writes_fp32_checkpoints_that_load_on_cpu(data_dir: Path, tmp_path: Path, precision: str):
    result = _train(tmp_path, f"precision={precision}", *([NO_FIGURES] if precision == "bf16" else []))
    assert result["status"] == "completed" and _finite(result)
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    net = {k: v for k, v in state.items() if k.startswith("net.")}
    assert {v.dtype for v in net.values()} == {torch.float32} and {v.device.type for v in net.values()} == {"cpu"}


def test_evaluate_and_predict_a_checkpoint_trained_here(data_dir: Path, tmp_path: Path):
    from cnnzoo.evaluate import evaluate
    from cnnzoo.predict import predict
    from tests.conftest import compose_run

    _train(tmp_path / "run")
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    evaluated = evaluate(compose_run("evaluate", tmp_path / "eval", f"ckpt_path={ckpt}",
                                     f"trainer.accelerator={ACCELERATOR}"))
    assert 0 <= evaluated["metrics"]["test"]["accuracy"] <= 1
    records = predict(compose_run("predict", tmp_path / "predict", f"ckpt_path={ckpt}", "index=[0,1]"))
    assert [len(r["top_k"]) for r in records] == [3, 3]


def test_a_resume_ends_identical_to_an_uninterrupted_run(data_dir: Path, tmp_path: Path):
    # monitor=null: last.ckpt is written every epoch (with a monitor, Lightning writes it only when
    # the monitored metric improves, so last.ckpt can be an older epoch's)
    same = ("trainer.deterministic=true", "callbacks.model_checkpoint.monitor=null", NO_FIGURES)
    _train(tmp_path / "whole", *same, epochs=2)
    _train(tmp_path / "cut", *same, epochs=1)
    _train(tmp_path / "cut", *same, "ckpt_path=last", epochs=2)
    whole, cut = (torch.load(tmp_path / d / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
                  for d in ("whole", "cut"))
    assert whole["global_step"] == cut["global_step"]
    differ = [k for k in whole["state_dict"] if not torch.equal(whole["state_dict"][k], cut["state_dict"][k])]
    assert not differ, differ
    metrics = [json.loads((tmp_path / d / "metrics.json").read_text())["metrics"] for d in ("whole", "cut")]
    assert metrics[0] == metrics[1]


def test_host_syncs_in_100_steps_at_most_one_per_refresh_or_log(tmp_path: Path, monkeypatch):
    """``set_sync_debug_mode("warn")`` warns at each synchronizing CUDA call; the steps that warn are
    at most one per progress-bar refresh (20 steps) and one per logging interval (50 steps)."""
    import lightning as L

    import cnnzoo.train as entry
    from tests.conftest import compose_run, inject_callback, write_idx_dataset

    if DEVICE != "cuda":
        pytest.skip("sync debug mode is CUDA's; tests/performance/test_runs.py counts the CPU proxy")
    write_idx_dataset(tmp_path / "data" / "fashion_mnist", n_train=440, n_test=20)
    monkeypatch.setenv("CNNZOO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    steps: set[int] = set()
    caught: list[warnings.WarningMessage] = []

    class SyncDebug(L.Callback):
        """Sync debug mode on for steps 5..104; each step in which a sync warning arrived is noted."""

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self._note(batch_idx - 1)  # what came after the previous step's hooks (the loggers)
            torch.cuda.set_sync_debug_mode("warn" if 5 <= batch_idx <= 104 else 0)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self._note(batch_idx)

        def on_train_epoch_end(self, trainer, pl_module):
            torch.cuda.set_sync_debug_mode(0)

        def _note(self, step: int) -> None:
            if any("synchroniz" in str(w.message) for w in caught):
                steps.add(step)
            caught.clear()

    inject_callback(monkeypatch, SyncDebug())
    cfg = compose_run("train", tmp_path / "run", "model=fashion_mlp", "data.batch_size=4", "trainer.max_epochs=1",
                      "trainer.accelerator=gpu", "test=false")
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        caught = recorded  # the list the warnings go to
        entry.train(cfg)
    syncing = {s for s in steps if 5 <= s <= 104}
    assert len(syncing) <= 100 // 20 + 100 // 50, f"steps that synced: {sorted(syncing)}"
