"""Ctrl+C at the awkward moments of a run -- during an epoch's validation, after the last epoch,
during the final test pass -- then ``resume=true``: the resumed run's ``metrics.json`` (history,
train/val/test metrics) and weights are those of a run that was never stopped, on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import cnnzoo
from cnnzoo.errors import TrainingInterrupted

# mnist_mlp, 72 training and 24 validation images in batches of 8: 9 steps and 3 validation batches
# an epoch.
RUN = ("mnist_mlp", "data.validation=0.25", "data.batch_size=8", "trainer.max_epochs=2",
       "callbacks.input_inspection=null", "~logger", "threads=1")
SIGNAL = "+callbacks.kill._target_=tests.fault_injection.SignalInHook"


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


def _result(run_dir: Path) -> dict:
    result = json.loads((run_dir / "metrics.json").read_text())
    return {k: v for k, v in result.items() if k not in ("wall_time_s", "run_dir", "checkpoints")}


def _stopped_then_resumed(tmp_path: Path, *kill: str, match: str) -> tuple[Path, Path]:
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    cnnzoo.fit(*RUN, run_dir=whole)
    kill = (SIGNAL, *kill, f"+callbacks.kill.once={tmp_path / 'once'}")  # resume=true needs the same config
    with pytest.raises(TrainingInterrupted, match=match):
        cnnzoo.fit(*RUN, *kill, run_dir=cut)
    interrupted = json.loads((cut / "metrics.json").read_text())
    assert interrupted["status"] == "interrupted"
    cnnzoo.fit(*RUN, *kill, "resume=true", run_dir=cut)
    return whole, cut


def _assert_same_run(whole: Path, cut: Path) -> None:
    expected, got = _weights(whole), _weights(cut)
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    assert _result(cut) == _result(whole)


@pytest.mark.slow
def test_ctrl_c_during_validation_then_resume_is_the_uninterrupted_run(data_dir: Path, tmp_path: Path):
    # the stop waits for the end of the validation: epoch 1 is complete, validated and checkpointed
    kill = ("+callbacks.kill.hook=on_validation_batch_end", "+callbacks.kill.epoch=0", "+callbacks.kill.batch=1")
    whole, cut = _stopped_then_resumed(tmp_path, *kill, match="after epoch 1/2, step 9;")
    _assert_same_run(whole, cut)
    assert len(_result(cut)["history"]["val_accuracy"]) == 2


@pytest.mark.slow
def test_ctrl_c_after_the_last_epoch_then_resume_keeps_the_fit_results(data_dir: Path, tmp_path: Path):
    kill = ("+callbacks.kill.hook=on_train_epoch_end", "+callbacks.kill.epoch=1")
    whole, cut = _stopped_then_resumed(tmp_path, *kill, match="after epoch 2/2, step 18;")
    _assert_same_run(whole, cut)
    assert set(_result(cut)["metrics"]) == {"train", "val", "test"}


@pytest.mark.slow
def test_ctrl_c_during_the_test_pass_stops_it_then_resume_tests(data_dir: Path, tmp_path: Path):
    kill = ("+callbacks.kill.hook=on_test_batch_end", "+callbacks.kill.epoch=2", "+callbacks.kill.batch=0",
            "+trainer.limit_test_batches=3")
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    cnnzoo.fit(*RUN, "+trainer.limit_test_batches=3", run_dir=whole)
    kill = (SIGNAL, *kill, f"+callbacks.kill.once={tmp_path / 'once'}")
    with pytest.raises(TrainingInterrupted, match=r"^testing interrupted by SIGINT after epoch 2/2, step 18; "):
        cnnzoo.fit(*RUN, *kill, run_dir=cut)
    interrupted = _result(cut)
    assert interrupted["status"] == "interrupted" and set(interrupted["metrics"]) == {"train", "val"}
    assert interrupted["metrics"] == {k: v for k, v in _result(whole)["metrics"].items() if k != "test"}
    cnnzoo.fit(*RUN, *kill, "resume=true", run_dir=cut)
    _assert_same_run(whole, cut)


@pytest.mark.slow
def test_ctrl_c_in_the_end_of_fit_work_then_resume_keeps_the_fit_results(data_dir: Path, tmp_path: Path):
    kill = ("+callbacks.kill.hook=on_train_end", "+callbacks.kill.epoch=2")  # Lightning's epoch count is 2 by then
    whole, cut = _stopped_then_resumed(tmp_path, *kill, match="^training interrupted by SIGINT after epoch 2/2, step 18;")
    _assert_same_run(whole, cut)
