"""A Hydra callback that keeps a summary table of a multirun sweep in its sweep dir.

After every job it records that job (overrides, completed/failed with the error, final metrics from
its ``metrics.json``) as ``job.json`` in the job's dir (interrupted: Ctrl+C or SIGTERM, after which
the sweep stops with exit status 128+N; ``resume=true`` matches jobs by these overrides), then rewrites ``summary.csv`` and
``summary.md`` in the sweep dir from all jobs recorded so far: a column per swept parameter (an
override whose value differs between jobs), the overrides all jobs share written once above the
Markdown table.  Because the table is rebuilt from
files after each job, it is complete even when a later job fails, the sweep is interrupted, or the
jobs run in other processes (joblib, submitit launchers).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, read_write

from cnnzoo.atomic import atomic_path, write_json_atomic
from cnnzoo.errors import TrainingInterrupted

STAGES = ("train", "val", "test")
FIRST_COLUMNS = ["job", "status"]  # then one column per swept parameter
LAST_COLUMNS = ["epochs", "wall_time_s", "error"]


class SweepSummary(Callback):
    """Writes ``<sweep dir>/summary.{csv,md}``, one row per job, in multirun mode only."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # ${cnnzoo_run_id:} is drawn once per process: a launcher whose jobs run in other processes
        # (submitit; a requeued job) must get this process's sweep dir, not draw its own.
        with read_write(config.hydra.sweep):
            config.hydra.sweep.dir = str(config.hydra.sweep.dir)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        hydra_cfg = job_return.hydra_cfg.hydra
        if hydra_cfg.mode != RunMode.MULTIRUN:
            return
        job_dir = Path(hydra_cfg.runtime.output_dir)
        overrides = [line for line in job_return.overrides or [] if line.partition("=")[0].lstrip("+~") != "resume"]
        record: dict[str, Any] = {"job": hydra_cfg.job.num, "overrides": overrides}
        error = None
        if job_return.status == JobStatus.COMPLETED:
            record["status"] = "completed"
        else:
            error = job_return._return_value  # the exception the job raised
            record["status"] = "interrupted" if isinstance(error, TrainingInterrupted) else "failed"
            record["error"] = " ".join(f"{type(error).__name__}: {error}".split())
        metrics_file = job_dir / "metrics.json"
        if metrics_file.is_file():
            record["result"] = json.loads(metrics_file.read_text())
        write_json_atomic(job_dir / "job.json", record)
        write_summary(Path(hydra_cfg.sweep.dir))
        if isinstance(error, TrainingInterrupted):
            # Ctrl+C / SIGTERM stops the sweep, not just this job (whose last.ckpt is written):
            # `resume=true hydra.sweep.dir=<this dir>` carries on from here.
            print(f"error: {error}\nthe sweep stops here; continue it with resume=true "
                  f"hydra.sweep.dir={hydra_cfg.sweep.dir}", file=sys.stderr)
            raise SystemExit(error.exit_code)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        write_summary(Path(config.hydra.sweep.dir))


def _parsed(overrides: list[str]) -> dict[str, str]:
    """``["+callbacks.poison.step=99", "data.batch_size=32"]`` -> ``{"callbacks.poison.step": "99", ...}``."""
    pairs = {}
    for line in overrides:
        key, sep, value = line.partition("=")
        pairs[key.lstrip("+~")] = value if sep else "(deleted)"
    return pairs


def swept_and_common(records: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The override keys whose value differs between jobs (one table column each), and the
    overrides every job has alike, as given (written once, above the table)."""
    parsed = [_parsed(record["overrides"]) for record in records]
    keys = list(dict.fromkeys(key for pairs in parsed for key in pairs))
    swept = [key for key in keys if any(pairs.get(key) != parsed[0].get(key) for pairs in parsed)]
    common = [line for line in records[0]["overrides"] if line.partition("=")[0].lstrip("+~") not in swept]
    return swept, common


def _records(sweep_dir: Path) -> list[dict[str, Any]]:
    records = [json.loads(path.read_text()) for path in sweep_dir.glob("*/job.json")]
    return sorted(records, key=lambda record: record["job"])


def summary_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    """One flat row per recorded job, ordered by job number: its value of each swept parameter
    (the overrides that differ between jobs), status, final metrics, epochs, time and error."""
    records = _records(sweep_dir)
    swept = swept_and_common(records)[0] if records else []
    rows = []
    for record in records:
        result = record.get("result", {})
        overrides = _parsed(record["overrides"])
        row = {"job": record["job"], "status": record["status"], **{key: overrides.get(key, "") for key in swept}}
        for stage in STAGES:
            for name, value in sorted(result.get("metrics", {}).get(stage, {}).items()):
                row[f"{stage}_{name}"] = round(value, 4)
        row.update(epochs=result.get("epochs", ""), wall_time_s=result.get("wall_time_s", ""), error=record.get("error", ""))
        rows.append(row)
    return rows


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|")


def write_summary(sweep_dir: Path) -> None:
    """``summary.csv`` (a plain CSV: a column per swept parameter, then the metrics) and
    ``summary.md`` (the overrides common to all jobs once, then the same table)."""
    records = _records(sweep_dir)
    if not records:
        return
    swept, common = swept_and_common(records)
    rows = summary_rows(sweep_dir)
    first = FIRST_COLUMNS + swept
    metric_columns = sorted({key for row in rows for key in row} - set(first) - set(LAST_COLUMNS))
    columns = first + metric_columns + LAST_COLUMNS
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    lines = [f"Common to all {len(records)} jobs: " + " ".join(f"`{line}`" for line in common), ""] \
        if common else []
    lines += ["| " + " | ".join(map(_cell, columns)) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    for name, text in (("summary.csv", buffer.getvalue()), ("summary.md", "\n".join(lines) + "\n")):
        with atomic_path(sweep_dir / name) as tmp:
            tmp.write_text(text)
