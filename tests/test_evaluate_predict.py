"""``cnnzoo.evaluate`` and ``cnnzoo.predict`` on a checkpoint trained here, and their clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnzoo.errors import ConfigError, DataError, ModelError
from cnnzoo.evaluate import evaluate
from cnnzoo.predict import predict
from cnnzoo.train import train
from cnnzoo.training.loggers import event_dir
from tests.conftest import compose_run, run_cli, write_idx_dataset, write_sign_dataset


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Generated data and a 1-epoch mnist_cnn_small checkpoint trained on it, shared by the module."""
    root = tmp_path_factory.mktemp("trained")
    data = root / "data"
    write_idx_dataset(data / "mnist", seed=1)
    write_sign_dataset(data / "sign_mnist", seed=3)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CNNZOO_DATA_DIR", str(data))
        patch.setenv("XDG_CACHE_HOME", str(root / "cache"))
        train(compose_run("train", root / "run", "model=mnist_cnn_small", "trainer.max_epochs=1", "test=false"))
    return {"data": data, "ckpt": root / "run" / "checkpoints" / "last.ckpt", "root": root}


@pytest.fixture(autouse=True)
def _data_env(trained: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNZOO_DATA_DIR", str(trained["data"]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(trained["root"] / "cache"))


def test_evaluate_writes_metrics_and_figures(trained: dict[str, Path], tmp_path: Path):
    result = evaluate(compose_run("evaluate", tmp_path, f"ckpt_path={trained['ckpt']}"))
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert stored == json.loads(json.dumps(result))
    assert stored["model"] == "mnist_cnn_small" and stored["data"] == "MNIST"
    assert {"loss", "accuracy", "f1", "top5"} <= set(stored["metrics"]["test"])
    matrix = np.array(stored["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 40  # the 40 generated test images
    wrong = round((1 - stored["metrics"]["test"]["accuracy"]) * 40)
    assert len(stored["misclassified"]) == min(24, wrong)
    for name in ("confusion_matrix.png", "misclassified.png"):
        assert Image.open(tmp_path / name).format == "PNG"
    assert list(event_dir(tmp_path).glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_evaluate_from_the_command_line_prints_the_metrics_table_and_no_third_party_noise(trained, tmp_path: Path):
    done = run_cli("evaluate", f"ckpt_path={trained['ckpt']}", f"hydra.run.dir={tmp_path}/run")
    assert done.returncode == 0, done.stderr[-2000:]
    accuracy = json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]["test"]["accuracy"]
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert lines[-2].split() == ["loss", "accuracy", "f1", "top5"]  # the table train prints, one row
    assert lines[-1].split()[:1] == ["test"] and float(lines[-1].split()[2]) == round(accuracy, 4)
    assert not [line for line in lines if "Tip:" in line or "Warning" in line or "available:" in line], lines


def test_evaluate_on_data_with_other_classes_is_a_clear_error(trained: dict[str, Path], tmp_path: Path):
    cfg = compose_run("evaluate", tmp_path, f"ckpt_path={trained['ckpt']}", "data=sign_mnist")
    with pytest.raises(ConfigError, match="model mnist_cnn_small has 10 classes but data Sign-Language-MNIST has 24"):
        evaluate(cfg)


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file"), (b"not a checkpoint", "not a readable PyTorch checkpoint"), ("dir", "a directory")],
)
def test_evaluate_rejects_what_is_not_a_checkpoint(tmp_path: Path, content, message: str):
    path = tmp_path / "model.ckpt"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError, match=message):
        evaluate(compose_run("evaluate", tmp_path / "run", f"ckpt_path={path}"))


def test_evaluate_rejects_a_checkpoint_that_is_not_cnnzoos(tmp_path: Path):
    import torch

    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"lr": 0.1}}, path)
    with pytest.raises(ModelError, match="not a cnnzoo checkpoint"):
        evaluate(compose_run("evaluate", tmp_path / "run", f"ckpt_path={path}"))


def test_predict_files_and_test_indices(trained: dict[str, Path], tmp_path: Path):
    colour = tmp_path / "colour.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(colour)
    digit = tmp_path / "digit.jpg"
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(digit)
    records = predict(compose_run("predict", tmp_path / "run", f"ckpt_path={trained['ckpt']}",
                                  f"inputs=[{colour},{digit}]", "index=[0,3]", "top_k=3"))
    stored = json.loads((tmp_path / "run" / "predictions.json").read_text())["predictions"]
    assert stored == json.loads(json.dumps(records)) and len(stored) == 4
    assert stored[0]["notes"] == ["converted RGB to grayscale", "resized 200x200 to 28x28"]
    assert stored[1]["notes"] == []
    labels = write_idx_dataset(tmp_path / "again", seed=1)["t10k"][1]  # same seed: the test labels
    assert [r["expected"] for r in stored[2:]] == [str(labels[0]), str(labels[3])]
    for record in stored:
        probabilities = [p["probability"] for p in record["top_k"]]
        assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)


def test_predict_takes_one_file_or_one_index_without_a_list(trained: dict[str, Path], tmp_path: Path):
    digit = tmp_path / "digit.png"
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(digit)
    records = predict(compose_run("predict", tmp_path / "run", f"ckpt_path={trained['ckpt']}", f"inputs={digit}",
                                  "index=3"))
    assert [r["input"] for r in records] == [str(digit), "MNIST test #3"]


@pytest.mark.slow
def test_predict_prints_a_table(trained: dict[str, Path], tmp_path: Path):
    done = run_cli("predict", f"ckpt_path={trained['ckpt']}", "index=[1]", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "MNIST test #1" in done.stdout and "top-k (probability)" in done.stdout


@pytest.mark.parametrize(
    ("override", "error", "message"),
    [
        ("inputs=[{tmp}]", DataError, "is a directory"),
        ("inputs=[{tmp}/notes.txt]", DataError, "not a readable PNG or JPEG image"),
        ("index=[40]", ConfigError, r"index=40: the MNIST test set has images 0..39"),
        ("index=[0] top_k=0", ConfigError, "top_k=0: expected a positive integer"),
        ("inputs=[]", ConfigError, "nothing to predict"),
    ],
)
def test_predict_errors(trained: dict[str, Path], tmp_path: Path, override: str, error: type, message: str):
    (tmp_path / "notes.txt").write_text("hello")
    cfg = compose_run("predict", tmp_path / "run", f"ckpt_path={trained['ckpt']}", *override.format(tmp=tmp_path).split())
    with pytest.raises(error, match=message):
        predict(cfg)
