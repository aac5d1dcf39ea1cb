"""Real launchers: a sweep through hydra-submitit-launcher's ``submitit_local`` (each job its own
submitit process), including submitit's own preemption path (SIGUSR2, the launcher's ``checkpoint``,
the job requeued with the same arguments); and a plain ``sbatch`` job under Lightning's
``SLURMEnvironment(auto_requeue=True)``, simulated: SLURM's environment variables, a stand-in
``scontrol`` that records its arguments, SIGUSR1 mid-training, then the requeued start."""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import subprocess
from pathlib import Path

import pytest
import torch

from cnnzoo.train import train
from tests.conftest import REPO, compose_run, popen_cli, run_cli

pytest.importorskip("hydra_plugins.hydra_submitit_launcher")

# threads=1: results depend on the CPU thread count, which each process would otherwise choose from
# the machine's load at its start (README "When things go wrong").
SMALL = ["model=mnist_mlp", "data.batch_size=16", "trainer.max_epochs=2", "callbacks.input_inspection=null", "~logger",
         "threads=1"]


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


def _assert_equal(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> None:
    assert expected.keys() == got.keys()
    assert not [k for k in expected if not torch.equal(expected[k], got[k])]


@pytest.mark.slow
def test_a_submitit_local_sweep_whose_second_job_is_preempted_and_requeued(data_dir: Path, tmp_path: Path):
    # Job 0 never gets the signal; job 1 sends itself submitit's preemption signal (SIGUSR2) at step
    # 8 of 12, once: submitit requeues it, and the requeued job resumes from its last.ckpt.  The two
    # jobs train the same thing, so they must end with the same weights.
    sweep = tmp_path / "sweep"
    done = run_cli("train", "-m", "hydra/launcher=submitit_local", *SMALL,
                   "+callbacks.kill._target_=tests.fault_injection.SignalAtStep", "+callbacks.kill.signal_name=SIGUSR2",
                   "+callbacks.kill.step=999,8", f"+callbacks.kill.once={tmp_path / 'fired'}", f"hydra.sweep.dir={sweep}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "fired").is_file()
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert [(row["job"], row["status"], row["callbacks.kill.step"], row["epochs"]) for row in rows] == [
        ("0", "completed", "999", "2"), ("1", "completed", "8", "2")]
    results = [json.loads((sweep / job / "metrics.json").read_text()) for job in "01"]
    assert results[0]["metrics"] == results[1]["metrics"] and results[0]["history"] == results[1]["history"]
    assert float(rows[1]["test_accuracy"]) == round(results[1]["metrics"]["test"]["accuracy"], 4)
    _assert_equal(_weights(sweep / "0"), _weights(sweep / "1"))
    logs = [p.read_text() for p in (sweep / ".submitit").rglob("*_log.out")]
    requeued = [log for log in logs if "Requeued job" in log]
    assert len(logs) == 2 and len(requeued) == 1
    # Two starts of one job, the second resumes in epoch 2 rather than training epoch 1 again.
    assert requeued[0].count("Starting with JobEnvironment") == 2 and requeued[0].count("Epoch 1/2") == 1
    assert not (sweep / "1" / "checkpoints" / ".requeued").exists()


def _start(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    process = popen_cli("train", *command, cwd=cwd, env=env)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _slurm_env(tmp_path: Path, job_id: str) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.calls"}\n')
    scontrol.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_ID": job_id, "SLURM_NTASKS": "1",
            "SLURM_JOB_NAME": "cnnzoo", "SLURM_NODEID": "0", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
            "SLURM_NODELIST": "localhost", "SLURM_JOB_NUM_NODES": "1"}


def _sbatch_command(*args: str) -> list[str]:
    """The arguments scripts/slurm_example.sbatch gives ``python -m cnnzoo.train``, ``"$@"`` being ``args``."""
    script = (REPO / "scripts" / "slurm_example.sbatch").read_text()
    assert "#SBATCH --signal=SIGUSR1@90" in script.splitlines() and "#SBATCH --requeue" in script.splitlines()
    line = next(line for line in script.splitlines() if line.startswith("srun python -m cnnzoo.train "))
    words = shlex.split(line.removeprefix("srun python -m cnnzoo.train "))
    return [arg for word in words for arg in (args if word == "$@" else [word])]


@pytest.mark.slow
def test_a_simulated_sbatch_job_requeued_on_sigusr1_resumes_bit_identical(data_dir: Path, tmp_path: Path, torch_threads):
    whole = tmp_path / "whole"
    assert train(compose_run("train", whole, *SMALL))["status"] == "completed"  # the uninterrupted run, in-process
    # scripts/slurm_example.sbatch's command, run from tmp_path (its run dir is outputs/slurm/<job id>).
    command = _sbatch_command(*SMALL, "+callbacks.kill._target_=tests.fault_injection.SignalAtStep",
                              "+callbacks.kill.signal_name=SIGUSR1", "+callbacks.kill.step=8",
                              f"+callbacks.kill.once={tmp_path / 'fired'}")
    env = _slurm_env(tmp_path, "4242")
    first = _start(command, tmp_path, env)
    assert first.returncode == 128 + signal.SIGUSR1, first.stderr[-3000:]
    run_dir = tmp_path / "outputs" / "slurm" / "4242"
    assert first.stderr.strip().splitlines()[-1] == (
        f"error: training interrupted by SIGUSR1 in epoch 2/2, step 8; state saved to {run_dir}/checkpoints/last.ckpt; "
        "the job is requeued and resumes it")
    assert (tmp_path / "scontrol.calls").read_text() == "requeue 4242\n"
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 8
    again = _start(command, tmp_path, env)  # SLURM starts the requeued job: same id, same command
    assert again.returncode == 0, again.stderr[-3000:]
    assert (tmp_path / "scontrol.calls").read_text() == "requeue 4242\n"
    _assert_equal(_weights(whole), _weights(run_dir))
    result = json.loads((run_dir / "metrics.json").read_text())
    assert result["status"] == "completed" and result["metrics"] == json.loads((whole / "metrics.json").read_text())["metrics"]
