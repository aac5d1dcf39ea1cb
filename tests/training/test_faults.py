"""Training faults: a signal mid-epoch, a non-finite loss, an unwritable or full output dir, and
determinism.  The signal tests kill a real ``python -m cnnzoo.train`` process at an exact step."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnnzoo.training import faults
from cnnzoo.errors import TrainingError
from cnnzoo.training.faults import AtomicCheckpointIO
from cnnzoo.train import train
from cnnzoo.training.loggers import event_dir
from tests.conftest import REPO, compose_run, run_cli

# mnist_mlp has Dropout (random masks) and no validation split; the data_dir fixture's MNIST has 96
# training images, so batches of 16 give 6 steps an epoch and step 15 is in the middle of epoch 2.
RUN = ["model=mnist_mlp", "trainer.max_epochs=3", "data.batch_size=16", "callbacks.input_inspection=null"]
KILL = ["+callbacks.kill._target_=tests.fault_injection.SignalAtStep", "+callbacks.kill.step=15"]


def _weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]


def _kill_at_step_15(run_dir: Path, signal_name: str) -> str:
    """Train until ``signal_name`` arrives after step 15; checks what is left and returns the error line."""
    killed = run_cli("train", *RUN, *KILL, f"+callbacks.kill.signal_name={signal_name}", f"hydra.run.dir={run_dir}")
    assert killed.returncode == 128 + signal.Signals[signal_name]
    last_line = killed.stderr.strip().splitlines()[-1]
    assert killed.stdout.splitlines()[-1].startswith("Epoch 2/3 ")  # step 15 is in the third epoch
    assert last_line == (
        f"error: training interrupted by {signal_name} in epoch 3/3, step 15; state saved to "
        f"{run_dir}/checkpoints/last.ckpt; resume with ckpt_path={run_dir}/checkpoints/last.ckpt"
    )
    assert "Received SIGTERM" not in killed.stderr and "weights_only" not in killed.stderr  # Lightning's lines
    interrupted = json.loads((run_dir / "metrics.json").read_text())
    assert interrupted["status"] == "interrupted" and interrupted["error"] == last_line.removeprefix("error: ")
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 15
    return last_line


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_143(data_dir: Path, tmp_path: Path):
    _kill_at_step_15(tmp_path, "SIGTERM")


@pytest.mark.slow
def test_ctrl_c_mid_epoch_then_resume_ends_exactly_like_an_uninterrupted_run(data_dir: Path, tmp_path: Path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert run_cli("train", *RUN, f"hydra.run.dir={whole}").returncode == 0
    _kill_at_step_15(cut, "SIGINT")
    same = [*KILL, "+callbacks.kill.signal_name=SIGINT"]  # ckpt_path=last needs the same config; step 15 is behind it
    resumed = run_cli("train", *RUN, *same, "ckpt_path=last", f"hydra.run.dir={cut}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    expected, got = _weights(whole / "checkpoints" / "last.ckpt"), _weights(cut / "checkpoints" / "last.ckpt")
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    whole_metrics, cut_metrics = (json.loads((d / "metrics.json").read_text()) for d in (whole, cut))
    assert cut_metrics["status"] == "completed" and cut_metrics["metrics"] == whole_metrics["metrics"]


@pytest.mark.slow
def test_ctrl_c_while_the_entry_point_imports_is_one_line_and_130(data_dir: Path, tmp_path: Path):
    started = subprocess.Popen([sys.executable, "-m", "cnnzoo.train", *RUN, f"hydra.run.dir={tmp_path}/run"],
                               cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=False)
    maps = Path(f"/proc/{started.pid}/maps")
    deadline = time.monotonic() + 120
    # torch's library mapped: past begin(), which takes SIGINT over, and seconds before the imports end
    while "libtorch" not in maps.read_text() and time.monotonic() < deadline:
        time.sleep(0.01)
    started.send_signal(signal.SIGINT)
    _, stderr = started.communicate(timeout=120)
    assert started.returncode == 130
    assert stderr == "error: interrupted by SIGINT while starting; nothing was written\n"
    assert not (tmp_path / "run").exists()


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(data_dir: Path, tmp_path: Path):
    cfg = compose_run("train", tmp_path, *RUN, "+callbacks.poison._target_=tests.fault_injection.PoisonWeightsAtStep",
                      "+callbacks.poison.step=8")
    with pytest.raises(TrainingError, match=r"non-finite training loss \(nan\) in epoch 2/3, step 9 \(batch 2\)"):
        train(cfg)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["global_step"] == 6 and all(torch.isfinite(w).all() for w in last["state_dict"].values())
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert result["status"] == "failed" and result["error"].startswith("non-finite training loss (nan)")


def test_an_unwritable_checkpoint_dir_fails_before_training(data_dir: Path, tmp_path: Path):
    (tmp_path / "file").write_text("not a directory")
    cfg = compose_run("train", tmp_path / "run", *RUN, f"callbacks.model_checkpoint.dirpath={tmp_path}/file/ckpts")
    with pytest.raises(TrainingError, match=rf"output dir {tmp_path}/file/ckpts: cannot write there"):
        train(cfg)
    recorded = json.loads((tmp_path / "run" / "metrics.json").read_text())  # the failure, nothing else
    assert recorded["status"] == "failed" and recorded["error"].startswith(f"output dir {tmp_path}/file/ckpts: cannot")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_disk_without_room_for_checkpoints_fails_before_training(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(faults.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 1024})())
    with pytest.raises(TrainingError, match=r"0\.0 MiB free, checkpoints need about .* MiB"):
        train(compose_run("train", tmp_path, *RUN))


def test_a_checkpoint_write_that_dies_leaves_the_previous_file(tmp_path: Path, monkeypatch):
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": 1}, path)

    def dying_save(obj, f):
        Path(f).write_bytes(b"half a checkp")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(OSError):
        AtomicCheckpointIO().save_checkpoint({"step": 2}, path)
    assert torch.load(path, weights_only=False) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_same_config_and_seed_give_bit_identical_runs_on_cpu(data_dir: Path, tmp_path: Path):
    def run(name: str) -> tuple[list[float], dict[str, torch.Tensor]]:
        train(compose_run("train", tmp_path / name, "model=mnist_cnn_dropout", "trainer.max_epochs=2",
                          "data.batch_size=16", "trainer.accelerator=cpu"))
        events = EventAccumulator(str(event_dir(tmp_path / name)), size_guidance={"scalars": 0})
        events.Reload()
        losses = [e.value for e in events.Scalars("train/loss")]
        return losses, _weights(tmp_path / name / "checkpoints" / "last.ckpt")

    (losses_a, weights_a), (losses_b, weights_b) = run("a"), run("b")
    assert len(losses_a) == 2 and losses_a == losses_b
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


POISON = ["+callbacks.poison._target_=tests.fault_injection.PoisonWeightsAtStep", "+callbacks.poison.step=8"]


def test_a_non_finite_loss_stops_a_checkpoint_written_mid_epoch(data_dir: Path, tmp_path: Path):
    # Checkpoints every 5 steps: step 5 is good, the loss goes NaN at step 9, the write at step 10
    # (long before the next log_every_n_steps read of the flag) must not happen.
    cfg = compose_run("train", tmp_path, *RUN, *POISON, "+callbacks.model_checkpoint.every_n_train_steps=5")
    with pytest.raises(TrainingError, match=r"non-finite training loss \(nan\) in epoch 2/3, step 9 \(batch 2\)"):
        train(cfg)
    written = {p.name: torch.load(p, weights_only=False) for p in (tmp_path / "checkpoints").iterdir()}
    assert sorted(written) == ["epoch000.ckpt", "last.ckpt"]  # the step-5 one and epoch 0's last state
    assert [written[name]["global_step"] for name in sorted(written)] == [5, 6]  # none after the poison (8)
    assert all(torch.isfinite(w).all() for c in written.values() for w in c["state_dict"].values())


def test_the_loss_check_reads_the_device_once_per_interval_checkpoint_and_epoch(data_dir, tmp_path, monkeypatch):
    """No host sync per step: ``.item()`` in cnnzoo.training.faults only every log_every_n_steps steps,
    before each checkpoint write and at each epoch's end."""
    reads, saves = [], []
    item = torch.Tensor.item

    def counted_item(tensor):
        if sys._getframe(1).f_globals.get("__name__") == faults.__name__:
            reads.append(tensor)
        return item(tensor)

    save = faults.AtomicCheckpointIO.save_checkpoint
    monkeypatch.setattr(torch.Tensor, "item", counted_item)
    monkeypatch.setattr(faults.AtomicCheckpointIO, "save_checkpoint",
                        lambda self, *args, **kwargs: saves.append(1) or save(self, *args, **kwargs))
    # 96 images in batches of 8: 12 steps an epoch, 24 in all, the flag read every 5 steps.
    result = train(compose_run("train", tmp_path, "model=mnist_mlp", "trainer.max_epochs=2", "data.batch_size=8",
                               "trainer.log_every_n_steps=5", "callbacks.input_inspection=null", "~logger"))
    steps, epochs = 24, 2
    assert result["status"] == "completed" and result["epochs"] == epochs
    assert saves, "no checkpoint was written"
    assert len(reads) <= math.ceil(steps / 5) + len(saves) + epochs < steps
