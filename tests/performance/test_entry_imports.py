"""Entry points import only what they use: after ``--help``, ``summary``, ``predict`` and ``export``
Lightning, torchmetrics and torchvision are not in ``sys.modules`` (untimed; each entry point runs in
a subprocess under a wrapper that prints the check at exit)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnzoo.training.module import ClassifierModule
from tests.conftest import REPO, save_checkpoint

HEAVY = ("lightning", "torchmetrics", "torchvision")
WRAPPER = """
import atexit, json, os, runpy, sys
sys.path.insert(0, os.getcwd())
atexit.register(lambda: print("MODULES " + json.dumps(sorted(m for m in {heavy!r} if m in sys.modules))))
module = sys.argv[1]
sys.argv = [module, *sys.argv[2:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
""".format(heavy=HEAVY)


def start(module: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRAPPER, f"cnnzoo.{module}", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def heavy_modules(process: subprocess.Popen) -> list[str]:
    """The heavy modules the started entry point had imported when it exited."""
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-2000:]
    line = next(line for line in stdout.splitlines() if line.startswith("MODULES "))
    return json.loads(line.removeprefix("MODULES "))


def imported(module: str, *args: str) -> list[str]:
    return heavy_modules(start(module, *args))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    module = ClassifierModule("mnist_mlp", num_classes=10, input_shape=[1, 28, 28],
                              data_config={"_target_": "cnnzoo.data.MNISTDataModule", "batch_size": 32})
    return save_checkpoint(module, tmp_path_factory.mktemp("run") / "last.ckpt")


@pytest.mark.slow
@pytest.mark.parametrize("module", ["train", "evaluate", "predict", "summary", "export"])
def test_help_imports_none_of_them(module: str):
    assert imported(module, "--help") == []


@pytest.mark.slow
def test_summary_predict_and_export_import_none_of_them(checkpoint: Path, tmp_path: Path):
    image = tmp_path / "digit.png"
    from PIL import Image

    Image.new("L", (28, 28), 128).save(image)
    started = {  # at once: each is its own process, mostly single-threaded start-up
        "summary": start("summary", "model=asl_cnn"),
        "predict": start("predict", f"ckpt_path={checkpoint}", f"inputs=[{image}]", f"hydra.run.dir={tmp_path / 'p'}"),
        "export": start("export", f"ckpt_path={checkpoint}", "format=torchscript", f"output={tmp_path / 'm.pt'}"),
    }
    assert {name: heavy_modules(process) for name, process in started.items()} == {name: [] for name in started}
    assert torch.jit.load(tmp_path / "m.pt")(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
