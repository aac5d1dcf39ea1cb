"""The measuring scripts run end to end in ``--quick`` mode on small generated data and report what
they promise (structure only, never a speed); ``scripts/gpu_check.sh --dry-run`` runs every step of
the GPU check on the CPU and writes its results file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPTS = REPO / "scripts"


def run(*command: str, cwd: Path, timeout: int = 180) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    env["PYTHON"] = sys.executable  # gpu_check.sh's interpreter
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_whole_run_bench_quick(data_dir: Path, tmp_path: Path):
    out = tmp_path / "whole.json"
    done = run(sys.executable, str(SCRIPTS / "bench_whole_run.py"), "--quick", "--contenders", "cnnzoo,hand,tf_keras2",
               "--json", str(out), cwd=tmp_path)
    result = json.loads(out.read_text())
    assert result["meta"]["rounds"] == 1 and set(result["meta"]["cpu"]["bf16_flags"]) == {"avx512_bf16", "amx_bf16"}
    assert {"median", "min", "max"} <= set(result["wall_s"]["cnnzoo"]) and "median" in result["wall_s"]["hand"]
    assert "--tf-python" in result["wall_s"]["tf_keras2"]["skipped"]
    assert set(result["ratios"]) == {"hand / cnnzoo"}
    assert done.stdout.startswith("CPU: ") and "| hand / cnnzoo |" in done.stdout


@pytest.mark.slow
def test_busy_bench_quick(tmp_path: Path):
    out = tmp_path / "busy.json"
    done = run(sys.executable, str(SCRIPTS / "bench_busy.py"), "--quick", "--json", str(out), cwd=tmp_path)
    result = json.loads(out.read_text())
    assert set(result["cells"]) == {"default quiet", "old quiet", "default busy", "old busy"}
    assert all(cell["median"] > 0 and cell["threads"] >= 1 for cell in result["cells"].values())
    assert set(result["ratios"]) == {"default busy / default quiet", "old busy / old quiet",
                                     "default quiet / old quiet", "default busy / old busy"}
    assert result["cells"]["old busy"]["wait_policy"] == "default"  # the old default is left untouched
    assert done.stdout.startswith("CPU: ")


@pytest.mark.slow
def test_startup_bench_quick(tmp_path: Path):
    out = tmp_path / "startup.json"
    run(sys.executable, str(SCRIPTS / "bench_startup.py"), "--quick", "--json", str(out), cwd=tmp_path)
    result = json.loads(out.read_text())
    assert set(result["wall_s"]) == {"import torch", "predict (1 image)", "summary"}
    assert set(result["ratios"]) == {"predict (1 image) / import torch", "summary / import torch"}


@pytest.mark.slow
def test_gpu_check_dry_run_writes_its_results_file(tmp_path: Path):
    run("bash", str(SCRIPTS / "gpu_check.sh"), "--dry-run", "--out", str(tmp_path / "out"), cwd=tmp_path, timeout=300)
    report = (tmp_path / "out" / "results.md").read_text()
    assert report.startswith("# cnnzoo GPU check") and "DRY RUN on CPU" in report
    for title in ("## environment", "## pytest -m gpu", "## throughput", "## one asl_cnn epoch"):
        assert title in report, report[-3000:]
    assert report.count("rc=0,") == report.count("rc="), report[-4000:]  # every step succeeded
    assert "passed" in report.split("## pytest -m gpu")[1].split("##")[0]
    bench = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert "median" in bench["results"]["asl_cnn"]["cnnzoo_bf16"]
