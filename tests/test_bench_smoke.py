"""``scripts/bench.py --quick`` runs end to end on tiny generated data and writes the JSON it promises.

A smoke test, not a timed test: it checks that every contender and every extra measurement runs
(or is skipped with a note, as the TensorFlow ones are without ``--tf-python``), not how fast.  One
model (asl_cnn: the CSV dataset, BatchNorm, RMSprop) keeps it near a minute on 2 cores; the other
two go through the same code with another DataModule.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, write_sign_dataset

MODELS = ("asl_cnn",)


@pytest.fixture
def bench_data(tmp_path: Path) -> Path:
    """Just enough Sign-MNIST rows for 2 warm-up + 4 timed steps of batch 32."""
    root = tmp_path / "data"
    write_sign_dataset(root / "sign_mnist", n_train=200, n_test=48, seed=3)
    return root


def test_quick_bench_writes_the_table_and_json(bench_data: Path, tmp_path: Path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "CNNZOO_DATA_DIR": str(bench_data), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("KERAS_BACKEND", None)
    command = [sys.executable, str(REPO / "scripts" / "bench.py"), "--quick", "--warmup-steps", "2", "--steps", "4",
               "--val-batches", "1", "--rss-batches", "2", "--models", ",".join(MODELS), "--json", str(out)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())

    assert {"meta", "throughput", "ratios", "skipped", "notes", "startup", "csv", "targets"} <= set(result)
    assert result["meta"]["quick"] is True and result["meta"]["repeats"] == 1
    assert set(result["throughput"]) == set(MODELS)
    for model in MODELS:
        table = result["throughput"][model]
        for contender in ("cnnzoo", "cnnzoo_before", "hand", "hand_cl", "hand_best", "naive"):
            assert table[contender]["median"] > 0, (model, contender, table[contender])
        for ratio in ("cnnzoo/hand", "cnnzoo/naive", "cnnzoo/hand_fastest"):
            assert result["ratios"][model][ratio] > 0
    # No --tf-python: the TensorFlow contenders are skipped with a note, the run still succeeds.
    for contender in ("keras3_tf", "tf_keras2"):
        assert "--tf-python" in result["skipped"][contender]
    # Keras 3 on the torch backend runs when keras is installed (it is a dev dependency).
    if "keras3_torch" in result["skipped"]:
        assert "keras" in result["skipped"]["keras3_torch"]
    else:
        assert all(result["throughput"][m]["keras3_torch"]["median"] > 0 for m in MODELS)
        assert result["ratios"]["asl_cnn"]["cnnzoo/keras3_torch"] > 0

    startup = result["startup"]
    assert "error" not in startup, startup
    assert startup["first_step_s"] > 0 and startup["import_torch_lightning_hydra_s"] > 0
    assert startup["peak_rss_mb"] > 100
    csv = result["csv"]
    assert csv["train_cold_s"] > 0 and csv["train_cached_s"] > 0 and csv["all_cached_s"] > 0
    assert any(name.startswith("peak RSS") for name in result["targets"])
    assert "| contender |" in done.stdout and "cnnzoo/hand" in done.stdout
