"""A 2-rank CPU DDP run stopped by SIGTERM in the middle of an epoch resumes with ``resume=true``
and ends bit-identical to an uninterrupted DDP run."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch

from tests.conftest import run_cli

DDP = ["model=fashion_mlp", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "data.batch_size=16",
       "trainer.max_epochs=2", "callbacks.input_inspection=null", "~logger"]
KILL = ["+callbacks.kill._target_=tests.fault_injection.SignalAtStep", "+callbacks.kill.step=4", "+callbacks.kill.rank=0"]


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


@pytest.mark.slow
def test_a_ddp_run_stopped_by_sigterm_mid_epoch_resumes_bit_identical(data_dir: Path, tmp_path: Path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    done = run_cli("train", *DDP, *KILL[:1], "+callbacks.kill.step=999", f"hydra.run.dir={whole}")
    assert done.returncode == 0, done.stderr[-3000:]
    steps_per_epoch = torch.load(whole / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] // 2
    assert steps_per_epoch > 2 and 5 % steps_per_epoch != 0  # step 5 is inside an epoch
    stopped = run_cli("train", *DDP, *KILL, f"hydra.run.dir={cut}")
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
    # Sent after FaultHandling's batch-end hook of step 4: the ranks agree on it at the end of step 5.
    assert torch.load(cut / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 5
    assert "training interrupted by SIGTERM at epoch 1, step 5" in stopped.stderr
    resumed = run_cli("train", *DDP, *KILL, "resume=true", f"hydra.run.dir={cut}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected, got = _weights(whole), _weights(cut)
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    got, want = (json.loads((d / "metrics.json").read_text()) for d in (cut, whole))
    assert got["status"] == "completed" and got["metrics"]["test"] == want["metrics"]["test"]
    # Not compared: the resumed epoch's train metrics.  A checkpoint holds rank 0's running metric
    # state only, so the other rank's half of the interrupted epoch is not in its epoch average.
