"""What each entry point accepts and shows: ``threads=`` in evaluate/predict/export (applied to
torch), and a ``--help`` that lists only the config groups that entry point uses (``python -m``, slow)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import cnnzoo.evaluate
import cnnzoo.export
import cnnzoo.predict
import cnnzoo.train
from cnnzoo.training.module import ClassifierModule
from tests.conftest import compose_run, run_cli, save_checkpoint


@pytest.fixture
def ckpt(data_dir: Path, tmp_path: Path) -> Path:
    """An untrained mnist_mlp checkpoint for the generated MNIST."""
    data = compose_run("train", tmp_path / "compose").data
    module = ClassifierModule("mnist_mlp", 10, [1, 28, 28], data_config=OmegaConf.to_container(data, resolve=True))
    return save_checkpoint(module, tmp_path / "mnist_mlp.ckpt")


@pytest.fixture
def threads():
    """torch's thread count is restored after the test."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("entry", ["evaluate", "predict", "export"])
def test_threads_is_accepted_and_applied(entry: str, ckpt: Path, tmp_path: Path, threads, capsys):
    torch.set_num_threads(2)
    if entry == "evaluate":
        result = cnnzoo.evaluate.evaluate(compose_run("evaluate", tmp_path / "run", f"ckpt_path={ckpt}", "threads=1",
                                                      "seed=3", "~logger"))
        assert set(result["metrics"]["test"]) == {"loss", "accuracy", "f1", "top5"}
    elif entry == "predict":
        records = cnnzoo.predict.predict(compose_run("predict", tmp_path / "run", f"ckpt_path={ckpt}", "index=[0]",
                                                     "threads=1"))
        assert len(records) == 1
    else:
        cnnzoo.export.main.__wrapped__(compose_run("export", tmp_path, f"ckpt_path={ckpt}", "format=torchscript",
                                                   f"output={tmp_path}/net.pt", "threads=1"))
        assert (tmp_path / "net.pt").exists() and "Wrote" in capsys.readouterr().out
    assert torch.get_num_threads() == 1


def _help(module) -> str:
    done = run_cli(module.__name__.removeprefix("cnnzoo."), "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _groups(text: str) -> set[str]:
    section = text.split("== Configuration groups ==")[1].split("== Config ==")[0] if "groups ==" in text else ""
    return set(re.findall(r"^(\w+): ", section, flags=re.MULTILINE))


@pytest.mark.slow  # a subprocess each: Hydra's --help set up in-process outlives pytest's captured streams
@pytest.mark.parametrize(("module", "groups"), [
    (cnnzoo.evaluate, {"data", "trainer", "logger"}),
    (cnnzoo.predict, set()),
    (cnnzoo.export, set()),
    (cnnzoo.train, {"callbacks", "data", "debug", "experiment", "hparams_search", "logger", "model", "optimizer",
                    "trainer"}),
])
def test_help_lists_only_the_entry_points_own_groups(module, groups: set[str]):
    text = _help(module)
    assert _groups(text) == groups
    if "data" in groups:
        assert "data: fashion_mnist, mnist, sign_mnist" in text
