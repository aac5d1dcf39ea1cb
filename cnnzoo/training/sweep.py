"""A Hydra callback that keeps a summary table of a multirun sweep in its sweep dir.

After every job it records that job (overrides, completed/failed with the error, final metrics from
its ``metrics.json``) as ``job.json`` in the job's dir, then rewrites ``summary.csv`` and
``summary.md`` in the sweep dir from all jobs recorded so far.  Because the table is rebuilt from
files after each job, it is complete even when a later job fails, the sweep is interrupted, or the
jobs run in other processes (joblib, submitit launchers).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from cnnzoo.atomic import atomic_path, write_json_atomic

STAGES = ("train", "val", "test")
FIRST_COLUMNS = ["job", "status", "overrides"]
LAST_COLUMNS = ["epochs", "wall_time_s", "error"]


class SweepSummary(Callback):
    """Writes ``<sweep dir>/summary.{csv,md}``, one row per job, in multirun mode only."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        hydra_cfg = job_return.hydra_cfg.hydra
        if hydra_cfg.mode != RunMode.MULTIRUN:
            return
        job_dir = Path(hydra_cfg.runtime.output_dir)
        record: dict[str, Any] = {"job": hydra_cfg.job.num, "overrides": list(job_return.overrides or [])}
        if job_return.status == JobStatus.COMPLETED:
            record["status"] = "completed"
        else:
            error = job_return._return_value  # the exception the job raised
            record["status"] = "failed"
            record["error"] = " ".join(f"{type(error).__name__}: {error}".split())
        metrics_file = job_dir / "metrics.json"
        if metrics_file.is_file():
            record["result"] = json.loads(metrics_file.read_text())
        write_json_atomic(job_dir / "job.json", record)
        write_summary(Path(hydra_cfg.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        write_summary(Path(config.hydra.sweep.dir))


def summary_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    """One flat row per recorded job, ordered by job number."""
    rows = []
    for path in sweep_dir.glob("*/job.json"):
        record = json.loads(path.read_text())
        result = record.get("result", {})
        row = {"job": record["job"], "status": record["status"], "overrides": " ".join(record["overrides"])}
        for stage in STAGES:
            for name, value in sorted(result.get("metrics", {}).get(stage, {}).items()):
                row[f"{stage}_{name}"] = round(value, 4)
        row.update(epochs=result.get("epochs", ""), wall_time_s=result.get("wall_time_s", ""), error=record.get("error", ""))
        rows.append(row)
    return sorted(rows, key=lambda row: row["job"])


def write_summary(sweep_dir: Path) -> None:
    rows = summary_rows(sweep_dir)
    if not rows:
        return
    metric_columns = sorted({key for row in rows for key in row} - set(FIRST_COLUMNS) - set(LAST_COLUMNS))
    columns = FIRST_COLUMNS + metric_columns + LAST_COLUMNS
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(c, "")).replace("|", "\\|") for c in columns) + " |" for row in rows]
    for name, text in (("summary.csv", buffer.getvalue()), ("summary.md", "\n".join(lines) + "\n")):
        with atomic_path(sweep_dir / name) as tmp:
            tmp.write_text(text)
