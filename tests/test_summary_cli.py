"""``python -m cnnzoo.summary``: prints the Keras-style table for a configured model, writes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocess runs of the real entry point


def _summary(tmp_path: Path, *overrides: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cnnzoo.summary", *overrides], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert not list(tmp_path.iterdir()), "summary must not write files"
    return done.stdout


def test_summary_of_a_notebook_model(tmp_path: Path):
    out = _summary(tmp_path, "model=asl_cnn")
    assert 'Model: "asl_cnn"' in out
    assert "Total params: 264,049" in out and "Trainable params: 263,749" in out and "Non-trainable params: 300" in out
    assert "(None, 4, 4, 25)" in out  # 'same' pooling of 7x7 -> 4x4


def test_summary_is_sized_by_the_data(tmp_path: Path):
    out = _summary(tmp_path, "model=asl_cnn", "data=mnist")
    assert "(None, 10)" in out and "Total params: 256,867" in out  # 24-class head replaced by a 10-class one
    out = _summary(tmp_path, "model=bn_cnn", "data.resize=null")
    assert "(None, 26, 26, 32)" in out


def test_unknown_model_is_hydras_one_line_error(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "cnnzoo.summary", "model=resnet"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0 and "Could not find 'model/resnet'" in done.stderr and "asl_cnn" in done.stderr
