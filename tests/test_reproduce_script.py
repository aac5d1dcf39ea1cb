"""``scripts/reproduce.py`` end to end on tiny generated data: it runs each recipe/seed once, keeps
completed runs on a second call, and writes the results table from the runs' ``metrics.json``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # subprocess runs of the real entry point


def _reproduce(data_dir: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "scripts" / "reproduce.py"), "--out", str(tmp_path / "runs"),
               "--doc", str(tmp_path / "docs" / "results.md"),
               "--records", str(tmp_path / "records"), "--readme", str(tmp_path / "README.md"), "--only", "fashion_mlp", *args,
               "trainer.max_epochs=1", "+trainer.limit_train_batches=2", "data.batch_size=8"]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "CNNZOO_DATA_DIR": str(data_dir)})


def test_runs_every_seed_once_and_reports_from_metrics_files(data_dir: Path, tmp_path: Path):
    (tmp_path / "README.md").write_text("# x\n<!-- results:start -->\nold\n<!-- results:end -->\nafter\n")
    done = _reproduce(data_dir, tmp_path, "--seeds", "1,2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "4 runs to do" in done.stdout
    metrics = {path.parent.parent.name + "/" + path.parent.name: json.loads(path.read_text())
               for path in (tmp_path / "runs").glob("*/seed*/metrics.json")}
    assert sorted(metrics) == ["fashion_mlp/seed1", "fashion_mlp/seed2", "fashion_mlp_best/seed1", "fashion_mlp_best/seed2"]
    assert all(m["status"] == "completed" for m in metrics.values())
    assert metrics["fashion_mlp/seed1"]["seed"] == 1
    records = {path.stem: json.loads(path.read_text()) for path in (tmp_path / "records").glob("*.json")}
    assert sorted(records) == ["fashion_mlp-seed1", "fashion_mlp-seed2", "fashion_mlp_best-seed1", "fashion_mlp_best-seed2"]
    record = records["fashion_mlp-seed1"]
    assert record["metrics"] == metrics["fashion_mlp/seed1"]["metrics"] and record["wall_time_s_total"] > 0
    assert record["pieces"] == 1 and "1 torch thread(s) per run, 2 run(s) at a time" in record["environment"]
    assert record["overrides"][:2] == ["model=fashion_mlp", "seed=1"] and "trainer.max_epochs=1" in record["overrides"]

    table = (tmp_path / "docs" / "results.md").read_text()
    accs = sorted(100 * m["metrics"]["test"]["accuracy"] for k, m in metrics.items() if k.startswith("fashion_mlp/"))
    row = next(line for line in table.splitlines() if line.startswith("| fashion_mlp |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:5] == ["87.59", "87.09", f"{sum(accs) / 2:.2f}"]  # notebook, bound, median
    assert cells[5:7] == [f"{accs[0]:.2f}", f"{accs[1]:.2f}"] and cells[8] == "2"
    assert cells[-1] == "pending"  # judged on the median of 3 seeds, not 2
    assert "| asl_cnn | val | 95.00 | 94.50 | not run yet |" in table
    seed_1, seed_2 = (100 * metrics[f"fashion_mlp/seed{seed}"]["metrics"]["test"]["accuracy"] for seed in (1, 2))
    runs = next(line for line in table.splitlines() if line.startswith("| fashion_mlp | seed 1: "))
    assert f"seed 1: {seed_1:.2f} (" in runs and f"; seed 2: {seed_2:.2f} (" in runs and runs.count(" min, 2 at a time)") == 2
    readme = (tmp_path / "README.md").read_text()
    assert "old" not in readme and readme.endswith("<!-- results:end -->\nafter\n")
    assert f"| fashion_mlp (test) | 87.59 | {sum(accs) / 2:.2f} (2 seeds) |" in readme
    assert "| asl_cnn (val) | 95.00 | not run yet | not run yet | 99.50 |" in readme

    shutil.rmtree(tmp_path / "runs")  # the records alone are the results
    again = _reproduce(data_dir, tmp_path, "--seeds", "1,2")
    assert again.returncode == 0 and "0 runs to do" in again.stdout
    assert (tmp_path / "docs" / "results.md").read_text() == table
    only_seed_1 = _reproduce(data_dir, tmp_path, "--report-only", "--seeds", "1")
    assert only_seed_1.returncode == 0  # --seeds picks what to run; the report still covers every record
    assert (tmp_path / "docs" / "results.md").read_text() == table


def test_a_missing_readme_is_a_one_line_error_before_any_run(data_dir: Path, tmp_path: Path):
    done = _reproduce(data_dir, tmp_path)
    assert done.returncode == 1 and not (tmp_path / "runs").exists()
    assert done.stderr.strip() == f"error: --readme {tmp_path / 'README.md'}: no such file; expected the README whose results block to rewrite"
