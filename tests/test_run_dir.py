"""Concurrent runs never share a run dir: the default dir is unique per run (even within one
second) and a second run on a busy explicit dir is refused (that all DDP ranks of one run share
theirs is tests/training/test_ddp.py's).  Each test starts real ``python -m cnnzoo.train`` processes
(in a tmp dir as cwd)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("entry", ["train", "evaluate", "predict", "export"])
def test_a_run_dir_that_cannot_be_created_is_one_line_from_every_entry_point(tmp_path: Path, entry: str):
    (tmp_path / "notes.txt").write_text("hello")
    done = subprocess.run([sys.executable, "-m", f"cnnzoo.{entry}", f"hydra.run.dir={tmp_path}/notes.txt/run"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stderr) == (2, f"error: hydra.run.dir={tmp_path}/notes.txt/run: cannot create it "
                                                 "(Not a directory)\n")
