"""Entry points import only what they use: after ``--help``, ``summary``, ``predict`` and ``export``
Lightning, torchmetrics and torchvision are not in ``sys.modules``; and what they imported is frozen
out of the cyclic collector, which is on again for the work (``cnnzoo.startup``), while one called
in-process leaves the caller's collector alone.  Untimed; each entry point runs in a subprocess under a
wrapper that prints the check at exit."""

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
import atexit, gc, json, os, runpy, sys
sys.path.insert(0, os.getcwd())
atexit.register(lambda: print("MODULES " + json.dumps(sorted(m for m in {heavy!r} if m in sys.modules))))
atexit.register(lambda: print("GC " + json.dumps({{"frozen": gc.get_freeze_count(), "enabled": gc.isenabled()}})))
module = sys.argv[1]
sys.argv = [module, *sys.argv[2:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
""".format(heavy=HEAVY)


def start(module: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRAPPER, f"cnnzoo.{module}", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def at_exit(process: subprocess.Popen) -> dict:
    """What the wrapper printed when the started entry point exited: ``MODULES`` and ``GC``."""
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-2000:]
    return {key: json.loads(line.removeprefix(key + " ")) for line in stdout.splitlines()
            for key in ("MODULES", "GC") if line.startswith(key + " ")}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    module = ClassifierModule("mnist_mlp", num_classes=10, input_shape=[1, 28, 28],
                              data_config={"_target_": "cnnzoo.data.MNISTDataModule", "batch_size": 32})
    return save_checkpoint(module, tmp_path_factory.mktemp("run") / "last.ckpt")


ENTRY_POINTS = ["train", "evaluate", "predict", "summary", "export"]


@pytest.fixture(scope="module")
def helped() -> dict[str, subprocess.Popen]:
    """Every entry point's ``--help``, started at once (start-ups are single-threaded)."""
    started = {module: start(module, "--help") for module in ENTRY_POINTS}
    yield started
    for process in started.values():  # those of deselected tests
        process.kill()
        process.communicate()


@pytest.mark.slow
@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_help_imports_none_of_them(helped: dict[str, subprocess.Popen], module: str):
    assert at_exit(helped[module])["MODULES"] == []


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
    state = {name: at_exit(process) for name, process in started.items()}
    assert {name: s["MODULES"] for name, s in state.items()} == {name: [] for name in started}
    for name, s in state.items():  # torch alone leaves some 45,000 objects to freeze
        assert s["GC"]["enabled"] and s["GC"]["frozen"] > 10_000, (name, s["GC"])
    assert torch.jit.load(tmp_path / "m.pt")(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_an_entry_point_called_in_process_leaves_the_callers_collector_alone(capsys):
    import gc

    import cnnzoo.summary
    from tests.conftest import run_main

    frozen = gc.get_freeze_count()
    run_main(cnnzoo.summary, "model=mnist_mlp")
    assert "mnist_mlp" in capsys.readouterr().out  # it ran
    assert gc.isenabled() and gc.get_freeze_count() == frozen
