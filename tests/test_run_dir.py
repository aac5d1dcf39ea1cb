"""Concurrent runs never share a run dir: the default dir is unique per run (even within one
second) and a second run on a busy explicit dir is refused (that all DDP ranks of one run share
theirs is tests/training/test_ddp.py's).  Nor does a later run overwrite a finished one: a dir
holding results is refused unless the run resumes it.  Each test starts real ``python -m cnnzoo.train`` processes
(in a tmp dir as cwd)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import cnnzoo
from cnnzoo.errors import TrainingError
from cnnzoo.train import train
from tests.conftest import REPO, compose_run, popen_cli

pytestmark = pytest.mark.slow

RUN_ID = re.compile(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_[0-9a-f]{4}")
TINY = ["debug=fast_dev_run", "~logger", "callbacks.input_inspection=null", "test=false"]


def _env(data_dir: Path, tmp_path: Path) -> dict[str, str]:
    return {"CNNZOO_DATA_DIR": str(data_dir), "XDG_CACHE_HOME": str(tmp_path / "cache")}


def test_runs_started_at_once_get_a_run_dir_each(data_dir: Path, tmp_path: Path):
    runs = {"fashion_mlp": [], "mnist_mlp": [], "fashion_cnn": ["data.batch_size=8"]}
    processes = {model: popen_cli("train", f"model={model}", *TINY, *extra, cwd=tmp_path,
                                  env=_env(data_dir, tmp_path)) for model, extra in runs.items()}
    for model, process in processes.items():
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, f"{model}: {stderr[-2000:]}"
    dirs = sorted((tmp_path / "outputs" / "train").iterdir())
    assert len(dirs) == 3 and all(RUN_ID.fullmatch(d.name) for d in dirs), [d.name for d in dirs]
    models = sorted(json.loads((d / "metrics.json").read_text())["model"] for d in dirs)
    assert models == sorted(runs)
    assert not list(tmp_path.glob("outputs/train/*/.cnnzoo.lock"))  # released at exit


# What every run does first (cnnzoo.train calls lock_run_dir before anything else), then stay busy.
HOLD_LOCK = ("import sys, time; from pathlib import Path; from cnnzoo.run_dir import lock_run_dir; "
             "lock_run_dir(Path(sys.argv[1])); print('locked', flush=True); time.sleep(600)")


def test_a_second_run_on_a_busy_run_dir_stops_at_once_and_a_dead_runs_lock_is_taken_over(data_dir, tmp_path):
    run_dir, env = tmp_path / "run", _env(data_dir, tmp_path)
    first = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run_dir)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "locked"
        second = popen_cli("train", "model=mnist_mlp", *TINY, f"hydra.run.dir={run_dir}", cwd=tmp_path, env=env)
        _, stderr = second.communicate(timeout=300)
        assert second.returncode == 2
        assert stderr.strip().splitlines()[-1] == (
            f"error: run dir {run_dir} is in use by another run (PID {first.pid}, lock {run_dir}/.cnnzoo.lock); "
            "wait for it to finish or give another hydra.run.dir")
        assert "Traceback" not in stderr and not (run_dir / "metrics.json").exists()
    finally:
        first.kill()  # SIGKILL: no atexit, the lock file stays behind with a dead PID
        first.wait()
    assert (run_dir / ".cnnzoo.lock").read_text().strip() == str(first.pid)
    result = train(compose_run("train", run_dir, "model=mnist_mlp", *TINY))  # in-process: takes the lock over
    assert result["status"] == "completed" and json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"


def _cli(module: str, *args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """``python -m cnnzoo.<module> <args>`` to its end: exit status and stderr."""
    process = popen_cli(module, *args, cwd=cwd, env=env)
    stdout, stderr = process.communicate(timeout=300)
    return process.returncode, stderr + stdout


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_finished_run_dir_is_never_overwritten_only_resumed(data_dir: Path, tmp_path: Path):
    run_dir, env = tmp_path / "run", _env(data_dir, tmp_path)
    limit = ["model=mnist_mlp", "~logger", "callbacks.input_inspection=null", "trainer.max_epochs=1",
             "+trainer.limit_train_batches=2", "+trainer.limit_test_batches=1", f"hydra.run.dir={run_dir}"]
    assert _cli("train", *limit, cwd=tmp_path, env=env)[0] == 0
    made = _files(run_dir)
    for module, args in (("train", [*limit, "optimizer.lr=0.05"]),  # a new run in that dir
                         ("evaluate", [f"ckpt_path={run_dir}/checkpoints/last.ckpt", f"hydra.run.dir={run_dir}"])):
        status, stderr = _cli(module, *args, cwd=tmp_path, env=env)
        assert status == 2 and "Traceback" not in stderr, stderr[-2000:]
        assert stderr.strip().splitlines()[-1].startswith(f"error: hydra.run.dir={run_dir} holds an earlier run's "
                                                          "metrics.json, checkpoints: give a new hydra.run.dir")
    with pytest.raises(TrainingError, match="holds an earlier run's metrics.json, checkpoints"):
        cnnzoo.fit(*limit[:-1], run_dir=run_dir)
    assert _files(run_dir) == made  # .hydra/ included: refused before Hydra writes anything
    status, stderr = _cli("train", *limit, "ckpt_path=last", "optimizer.lr=0.1", cwd=tmp_path, env=env)
    assert status == 2 and stderr.strip().splitlines()[-1].startswith(
        f"error: ckpt_path=last: the config differs from the run in {run_dir} at optimizer.lr (0.001 -> 0.1);")
    assert _files(run_dir) == made  # refused as resume=true refuses it, before Hydra rewrites .hydra/
    assert _cli("train", *limit, "ckpt_path=last", cwd=tmp_path, env=env)[0] == 0  # completed: reported
    assert {k: v for k, v in _files(run_dir).items() if not k.startswith(".hydra/")} == {
        k: v for k, v in made.items() if not k.startswith(".hydra/")}
    assert _cli("train", *limit, "trainer.max_epochs=2", "ckpt_path=last", cwd=tmp_path, env=env)[0] == 0
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == 2


def test_a_sweep_dir_with_jobs_is_refused_unless_resumed(data_dir: Path, tmp_path: Path):
    sweep, env = tmp_path / "sweep", _env(data_dir, tmp_path)
    args = ["-m", "model=mnist_mlp", "~logger", "callbacks.input_inspection=null", "test=false", "trainer.max_epochs=1",
            "+trainer.limit_train_batches=2", "seed=1,2", f"hydra.sweep.dir={sweep}"]
    status, stderr = _cli("train", *args, cwd=tmp_path, env=env)
    assert status == 0, stderr[-3000:]
    made = _files(sweep)
    status, stderr = _cli("train", *args, cwd=tmp_path, env=env)
    assert status == 2 and stderr.strip().splitlines()[-1] == (
        f"error: hydra.sweep.dir={sweep} holds an earlier run's summary.csv, 0/metrics.json, 0/checkpoints, 1/metrics.json: "
        "give a new hydra.sweep.dir, or leave it out for a fresh one")
    assert _files(sweep) == made
    assert _cli("train", *args, "resume=true", cwd=tmp_path, env=env)[0] == 0


@pytest.mark.parametrize("entry", ["train", "evaluate", "predict", "export"])
def test_a_run_dir_that_cannot_be_created_is_one_line_from_every_entry_point(tmp_path: Path, entry: str):
    (tmp_path / "notes.txt").write_text("hello")
    done = subprocess.run([sys.executable, "-m", f"cnnzoo.{entry}", f"hydra.run.dir={tmp_path}/notes.txt/run"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stderr) == (2, f"error: hydra.run.dir={tmp_path}/notes.txt/run: cannot create it "
                                                 "(Not a directory)\n")
