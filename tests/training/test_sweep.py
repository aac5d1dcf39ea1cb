"""Multirun: every job gets its own dir, and the sweep dir gets a summary table; a failing job (a bad
override, a non-finite loss) is marked failed with its error while the other jobs still run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.mark.slow
def test_a_grid_with_failing_jobs_writes_a_summary_of_all_of_them(data_dir: Path, tmp_path: Path):
    sweep = tmp_path / "sweep"
    done = run_cli("train", "-m", "model=mnist_mlp", "trainer.max_epochs=1", "callbacks.input_inspection=null",
                   "+callbacks.poison._target_=tests.fault_injection.PoisonWeightsAtStep", "+callbacks.poison.step=1,99",
                   "data.batch_size=32,0", f"hydra.sweep.dir={sweep}")
    assert done.returncode != 0  # Hydra reports the first failed job once all jobs have run
    rows = {row["job"]: row for row in csv.DictReader((sweep / "summary.csv").open())}
    assert {job: row["status"] for job, row in rows.items()} == {
        "0": "failed", "1": "failed", "2": "completed", "3": "failed"}
    assert rows["0"]["error"].startswith("TrainingError: non-finite training loss (nan) at epoch 0, step 2")
    assert rows["1"]["error"] == rows["3"]["error"] == "ConfigError: data.batch_size=0: expected a positive integer"
    assert rows["2"]["overrides"].endswith("+callbacks.poison.step=99 data.batch_size=32")
    job_2 = json.loads((sweep / "2" / "metrics.json").read_text())  # the table reads each job's own results
    assert float(rows["2"]["test_accuracy"]) == round(job_2["metrics"]["test"]["accuracy"], 4)
    assert float(rows["2"]["train_loss"]) == round(job_2["metrics"]["train"]["loss"], 4) and rows["2"]["epochs"] == "1"
    assert not (sweep / "1" / "metrics.json").exists()
    table = (sweep / "summary.md").read_text().splitlines()
    assert table[0].startswith("| job | status | overrides |") and len(table) == 2 + 4
