"""A run stopped by SIGTERM in the middle of an epoch and resumed with ``ckpt_path=last`` ends bit for
bit where the uninterrupted run ends, on CPU, with the logger and every default callback on, for each
feature the ``_best`` recipes use; and turning the logger off does not change the trained weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnzoo.errors import TrainingInterrupted
from cnnzoo.train import train
from tests.conftest import compose_run

SMALL = ("data.batch_size=16", "trainer.max_epochs=2", "trainer.accelerator=cpu")
KILL = ("+callbacks.kill._target_=tests.fault_injection.SignalAtStep", "+callbacks.kill.step=7")  # epoch 1 of 2
FEATURES = {
    "asl_cnn_best (augmentation without flips, one-cycle, label smoothing, BatchNorm, dropout)": (
        "experiment=asl_cnn_best",),
    "fashion_cnn_best (flips, whole-pixel shifts, one-cycle, label smoothing)": (
        "experiment=fashion_cnn_best", "data=sign_mnist", "model.arch=fashion_cnn"),
    "cosine schedule with warm-up": (
        "model=asl_cnn", "optimizer=adam", "+model.scheduler={name: cosine, warmup: 0.2}",
        "data.augment={rotation: 10, shift: 0.1}"),
}


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


def _assert_equal(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> None:
    assert expected.keys() == got.keys()
    different = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


@pytest.mark.slow
@pytest.mark.parametrize("overrides", list(FEATURES.values()), ids=list(FEATURES))
def test_sigterm_then_resume_is_bit_identical(data_dir: Path, tmp_path: Path, overrides: tuple[str, ...]):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    train(compose_run("train", whole, *overrides, *SMALL))
    with pytest.raises(TrainingInterrupted, match="interrupted by SIGTERM in epoch 2/2"):
        train(compose_run("train", cut, *overrides, *SMALL, *KILL))
    resumed = train(compose_run("train", cut, *overrides, *SMALL, *KILL, "ckpt_path=last"))  # step 7 is behind it
    assert resumed["status"] == "completed" and resumed["epochs"] == 2
    _assert_equal(_weights(whole), _weights(cut))


@pytest.mark.slow
def test_the_logger_does_not_change_the_trained_weights(data_dir: Path, tmp_path: Path):
    overrides = (*FEATURES["asl_cnn_best (augmentation without flips, one-cycle, label smoothing, BatchNorm, dropout)"], *SMALL)
    train(compose_run("train", tmp_path / "logged", *overrides))
    train(compose_run("train", tmp_path / "quiet", *overrides, "~logger", "callbacks.input_inspection=null"))
    _assert_equal(_weights(tmp_path / "logged"), _weights(tmp_path / "quiet"))


@pytest.mark.slow
def test_a_resume_keeps_the_thread_count_the_run_was_trained_with(data_dir: Path, tmp_path: Path, torch_threads):
    # asl_cnn's weights depend on the CPU thread count (BatchNorm, dropout, conv gradients): a run
    # trained with 1 thread and resumed where the default is 2 goes on with 1, bit for bit.
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    train(compose_run("train", whole, "model=asl_cnn", *SMALL, "threads=1"))
    with pytest.raises(TrainingInterrupted):
        train(compose_run("train", cut, "model=asl_cnn", *SMALL, "threads=1", *KILL))
    torch.set_num_threads(2)
    train(compose_run("train", cut, "model=asl_cnn", *SMALL, *KILL, "ckpt_path=last"))
    assert torch.get_num_threads() == 1
    _assert_equal(_weights(whole), _weights(cut))
