"""DDP on 2 CPU ranks (``fashion_mlp``), as ``python -m cnnzoo.train trainer=ddp`` runs it: the ranks
share one default run dir, train as one process with the global batch does, and a run stopped by
SIGTERM in the middle of an epoch resumes with ``resume=true`` to the uninterrupted run's weights.

One uninterrupted DDP run (a module fixture: it costs two process start-ups) serves all three."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from cnnzoo.train import train
from tests.conftest import compose_run, popen_cli, write_datasets

pytestmark = pytest.mark.slow

# fashion_mlp has no BatchNorm and no dropout: two ranks of batch 16, gradients averaged, take the
# steps one process takes with batch 32 (rank r holds samples r, r + 2, ... of each permutation).
COMMON = ["model=fashion_mlp", "trainer.max_epochs=2", "callbacks.input_inspection=null", "trainer.accelerator=cpu",
          "~logger"]
# threads=1: results depend on the CPU thread count, which each rank would otherwise choose from the
# machine's load at its start.
DDP = [*COMMON, "trainer=ddp", "trainer.devices=2", "data.batch_size=16", "threads=1"]
KILL = ["+callbacks.kill._target_=tests.fault_injection.SignalAtStep", "+callbacks.kill.step=4", "+callbacks.kill.rank=0"]
RUN_ID = re.compile(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_[0-9a-f]{4}")


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    process = popen_cli("train", *args, cwd=cwd, env=env)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The uninterrupted 2-rank run, started in an empty dir with the default run dir."""
    root = tmp_path_factory.mktemp("ddp")
    env = {"CNNZOO_DATA_DIR": str(write_datasets(root / "data")), "XDG_CACHE_HOME": str(root / "cache")}
    done = _cli(*DDP, cwd=root, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return SimpleNamespace(done=done, root=root, env=env, outputs=root / "outputs")


def test_the_ranks_share_one_default_run_dir(ddp_run: SimpleNamespace):
    dirs = list(ddp_run.outputs.glob("*/*"))
    assert [d.relative_to(ddp_run.outputs).parent.name for d in dirs] == ["train"], dirs
    assert RUN_ID.fullmatch(dirs[0].name)
    run_dir = dirs[0]
    assert (run_dir / "train_ddp_process_1.log").exists()  # the second process ran in the same dir
    assert ddp_run.done.stdout.count("Run dir:") + ddp_run.done.stderr.count("Run dir:") == 1
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == 2
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["epoch001.ckpt", "last.ckpt"]
    assert not list(run_dir.glob(".metrics.json.*"))  # no temp files left by a second writer
    assert "sync_dist" not in ddp_run.done.stderr  # Lightning's advice does not apply: the counts are summed across ranks


def test_two_ranks_train_as_one_process_with_the_global_batch(ddp_run: SimpleNamespace, monkeypatch, tmp_path: Path):
    for name, value in ddp_run.env.items():
        monkeypatch.setenv(name, value)
    (run_dir,) = ddp_run.outputs.glob("train/*")
    train(compose_run("train", tmp_path / "single", *COMMON, "data.batch_size=32"))
    ddp_weights, one_weights = _weights(run_dir), _weights(tmp_path / "single")
    for name in ("net.dense.weight", "net.dense.bias", "net.dense_1.weight", "net.dense_1.bias"):
        assert (ddp_weights[name] - one_weights[name]).abs().max().item() <= 1e-5, name
    train(compose_run("train", tmp_path / "local", *COMMON, "data.batch_size=16"))  # one rank's batch alone: other steps
    assert (ddp_weights["net.dense.weight"] - _weights(tmp_path / "local")["net.dense.weight"]).abs().max().item() > 1e-4


def test_a_run_stopped_by_sigterm_mid_epoch_resumes_bit_identical(ddp_run: SimpleNamespace):
    (whole,) = ddp_run.outputs.glob("train/*")
    cut = ddp_run.root / "cut"
    steps_per_epoch = torch.load(whole / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] // 2
    assert steps_per_epoch > 2 and 5 % steps_per_epoch != 0  # step 5 is inside an epoch
    stopped = _cli(*DDP, *KILL, f"hydra.run.dir={cut}", cwd=ddp_run.root, env=ddp_run.env)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
    # Sent after FaultHandling's batch-end hook of step 4: the ranks agree on it at the end of step 5.
    assert torch.load(cut / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 5
    assert "training interrupted by SIGTERM in epoch 2/2, step 5" in stopped.stderr
    resumed = _cli(*DDP, *KILL, "resume=true", f"hydra.run.dir={cut}", cwd=ddp_run.root, env=ddp_run.env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected, got = _weights(whole), _weights(cut)
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    got, want = (json.loads((d / "metrics.json").read_text()) for d in (cut, whole))
    assert got["status"] == "completed" and got["metrics"]["test"] == want["metrics"]["test"]
    # Not compared: the resumed epoch's train metrics.  A checkpoint holds rank 0's running metric
    # state only, so the other rank's half of the interrupted epoch is not in its epoch average.
