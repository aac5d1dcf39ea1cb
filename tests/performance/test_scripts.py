"""The measuring scripts run end to end in ``--quick`` mode on small generated data and report what
they promise (structure only, never a speed): ``bench.py`` gives every requested contender a result
or says why it was skipped (the TensorFlow ones without ``--tf-python``); ``scripts/gpu_check.sh
--dry-run`` runs every step of the GPU check on the CPU and writes its results file.

The five scripts are started together by one module fixture and each test waits for its own: they
are mostly process start-ups (single-threaded imports), so on 2 cores they overlap well, and what
they measure when sharing the machine is irrelevant here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, write_datasets

SCRIPTS = REPO / "scripts"
pytestmark = pytest.mark.slow
BENCH_CONTENDERS = ["cnnzoo", "cnnzoo_bf16", "cnnzoo_compiled", "hand", "hand_cl", "hand_cl_bf16", "naive", "lightning",
                    "lightning_manual", "keras3_torch", "keras3_tf", "tf_keras2"]


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[subprocess.Popen, Path]]:
    """name -> (its started process, its output dir)."""
    root = tmp_path_factory.mktemp("scripts")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "KERAS_BACKEND")}
    # Five scripts on 2 cores is a busy machine: OpenMP threads that spin-wait for their share of a core
    # burn what the others need (about 5 s of this fixture's wall time). The benches that measure a
    # wait policy (bench_busy, bench_whole_run) set their own processes' environment.
    env.update(OMP_WAIT_POLICY="PASSIVE", PYTHON=sys.executable, XDG_CACHE_HOME=str(root / "cache"),
               CNNZOO_DATA_DIR=str(write_datasets(root / "data")))  # PYTHON: gpu_check.sh's interpreter
    commands = {  # one model for bench.py (asl_cnn: the CSV dataset, BatchNorm, RMSprop); the others share its code
        "bench": [sys.executable, str(SCRIPTS / "bench.py"), "--quick", "--extras", "--models", "asl_cnn",
                  "--contenders", ",".join(BENCH_CONTENDERS)],
        "whole": [sys.executable, str(SCRIPTS / "bench_whole_run.py"), "--quick", "--contenders", "cnnzoo,hand,tf_keras2"],
        "busy": [sys.executable, str(SCRIPTS / "bench_busy.py"), "--quick"],
        "startup": [sys.executable, str(SCRIPTS / "bench_startup.py"), "--quick"],
        "gpu_check": ["bash", str(SCRIPTS / "gpu_check.sh"), "--dry-run", "--out"],
    }
    started = {}
    for name, command in commands.items():
        out = root / name
        out.mkdir()
        command = [*command, str(out)] if name == "gpu_check" else [*command, "--json", str(out / "result.json")]
        started[name] = (subprocess.Popen(command, cwd=out, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True), out)
    yield started
    for process, _ in started.values():
        process.kill()
        process.wait()


def finished(scripts: dict, name: str, timeout: int = 300) -> tuple[str, Path]:
    process, out = scripts[name]
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr[-3000:]
    return stdout, out


def test_bench_quick_reports_every_contender(scripts):
    stdout, out = finished(scripts, "bench")
    result = json.loads((out / "result.json").read_text())
    assert result["meta"]["rounds"] == 1 and result["meta"]["contenders"] == BENCH_CONTENDERS
    table = result["results"]["asl_cnn"]
    assert list(result["results"]) == ["asl_cnn"] and list(table) == BENCH_CONTENDERS
    for contender in ("cnnzoo", "cnnzoo_bf16", "hand", "hand_cl", "hand_cl_bf16", "naive", "lightning",
                      "lightning_manual"):  # the torch ones run
        assert "median" in table[contender], (contender, table[contender])
    assert "median" in table["keras3_torch"] or table["keras3_torch"].get("skipped"), table["keras3_torch"]
    for contender in ("keras3_tf", "tf_keras2"):
        assert "--tf-python" in table[contender]["skipped"]
    assert "--device cuda" in table["cnnzoo_compiled"]["skipped"]
    assert {"cnnzoo / hand_cl", "cnnzoo_bf16 / cnnzoo", "hand_cl_bf16 / hand_cl"} <= set(result["ratios"]["asl_cnn"])
    assert set(result["meta"]["cpu"]["bf16_flags"]) == {"avx512_bf16", "amx_bf16"}
    assert set(result["extras"]["sign_mnist_csv_load_s"]) == {"no_cache", "cached"}, result["extras"]
    lines = stdout.splitlines()
    assert lines[0].startswith("CPU: ") and "bf16 flags: avx512_bf16" in lines[0]
    assert any(line.startswith("| cnnzoo |") for line in lines)
    assert any(line.startswith("| cnnzoo / hand_cl |") for line in lines)
    assert "tf_keras2 skipped: no --tf-python" in stdout


def test_whole_run_bench_quick(scripts):
    stdout, out = finished(scripts, "whole")
    result = json.loads((out / "result.json").read_text())
    assert result["meta"]["rounds"] == 1 and set(result["meta"]["cpu"]["bf16_flags"]) == {"avx512_bf16", "amx_bf16"}
    assert {"median", "min", "max"} <= set(result["wall_s"]["cnnzoo"]) and "median" in result["wall_s"]["hand"]
    probes = result["probes"]  # the first step is cnnzoo's alone (its callback); every process has a peak RSS
    assert set(probes["cnnzoo"]) == {"first_step_s", "peak_rss_mb"} and set(probes["hand"]) == {"peak_rss_mb"}
    assert 0 < probes["cnnzoo"]["first_step_s"]["median"] < result["wall_s"]["cnnzoo"]["median"]
    assert probes["hand"]["peak_rss_mb"]["median"] > 100  # torch alone takes more
    assert "--tf-python" in result["wall_s"]["tf_keras2"]["skipped"]
    assert set(result["ratios"]) == {"hand / cnnzoo"}
    assert stdout.startswith("CPU: ") and "| hand / cnnzoo |" in stdout


def test_busy_bench_quick(scripts):
    stdout, out = finished(scripts, "busy")
    result = json.loads((out / "result.json").read_text())
    assert set(result["cells"]) == {"default quiet", "old quiet", "default busy", "old busy"}
    assert all(cell["median"] > 0 and cell["threads"] >= 1 for cell in result["cells"].values())
    assert set(result["ratios"]) == {"default busy / default quiet", "old busy / old quiet",
                                     "default quiet / old quiet", "default busy / old busy"}
    assert result["cells"]["old busy"]["wait_policy"] == "default"  # the old default is left untouched
    assert stdout.startswith("CPU: ")


def test_startup_bench_quick(scripts):
    _, out = finished(scripts, "startup")
    result = json.loads((out / "result.json").read_text())
    assert set(result["wall_s"]) == {"import torch", "predict (1 image)", "summary"}
    assert set(result["ratios"]) == {"predict (1 image) / import torch", "summary / import torch"}


def test_gpu_check_dry_run_writes_its_results_file(scripts):
    _, out = finished(scripts, "gpu_check")
    report = (out / "results.md").read_text()
    assert report.startswith("# cnnzoo GPU check") and "DRY RUN on CPU" in report
    for title in ("## environment", "## pytest -m gpu", "## throughput", "## one asl_cnn epoch"):
        assert title in report, report[-3000:]
    assert report.count("rc=0,") == report.count("rc="), report[-4000:]  # every step succeeded
    assert "passed" in report.split("## pytest -m gpu")[1].split("##")[0]
    bench = json.loads((out / "bench.json").read_text())
    assert "median" in bench["results"]["asl_cnn"]["cnnzoo_bf16"]
