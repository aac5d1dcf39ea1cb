"""``resume=true`` on one run dir, through ``cnnzoo.fit(..., run_dir=...)`` (the entry point's own
``train``): a completed run is not retrained, an interrupted one resumes and ends bit-identical to an
uninterrupted run, a changed config is refused naming its keys, a larger ``trainer.max_epochs``
continues (from the epoch-end checkpoint, to the weights of a run that trained all its epochs at
once), and resuming without a dir is an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import cnnzoo
from cnnzoo.errors import ConfigError, TrainingInterrupted

# mnist_mlp: 96 training images, batches of 16: 6 steps an epoch, step 8 is in epoch 2 of 2.
RUN = ("mnist_mlp", "data.batch_size=16", "trainer.max_epochs=2", "callbacks.input_inspection=null", "~logger")
KILL = ("+callbacks.kill._target_=tests.fault_injection.SignalAtStep", "+callbacks.kill.step=8")


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


def _files(run_dir: Path) -> dict[str, tuple[int, bytes]]:
    paths = [run_dir / "metrics.json", *sorted((run_dir / "checkpoints").glob("*.ckpt"))]
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in paths}


@pytest.mark.slow
def test_resume_a_completed_and_an_interrupted_run_dir(data_dir: Path, tmp_path: Path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    done = cnnzoo.fit(*RUN, *KILL[:1], "+callbacks.kill.step=999", run_dir=whole)
    with pytest.raises(TrainingInterrupted, match="interrupted by SIGTERM in epoch 2/2, step 8"):
        cnnzoo.fit(*RUN, *KILL, run_dir=cut)
    assert json.loads((cut / "metrics.json").read_text())["status"] == "interrupted"
    resumed = cnnzoo.fit(*RUN, *KILL, "resume=true", run_dir=cut)  # the kill step is behind it now
    assert json.loads((cut / "metrics.json").read_text())["status"] == "completed"
    expected, got = _weights(whole), _weights(cut)
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    assert resumed.history == done.history

    before = _files(whole)
    again = cnnzoo.fit(*RUN, *KILL[:1], "+callbacks.kill.step=999", "resume=true", run_dir=whole)
    assert _files(whole) == before  # nothing retrained, nothing rewritten
    assert json.loads((whole / "metrics.json").read_text())["metrics"] == json.loads(
        (again.run_dir / "metrics.json").read_text())["metrics"]


@pytest.mark.slow
def test_resume_refuses_a_changed_config_and_continues_to_more_epochs(data_dir: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    short = tuple(a if a != "trainer.max_epochs=2" else "trainer.max_epochs=1" for a in RUN)
    cnnzoo.fit(*short, run_dir=run_dir)
    with pytest.raises(ConfigError, match=r"differs .* at data\.batch_size \(16 -> 32\), optimizer\.lr \(0\.001 -> 0\.01\);"):
        cnnzoo.fit(*short, "data.batch_size=32", "optimizer.lr=0.01", "resume=true", run_dir=run_dir)
    with pytest.raises(ConfigError, match=r"trainer\.max_epochs \(1 -> -1\)"):  # -1 (no limit) is not a larger count
        cnnzoo.fit(*short, "trainer.max_epochs=-1", "resume=true", run_dir=run_dir)
    first = json.loads((run_dir / "metrics.json").read_text())
    assert first["epochs"] == 1 and len(first["history"]["loss"]) == 1
    longer = cnnzoo.fit(*RUN, "resume=true", run_dir=run_dir)
    result = json.loads((longer.run_dir / "metrics.json").read_text())
    assert result["status"] == "completed" and result["epochs"] == 2
    assert result["history"]["loss"][0] == first["history"]["loss"][0] and len(result["history"]["loss"]) == 2
    at_once = cnnzoo.fit(*RUN, run_dir=tmp_path / "at_once")
    expected, got = _weights(at_once.run_dir), _weights(run_dir)
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    assert longer.history == at_once.history


def test_resume_without_a_dir_is_an_error(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as error:
        cnnzoo.fit(*RUN, "resume=true")
    assert str(error.value) == "resume=true needs the dir to resume: add hydra.run.dir=<dir of the earlier run>"


@pytest.mark.slow
def test_ckpt_path_last_is_checked_as_resume_true_is(data_dir: Path, tmp_path: Path):
    done, cut = tmp_path / "done", tmp_path / "cut"
    cnnzoo.fit(*RUN, run_dir=done)
    before = _files(done)
    again = cnnzoo.fit(*RUN, "ckpt_path=last", run_dir=done)  # completed: reported, nothing written
    assert _files(done) == before and again.history == json.loads(before["metrics.json"][1])["history"]
    with pytest.raises(TrainingInterrupted):
        cnnzoo.fit(*RUN, *KILL, "threads=1", run_dir=cut)
    recorded = (cut / "config.json").read_bytes()
    with pytest.raises(ConfigError, match=r"^ckpt_path=last: the config differs .* at optimizer\.lr \(0\.001 -> 0\.1\);"):
        cnnzoo.fit(*RUN, *KILL, "threads=1", "ckpt_path=last", "optimizer.lr=0.1", run_dir=cut)
    with pytest.raises(ConfigError, match=r"^threads=2: the checkpoint was trained with 1 thread\(s\).*leave threads= out"):
        cnnzoo.fit(*RUN, *KILL, "threads=2", "resume=true", run_dir=cut)
    assert (cut / "config.json").read_bytes() == recorded
    assert json.loads((cut / "metrics.json").read_text())["status"] == "interrupted"
