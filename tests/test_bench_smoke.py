"""``scripts/bench.py --quick`` runs end to end on tiny generated data and writes what it promises.

A smoke test of structure, never of speed: every requested contender gives a result or says why it
was skipped (the TensorFlow ones without ``--tf-python``), the JSON holds every model and contender,
and the table starts with the CPU line.  One model (asl_cnn: the CSV dataset, BatchNorm, RMSprop) keeps
it near 20 s on 2 cores; the other recipes go through the same code with another DataModule.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

MODELS = ["asl_cnn"]
CONTENDERS = ["cnnzoo", "cnnzoo_bf16", "cnnzoo_compiled", "hand", "hand_cl", "hand_cl_bf16", "naive", "lightning",
              "keras3_torch", "keras3_tf", "tf_keras2"]


@pytest.mark.slow
def test_quick_bench_reports_every_contender(data_dir: Path, tmp_path: Path):
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}  # data_dir set CNNZOO_DATA_DIR
    command = [sys.executable, str(REPO / "scripts" / "bench.py"), "--quick", "--extras", "--models", ",".join(MODELS),
               "--contenders", ",".join(CONTENDERS), "--json", str(out)]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())

    assert result["meta"]["rounds"] == 1 and result["meta"]["contenders"] == CONTENDERS
    assert list(result["results"]) == MODELS
    for model in MODELS:
        table = result["results"][model]
        assert list(table) == CONTENDERS
        for contender, row in table.items():
            assert "median" in row or row.get("skipped"), (model, contender, row)
        for contender in ("cnnzoo", "cnnzoo_bf16", "hand", "hand_cl", "hand_cl_bf16", "naive", "lightning"):  # torch ones run
            assert "median" in table[contender], (model, contender, table[contender])
        for contender in ("keras3_tf", "tf_keras2"):
            assert "--tf-python" in table[contender]["skipped"]
        assert "--device cuda" in table["cnnzoo_compiled"]["skipped"]
        assert {"cnnzoo / hand_cl", "cnnzoo_bf16 / cnnzoo", "hand_cl_bf16 / hand_cl"} <= set(result["ratios"][model])
    assert set(result["meta"]["cpu"]["bf16_flags"]) == {"avx512_bf16", "amx_bf16"}
    assert "error" not in result["extras"]["sign_mnist_csv_load_s"], result["extras"]
    assert "error" not in result["extras"]["cnnzoo_train"], result["extras"]

    lines = done.stdout.splitlines()
    assert lines[0].startswith("CPU: ") and "bf16 flags: avx512_bf16" in lines[0]
    assert any(line.startswith("| cnnzoo |") for line in lines)
    assert any(line.startswith("| cnnzoo / hand_cl |") for line in lines)
    assert "tf_keras2 skipped: no --tf-python" in done.stdout
