"""Multirun: every job gets its own dir, and the sweep dir gets a summary table; a failing job (a bad
override, a non-finite loss) is marked failed with its error while the other jobs still run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cnnzoo.training.sweep import write_summary
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
    assert rows["0"]["error"].startswith("TrainingError: non-finite training loss (nan) in epoch 1/1, step 2")
    assert rows["1"]["error"] == rows["3"]["error"] == "ConfigError: data.batch_size=0: expected a positive integer"
    assert "overrides" not in rows["2"]  # a column per swept parameter instead
    assert (rows["2"]["callbacks.poison.step"], rows["2"]["data.batch_size"]) == ("99", "32")
    assert [rows[job]["data.batch_size"] for job in "0123"] == ["32", "0", "32", "0"]
    job_2 = json.loads((sweep / "2" / "metrics.json").read_text())  # the table reads each job's own results
    assert float(rows["2"]["test_accuracy"]) == round(job_2["metrics"]["test"]["accuracy"], 4)
    assert float(rows["2"]["train_loss"]) == round(job_2["metrics"]["train"]["loss"], 4) and rows["2"]["epochs"] == "1"
    job_1 = json.loads((sweep / "1" / "metrics.json").read_text())  # a job that failed before training says so too
    assert (job_1["status"], job_1["error"]) == ("failed", "data.batch_size=0: expected a positive integer")
    table = (sweep / "summary.md").read_text().splitlines()
    assert table[0] == ("Common to all 4 jobs: `model=mnist_mlp` `trainer.max_epochs=1` `callbacks.input_inspection=null` "
                        "`+callbacks.poison._target_=tests.fault_injection.PoisonWeightsAtStep`")
    assert table[2].startswith("| job | status | callbacks.poison.step | data.batch_size | test_accuracy |")
    assert len(table) == 2 + 2 + 4


def _job(sweep: Path, num: int, overrides: list[str], accuracy: float | None) -> None:
    record = {"job": num, "overrides": overrides, "status": "completed" if accuracy is not None else "failed"}
    if accuracy is None:
        record["error"] = "ConfigError: data.batch_size=0: expected a positive integer"
    else:
        record["result"] = {"metrics": {"val": {"accuracy": accuracy}}, "epochs": 1, "wall_time_s": 2.5}
    (sweep / str(num)).mkdir(parents=True)
    (sweep / str(num) / "job.json").write_text(json.dumps(record))


def test_the_summary_has_a_column_per_swept_parameter_and_the_common_overrides_once(tmp_path: Path):
    common = ["model=asl_cnn", "trainer.max_epochs=1"]
    _job(tmp_path, 0, [*common, "optimizer.lr=0.001", "data.batch_size=32"], 0.5)
    _job(tmp_path, 1, [*common, "optimizer.lr=0.01", "data.batch_size=32"], 0.25)
    _job(tmp_path, 2, [*common, "optimizer.lr=0.001", "data.batch_size=0"], None)
    _job(tmp_path, 3, [*common, "optimizer.lr=0.01", "+model.label_smoothing=0.1"], 0.75)
    write_summary(tmp_path)
    with (tmp_path / "summary.csv").open() as file:
        reader = csv.DictReader(file)
        rows = list(reader)
    assert reader.fieldnames == ["job", "status", "optimizer.lr", "data.batch_size", "model.label_smoothing",
                                 "val_accuracy", "epochs", "wall_time_s", "error"]
    assert [(r["optimizer.lr"], r["data.batch_size"], r["model.label_smoothing"], r["val_accuracy"]) for r in rows] == [
        ("0.001", "32", "", "0.5"), ("0.01", "32", "", "0.25"), ("0.001", "0", "", ""), ("0.01", "", "0.1", "0.75")]
    assert rows[2]["status"] == "failed" and rows[2]["error"].startswith("ConfigError")
    table = (tmp_path / "summary.md").read_text().splitlines()
    assert table[:2] == ["Common to all 4 jobs: `model=asl_cnn` `trainer.max_epochs=1`", ""]
    assert table[2] == ("| job | status | optimizer.lr | data.batch_size | model.label_smoothing | val_accuracy | epochs "
                        "| wall_time_s | error |")
    assert table[4] == "| 0 | completed | 0.001 | 32 |  | 0.5 | 1 | 2.5 |  |" and len(table) == 4 + 4
