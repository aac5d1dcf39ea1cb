"""A sweep stopped by SIGTERM (exit 143, the running job checkpointed and marked interrupted) and
continued with ``resume=true hydra.sweep.dir=<same>`` ends with the summary and every job's final
weights of an uninterrupted sweep, without retraining the jobs that had completed; an Optuna study
in sqlite storage stopped after 2 of 4 trials and continued ends with 4 distinct completed trials."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import run_cli

# threads=1: results depend on the CPU thread count, which each process would otherwise choose from
# the machine's load at its start (README "When things go wrong").
GRID = ["-m", "model=mnist_mlp", "optimizer.lr=1e-3,3e-3", "data.batch_size=16,32", "trainer.max_epochs=2",
        "callbacks.input_inspection=null", "~logger", "threads=1"]


def _kill(tmp_path: Path, job: int, step: int) -> list[str]:
    """SIGTERM at ``step`` of multirun job ``job``, once (the file ``fired`` says it has been sent)."""
    return ["+callbacks.kill._target_=tests.fault_injection.SignalAtStep", f"+callbacks.kill.step={step}",
            f"+callbacks.kill.job={job}", f"+callbacks.kill.once={tmp_path / 'fired'}"]


def _summary(sweep: Path) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "wall_time_s"} for row in csv.DictReader((sweep / "summary.csv").open())]


def _weights(job_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(job_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


def _files(job_dir: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (job_dir / "metrics.json", job_dir / "checkpoints" / "last.ckpt")}


@pytest.mark.slow
def test_a_grid_interrupted_in_job_3_and_resumed_ends_like_an_uninterrupted_one(data_dir: Path, tmp_path: Path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    kill = _kill(tmp_path, job=2, step=3)  # job 2 (the third): lr 3e-3, batches of 16, step 3 of 12
    (tmp_path / "fired").touch()  # the uninterrupted sweep has the same overrides, the signal spent
    started = time.time()
    assert run_cli("train", *GRID, *kill, f"hydra.sweep.dir={whole}").returncode == 0
    uninterrupted_s = time.time() - started
    (tmp_path / "fired").unlink()

    started = time.time()
    stopped = run_cli("train", *GRID, *kill, f"hydra.sweep.dir={cut}")
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert stopped.stderr.strip().splitlines()[-1] == f"the sweep stops here; continue it with resume=true hydra.sweep.dir={cut}"
    assert [row["status"] for row in _summary(cut)] == ["completed", "completed", "interrupted"]
    record = json.loads((cut / "2" / "job.json").read_text())
    assert record["status"] == "interrupted" and record["error"].startswith("TrainingInterrupted: training interrupted by SIGTERM in epoch 1/2, step 3")
    assert not (cut / "3").exists()
    kept = {job: _files(cut / job) for job in "01"}
    interrupted_s = time.time() - started

    resumed = run_cli("train", *GRID, *kill, "resume=true", f"hydra.sweep.dir={cut}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    resumed_s = time.time() - started
    print(f"uninterrupted sweep {uninterrupted_s:.1f}s; interrupted {interrupted_s:.1f}s + resumed "
          f"{resumed_s - interrupted_s:.1f}s")
    assert {job: _files(cut / job) for job in "01"} == kept  # not retrained
    assert _summary(cut) == _summary(whole) and len(_summary(cut)) == 4
    assert (cut / "summary.md").read_text().splitlines()[0] == (whole / "summary.md").read_text().splitlines()[0]
    for job in "0123":
        expected, got = _weights(whole / job), _weights(cut / job)
        assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected), job


@pytest.mark.slow
def test_an_optuna_study_stopped_after_2_of_4_trials_and_resumed_ends_with_4_distinct_trials(data_dir, tmp_path):
    import optuna

    sweep, db = tmp_path / "sweep", tmp_path / "study.db"
    search = ["hparams_search=optuna_lr_batch", "model=mnist_mlp", "trainer.max_epochs=1", "~logger",
              "callbacks.input_inspection=null", "hydra.sweeper.n_trials=4", f"hydra.sweeper.storage=sqlite:///{db}",
              "hydra.sweeper.study_name=s", "data.batch_size=choice(16,32)",
              *_kill(tmp_path, job=2, step=2), f"hydra.sweep.dir={sweep}"]
    stopped = run_cli("train", *search)
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "RUNNING"]
    kept = {job: _files(sweep / job) for job in "01"}
    resumed = run_cli("train", *search, "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials = optuna.load_study(study_name="s", storage=f"sqlite:///{db}").trials
    assert [(t.number, t.state.name) for t in trials] == [(n, "COMPLETE") for n in range(4)]
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4  # no trial run twice
    assert {job: _files(sweep / job) for job in "01"} == kept
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert [row["status"] for row in rows] == ["completed"] * 4
    for trial, row in zip(trials, rows):  # each trial's value is its own job's result
        assert round(trial.value, 4) == float(row["val_accuracy"])
        assert float(row["optimizer.lr"]) == trial.params["optimizer.lr"]


@pytest.mark.slow
def test_ctrl_c_in_a_jobs_test_pass_stops_the_sweep_and_resume_keeps_its_fit_results(data_dir: Path, tmp_path: Path):
    grid = ["-m", "model=mnist_mlp", "optimizer.lr=1e-3,2e-3,3e-3", "data.validation=0.25", "trainer.max_epochs=1",
            "+trainer.limit_train_batches=2", "+trainer.limit_test_batches=2", "callbacks.input_inspection=null",
            "~logger", "threads=1", "+callbacks.kill._target_=tests.fault_injection.SignalInHook",
            "+callbacks.kill.hook=on_test_batch_end", "+callbacks.kill.epoch=1", "+callbacks.kill.signal_name=SIGTERM",
            f"+callbacks.kill.once={tmp_path / 'fired'}"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    (tmp_path / "fired").touch()
    assert run_cli("train", *grid, f"hydra.sweep.dir={whole}").returncode == 0
    (tmp_path / "fired").unlink()
    stopped = run_cli("train", *grid, f"hydra.sweep.dir={cut}")
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    [row] = _summary(cut)  # the sweep stopped in job 0's test pass
    assert row["status"] == "interrupted" and row["val_accuracy"] and not row.get("test_accuracy")
    assert json.loads((cut / "0" / "job.json").read_text())["error"].startswith(
        "TrainingInterrupted: testing interrupted by SIGTERM after epoch 1/1, step 2;")
    assert run_cli("train", *grid, "resume=true", f"hydra.sweep.dir={cut}").returncode == 0
    assert _summary(cut) == _summary(whole) and len(_summary(cut)) == 3
