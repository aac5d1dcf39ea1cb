"""What a run shows: TensorBoard as a learner reads it (epoch x-axis, no ``epoch`` or ``final/*``
charts, runs named by what was changed), and the CSV and MLflow loggers as config options."""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from cnnzoo.train import train
from cnnzoo.training.loggers import overridden, run_name
from tests.conftest import compose_run

TINY = ("model=mnist_cnn_small", "data.validation=0.25", "data.batch_size=16", "trainer.max_epochs=3",
        "callbacks.input_inspection=null")


def test_run_names_say_the_model_and_the_overridden_values():
    assert run_name([], model="asl_cnn") == "asl_cnn"  # a plain recipe run
    assert run_name(["model=asl_cnn", "optimizer.lr=0.001"], model="asl_cnn") == "asl_cnn lr=0.001"
    overrides = ["model=fashion_cnn", "optimizer.lr=3e-4", "data.batch_size=32", "hydra.run.dir=/tmp/x",
                 "data.data_dir=/data", "ckpt_path=last", "keras_model=m.h5", "logger=csv", "~callbacks.history",
                 "+model.label_smoothing=0.1", "model.scheduler.name=cosine", "optimizer.name=sgd"]
    assert overridden(overrides) == {"lr": 0.0003, "batch_size": 32, "label_smoothing": 0.1,
                                     "model.scheduler.name": "cosine", "optimizer.name": "sgd"}
    assert run_name(overrides, model="fashion_cnn") == (
        "fashion_cnn lr=0.0003 batch_size=32 label_smoothing=0.1 model.scheduler.name=cosine optimizer.name=sgd")
    assert len(run_name([f"+x{i}=y" for i in range(200)], model="m")) == 200  # a directory name: kept short


def test_a_run_named_from_hydra_uses_the_recipe_and_its_overrides(tmp_path: Path):
    compose_run("train", tmp_path, "model=asl_cnn", "optimizer.lr=0.001")
    assert run_name() == "asl_cnn lr=0.001"
    compose_run("train", tmp_path, "model=asl_cnn")
    assert run_name() == "asl_cnn"
    compose_run("train", tmp_path, "keras_model=/models/my_net.h5", "data=mnist")
    assert run_name() == "my_net data=mnist"


def test_logger_csv_writes_the_keras_named_metrics_per_epoch(data_dir: Path, tmp_path: Path):
    result = train(compose_run("train", tmp_path, *TINY, "logger=csv"))
    rows = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").open()))
    for stage in ("train", "val"):
        by_epoch = {int(row["epoch"]): float(row[f"{stage}/accuracy"]) for row in rows if row[f"{stage}/accuracy"]}
        assert by_epoch == pytest.approx(dict(enumerate(result["history"][f"{'val_' if stage == 'val' else ''}accuracy"])))
    assert {"train/loss", "train/f1", "train/top5", "train/lr", "val/loss", "test/accuracy"} <= set(rows[0])
    hparams = yaml.safe_load((tmp_path / "csv" / "hparams.yaml").read_text())
    assert hparams["run"]["model"] == "mnist_cnn_small" and hparams["run"]["validation"] == 0.25
    assert not (tmp_path / "tensorboard").exists()


def test_logger_mlflow_writes_a_local_run_with_the_metrics_per_epoch(data_dir: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("mlflow", reason="the mlflow extra: pip install 'cnnzoo[mlflow]'")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")  # offline
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    result = train(compose_run("train", tmp_path, *TINY, "logger=mlflow"))
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"file:{tmp_path / 'mlruns'}")
    (run,) = client.search_runs([client.get_experiment_by_name("cnnzoo").experiment_id])
    assert run.info.run_name == "mnist_cnn_small validation=0.25 batch_size=16 max_epochs=3 input_inspection=null"
    history = client.get_metric_history(run.info.run_id, "val/accuracy")
    assert [(m.step, m.value) for m in history] == [(e, pytest.approx(v)) for e, v in
                                                    enumerate(result["history"]["val_accuracy"])]
    assert "epoch" not in run.data.metrics and {"train/loss", "test/accuracy"} <= set(run.data.metrics)
    assert run.data.params["run/model"] == "mnist_cnn_small" and run.data.params["run/lr"] == "0.001"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str, **query: str):
    url = f"http://127.0.0.1:{port}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_a_tensorboard_server_shows_epoch_charts_named_runs_and_images(data_dir: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    train(compose_run("train", run_dir, *TINY[:-1], "trainer.log_every_n_steps=1"))  # with the input samples
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(run_dir / "tensorboard"), "--host", "127.0.0.1",
         "--port", str(port), "--load_fast", "false", "--reload_interval", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline, scalar_tags, image_tags = time.monotonic() + 30, {}, {}
        while time.monotonic() < deadline and server.poll() is None:
            try:
                scalar_tags, image_tags = _get(port, "/data/plugin/scalars/tags"), _get(port, "/data/plugin/images/tags")
                if scalar_tags and image_tags and any("test/accuracy" in tags for tags in scalar_tags.values()):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        assert server.poll() is None, server.stderr.read()[-2000:] if server.stderr else ""
        runs = _get(port, "/data/runs")
        assert runs == ["mnist_cnn_small validation=0.25 batch_size=16 max_epochs=3 log_every_n_steps=1"]
        (run,) = runs
        tags = set(scalar_tags[run])
        assert {"train/loss", "train/accuracy", "train/f1", "train/top5", "train/lr", "train/loss_step",
                "val/loss", "val/accuracy", "test/loss", "test/accuracy"} <= tags
        assert "epoch" not in tags and not [tag for tag in tags if tag.startswith(("final/", "hp_metric"))]
        for tag in ("val/accuracy", "train/accuracy", "train/lr"):
            rows = _get(port, "/data/plugin/scalars/scalars", run=run, tag=tag)  # [wall_time, step, value]
            assert [step for _, step, _ in rows] == [0, 1, 2], tag
        steps = [step for _, step, _ in _get(port, "/data/plugin/scalars/scalars", run=run, tag="train/loss_step")]
        assert steps == list(range(len(steps))) and len(steps) == 3 * 5  # per step: the global step (72 / 16)
        assert {"inputs/samples", "val/confusion_matrix", "val/misclassified", "test/confusion_matrix",
                "features/conv2d"} <= set(image_tags[run])
    finally:
        server.terminate()
        server.wait(timeout=10)
