"""Multirun: every job gets its own dir, and the sweep dir gets a summary table, failures marked."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.conftest import run_cli


def test_two_job_grid_with_a_failing_job_writes_a_summary(data_dir: Path, tmp_path: Path):
    sweep = tmp_path / "sweep"
    done = run_cli("train", "-m", "model=mnist_mlp", "trainer.max_epochs=1", "data.batch_size=32,0",
                   f"hydra.sweep.dir={sweep}")
    assert done.returncode != 0  # Hydra reports the failed job once all jobs have run
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert [(row["job"], row["status"]) for row in rows] == [("0", "completed"), ("1", "failed")]
    assert rows[0]["overrides"] == "model=mnist_mlp trainer.max_epochs=1 data.batch_size=32"
    assert 0 <= float(rows[0]["test_acc"]) <= 1 and rows[0]["epochs"] == "1"
    assert rows[1]["error"] == "ConfigError: data.batch_size=0: expected a positive integer"
    assert (sweep / "0" / "metrics.json").is_file() and not (sweep / "1" / "metrics.json").exists()
    table = (sweep / "summary.md").read_text().splitlines()
    assert table[0].startswith("| job | status | overrides |") and len(table) == 4
