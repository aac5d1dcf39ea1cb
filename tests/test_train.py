"""``cnnzoo.train``: configs compose for every model, and short runs write everything they promise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from cnnzoo.lit import ClassifierModule
from cnnzoo.models import list_models
from cnnzoo.train import train
from tests.conftest import real_data_dir

CONF = Path(__file__).resolve().parents[1] / "conf"
REPO = CONF.parent


def compose_train(run_dir: Path, *overrides: str) -> DictConfig:
    """The config ``python -m cnnzoo.train hydra.run.dir=<run_dir> <overrides>`` would run with."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig().set_config(cfg)
    return cfg


def test_every_registered_model_has_a_recipe_and_vice_versa():
    assert sorted(p.stem for p in (CONF / "model").glob("*.yaml")) == list_models()


@pytest.mark.parametrize("name", list_models())
def test_model_recipes_compose(name: str, tmp_path: Path):
    cfg = compose_train(tmp_path, f"model={name}")
    assert cfg.model.arch == name
    assert cfg.model.optimizer.name == cfg.optimizer.name
    assert cfg.data._target_.startswith("cnnzoo.data.")


def test_recipe_examples(tmp_path: Path):
    asl = compose_train(tmp_path, "model=asl_cnn")
    assert (asl.data._target_, asl.optimizer.name, asl.data.batch_size, asl.trainer.max_epochs) == (
        "cnnzoo.data.SignMNISTDataModule", "rmsprop", 32, 20)
    deitel = compose_train(tmp_path, "model=mnist_cnn")
    assert (deitel.optimizer.name, deitel.data.batch_size, deitel.data.validation) == ("adam", 64, 0.1)
    bn = compose_train(tmp_path, "model=bn_cnn")
    assert list(bn.data.resize) == [64, 64]
    mixed = compose_train(tmp_path, "model=asl_cnn", "data=mnist", "optimizer.lr=0.01")
    assert mixed.data._target_ == "cnnzoo.data.MNISTDataModule" and mixed.model.optimizer.lr == 0.01


@pytest.mark.parametrize(
    ("model", "data"), [("mnist_mlp", "mnist"), ("fashion_mlp", "fashion_mnist"), ("asl_cnn", "sign_mnist")]
)
def test_one_epoch_writes_metrics_checkpoints_and_tensorboard(data_dir: Path, tmp_path: Path, model: str, data: str):
    run_dir = tmp_path / "run"
    cfg = compose_train(run_dir, f"model={model}", f"data={data}", "trainer.max_epochs=1", "trainer.accelerator=cpu")
    result = train(cfg)
    stored = json.loads((run_dir / "metrics.json").read_text())
    assert stored == json.loads(json.dumps(result))
    assert stored["model"] == model and stored["epochs"] == 1 and stored["seed"] == 42
    assert {"train", "test"} <= set(stored["metrics"]) and 0 <= stored["metrics"]["test"]["acc"] <= 1
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    if cfg.data.validation:  # the recipes that validate keep the best checkpoint by val/acc
        assert "val" in stored["metrics"] and Path(stored["checkpoints"]["best"]).is_file()

    restored = ClassifierModule.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", map_location="cpu")
    assert restored.hparams.arch == model and restored.net.num_classes == len(restored.class_names)
    probabilities = restored.eval().predict_step((torch.zeros(2, *restored.net.input_shape), None), 0)
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(2))


def test_fast_dev_run_debug_config(data_dir: Path, tmp_path: Path):
    cfg = compose_train(tmp_path, "model=bn_cnn", "debug=fast_dev_run", "data.batch_size=4")
    train(cfg)


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnnzoo.train", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})},
    )


def test_cli_runs_and_puts_everything_under_the_run_dir(data_dir: Path, tmp_path: Path):
    run_dir = tmp_path / "cli-run"
    done = _cli("model=mnist_cnn_small", "trainer.max_epochs=1", f"hydra.run.dir={run_dir}")
    assert done.returncode == 0, done.stderr[-2000:]
    for path in ("metrics.json", "checkpoints/last.ckpt", ".hydra/config.yaml", "tensorboard"):
        assert (run_dir / path).exists(), path
    assert f"Run dir: {run_dir}" in done.stdout + done.stderr
    assert 'Model: "mnist_cnn_small"' in done.stdout + done.stderr  # the Keras-style summary at start


def test_cli_reports_missing_data_in_one_line(tmp_path: Path):
    done = _cli("model=asl_cnn", f"data.data_dir={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: Sign-Language-MNIST: sign_mnist_train.csv, sign_mnist_test.csv not found in")
    assert "Traceback" not in done.stderr


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("model", "data", "min_acc"),  # well above chance (10% / 10% / 4%) after one epoch
    [("mnist_mlp", "mnist", 0.9), ("fashion_mlp", "fashion_mnist", 0.75), ("fashion_mlp", "sign_mnist", 0.2)],
)
def test_one_real_epoch_of_a_small_model(tmp_path: Path, model: str, data: str, min_acc: float):
    root = real_data_dir()
    run_dir = tmp_path / "run"
    cfg = compose_train(
        run_dir, f"model={model}", f"data={data}", f"data.data_dir={root}", "data.batch_size=256",
        "trainer.max_epochs=1", "trainer.accelerator=cpu",
    )
    result = train(cfg)
    assert result["epochs"] == 1 and result["metrics"]["test"]["acc"] > min_acc
