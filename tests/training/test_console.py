"""What a run prints: Keras-style epoch lines that stay, no bar in a log file, a rounded final table,
none of other libraries' routine warnings and tips, and every warning of the user's own code."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from cnnzoo.train import train
from tests.conftest import compose_run, run_cli

EPOCH_LINE = re.compile(r"^Epoch (\d+)/2  \d+\.\ds  loss \d\.\d{4}  accuracy \d\.\d{4}$")


@pytest.mark.slow
def test_a_run_to_a_pipe_prints_epoch_lines_a_table_and_no_third_party_noise(data_dir: Path, tmp_path: Path):
    done = run_cli("train", "model=fashion_mlp", "trainer.max_epochs=2", f"hydra.run.dir={tmp_path}",
                   "+callbacks.warn._target_=tests.fault_injection.WarnAtStart")
    assert done.returncode == 0, done.stderr[-3000:]
    out, err = done.stdout, done.stderr
    assert [m.group(1) for m in map(EPOCH_LINE.match, out.splitlines()) if m] == ["1", "2"]
    assert "\r" not in out and "it/s" not in out  # no progress-bar frames in a log
    for noise in ("FutureWarning", "LeafSpec", "Tip:", "GPU available", "TPU available", "logging interval",
                  "deprecated"):
        assert noise not in out + err, noise
    assert "UserWarning: a warning from the user's own callback" in err  # the user's warnings still show
    table = err[err.index("Run dir:"):].splitlines()
    assert table[1].split() == ["loss", "accuracy", "f1", "top5"]
    assert [row.split()[0] for row in table[2:4]] == ["train", "test"]
    assert all(re.fullmatch(r"\d\.\d{4}", cell) for cell in table[2].split()[1:])


@pytest.mark.slow
def test_verbose_keeps_the_third_party_lines(data_dir: Path, tmp_path: Path):
    done = run_cli("train", "model=fashion_mlp", "trainer.max_epochs=1", "verbose=true", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "GPU available" in done.stderr


def test_a_run_cut_to_a_few_batches_says_its_predictions_mean_nothing_yet(data_dir: Path, tmp_path: Path, caplog):
    with caplog.at_level(logging.INFO):
        train(compose_run("train", tmp_path, "model=asl_cnn", "debug=limit", "trainer.limit_train_batches=2",
                          "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "callbacks.input_inspection=null"))
    assert ("note: this run trained on 2 batch(es) an epoch: its predictions (BatchNormalization's moving "
            "statistics, momentum 0.99, have barely moved) are not meaningful yet") in caplog.text
