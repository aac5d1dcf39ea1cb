"""The tables every ``bench*.py`` script prints: the CPU line, markdown rows, per-round spreads and
paired ratios, and the log line.

Why a module of its own: the scripts that time whole processes (``bench_whole_run.py``,
``bench_busy.py``, ``bench_startup.py``) need only these, and importing them from ``bench.py`` made
each of those scripts import torch, Lightning and Hydra (seconds) before its first measurement.
Nothing here imports more than the standard library.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cpu_info() -> dict:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    return {"model": fields.get("model name") or platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "bf16_flags": {flag: flag in flags for flag in ("avx512_bf16", "amx_bf16")}}


def cpu_line(cpu: dict) -> str:
    flags = ", ".join(f"{flag} {'yes' if on else 'no'}" for flag, on in cpu["bf16_flags"].items())
    return f"CPU: {cpu['model']} ({cpu['cores']} cores); bf16 flags: {flags}"


def markdown(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|---" * len(header) + "|", *("| " + " | ".join(r) + " |" for r in rows)]


def spread(values: list[float], digits: int = 3) -> dict:
    """Median [min-max] of per-round values (the scripts' cells and paired ratios)."""
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits), "rounds": [round(v, 3) for v in values]}


def span(values: dict, digits: int = 2, suffix: str = "") -> str:
    """A :func:`spread` as a table cell: ``median [min-max]``, thousands separated."""
    return f"{values['median']:,.{digits}f}{suffix} [{values['min']:,.{digits}f}-{values['max']:,.{digits}f}]"


def paired_lines(ratios: dict, suffix: str = "x") -> list[str]:
    """The table of per-round (paired) ratios: median [min-max]."""
    rows = [[k, span(v, 2, suffix)] for k, v in ratios.items()]
    return ["", *markdown(["ratio (paired per round)", "median [min-max]"], rows)]


def publish(result: dict, lines: list[str], path: str | None) -> dict:
    """Print the table; write every round's number as JSON to ``path``."""
    print("\n".join(lines))
    if path:
        Path(path).write_text(json.dumps(result, indent=2))
    return result
