"""``cnnzoo.train``: configs compose for every model, and short runs write everything they promise."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnnzoo.training.callbacks import InputInspection
from cnnzoo.training.loggers import event_dir
from cnnzoo.data import SignMNISTDataModule

from cnnzoo.errors import ConfigError
from cnnzoo.training.module import ClassifierModule
from cnnzoo.models import list_models
from cnnzoo.train import train
from tests.conftest import CONF, compose_run, real_data_dir, run_cli



def compose_train(run_dir: Path, *overrides: str) -> DictConfig:
    return compose_run("train", run_dir, *overrides)


def test_every_registered_model_has_a_recipe_and_vice_versa():
    assert sorted(p.stem for p in (CONF / "model").glob("*.yaml")) == list_models()


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
    assert {"train", "test"} <= set(stored["metrics"])
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert event_dir(run_dir).parent == run_dir / "tensorboard" and event_dir(run_dir).name == f"{model} data={data} max_epochs=1 accelerator=cpu"
    if cfg.data.validation:  # the recipes that validate keep the best checkpoint by val/accuracy
        assert "val" in stored["metrics"] and Path(stored["checkpoints"]["best"]).is_file()

    restored = ClassifierModule.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", map_location="cpu")
    assert restored.hparams.arch == model and restored.net.num_classes == len(restored.class_names)
    # The reported test metrics are those of the final weights on the whole test split.
    datamodule = instantiate(cfg.data)
    datamodule.setup("test")
    images, labels = datamodule.splits["test"]
    with torch.no_grad():
        probabilities = restored.eval().predict_step((datamodule.preprocess(images), None), 0)
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(len(labels)))
    accuracy = (probabilities.argmax(dim=1) == labels).double().mean().item()
    assert stored["metrics"]["test"]["accuracy"] == pytest.approx(accuracy, abs=1e-6)


@pytest.mark.parametrize("name", list_models())
def test_fast_dev_run_of_every_recipe(data_dir: Path, tmp_path: Path, name: str):
    cfg = compose_train(tmp_path, f"model={name}", "debug=fast_dev_run", "data.batch_size=4")
    result = train(cfg)
    assert result["model"] == name and "train" in result["metrics"]


def test_model_sizes_given_in_config_must_match_the_data(data_dir: Path, tmp_path: Path):
    cfg = compose_train(tmp_path, "model=asl_cnn", "+model.num_classes=10", "debug=fast_dev_run")
    with pytest.raises(ConfigError, match=r"model.num_classes=10 but data Sign-Language-MNIST gives 24"):
        train(cfg)
    recorded = json.loads((tmp_path / "metrics.json").read_text())  # a run that fails says so in its dir
    assert (recorded["status"], recorded["model"]) == ("failed", "asl_cnn")
    assert recorded["error"].startswith("model.num_classes=10 but data Sign-Language-MNIST gives 24")


def test_resuming_a_checkpoint_of_another_model_is_a_clear_error(data_dir: Path, tmp_path: Path):
    first = compose_train(tmp_path / "a", "model=mnist_mlp", "trainer.max_epochs=1", "test=false")
    train(first)
    ckpt = tmp_path / "a" / "checkpoints" / "last.ckpt"
    second = compose_train(tmp_path / "b", "model=mnist_mlp", "data=sign_mnist", f"ckpt_path={ckpt}")
    with pytest.raises(ConfigError, match=r"checkpoint has num_classes=10 but this run's model has num_classes=24"):
        train(second)
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["status"] == "failed"
    finished = (tmp_path / "a" / "metrics.json").read_bytes()
    with pytest.raises(ConfigError, match=r"^ckpt_path=last: the config differs .* at data\._target_ "):  # a resume
        # that fails keeps the run's own results
        train(compose_train(tmp_path / "a", "model=mnist_mlp", "data=sign_mnist", "ckpt_path=last"))
    assert (tmp_path / "a" / "metrics.json").read_bytes() == finished


def test_every_n_epochs_draws_those_validations_too(data_dir: Path, tmp_path: Path):
    cfg = compose_train(tmp_path, "model=mnist_mlp", "data.validation=0.25", "trainer.max_epochs=3",
                        "callbacks.prediction_report.every_n_epochs=2", "callbacks.input_inspection=null")
    train(cfg)
    events = EventAccumulator(str(event_dir(tmp_path)), size_guidance={"images": 0})
    events.Reload()
    steps = {tag: [event.step for event in events.Images(tag)] for tag in ("val/confusion_matrix", "test/confusion_matrix")}
    per_epoch = steps["test/confusion_matrix"][0] // 3  # the 3 epochs' steps, the test at the end
    assert steps["val/confusion_matrix"] == [2 * per_epoch, 3 * per_epoch]  # epoch 2 (asked) and the last


def test_a_fit_that_fails_still_shows_its_last_validations_figures(data_dir: Path, tmp_path: Path, monkeypatch):
    import lightning as L

    from tests.conftest import inject_callback

    class FailInEpoch2(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.current_epoch == 1:
                raise RuntimeError("simulated failure in epoch 2")

    inject_callback(monkeypatch, FailInEpoch2())
    cfg = compose_train(tmp_path, "model=mnist_mlp", "data.validation=0.25", "trainer.max_epochs=2",
                        "callbacks.input_inspection=null")
    with pytest.raises(RuntimeError, match="simulated failure"):
        train(cfg)
    events = EventAccumulator(str(event_dir(tmp_path)), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    assert [event.step for event in events.Scalars("val/accuracy")] == [0]  # one validation, epoch 1's
    assert len(events.Images("val/confusion_matrix")) == 1  # its figures, drawn as the fit failed
    recorded = json.loads((tmp_path / "metrics.json").read_text())
    assert (recorded["status"], recorded["error"]) == ("failed", "simulated failure in epoch 2")


def test_tensorboard_holds_scalars_hparams_graph_and_figures(data_dir: Path, tmp_path: Path):
    cfg = compose_train(tmp_path, "model=mnist_cnn_small", "data.validation=0.25", "trainer.max_epochs=2")
    train(cfg)
    folder = event_dir(tmp_path)  # one run, named by the model and the overridden values
    assert folder == tmp_path / "tensorboard" / "mnist_cnn_small validation=0.25 max_epochs=2"
    events = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "train/accuracy", "val/loss", "val/accuracy", "test/accuracy", "train/lr"} <= set(tags["scalars"])
    assert not [tag for tag in tags["scalars"] if tag == "epoch" or tag.startswith(("final/", "hp_metric"))]
    for tag in ("val/accuracy", "train/loss", "train/lr"):  # one point per epoch, at x = the epoch
        assert [event.step for event in events.Scalars(tag)] == [0, 1], tag
    assert [event.step for event in events.Scalars("test/accuracy")] == [2]  # after the 2 epochs trained
    assert {"inputs/samples", "val/confusion_matrix", "val/misclassified", "test/confusion_matrix",
            "test/misclassified", "features/conv2d", "features/max_pooling2d"} <= set(tags["images"])
    test_step = [event.step for event in events.Images("test/confusion_matrix")]
    for tag in ("val/confusion_matrix", "val/misclassified"):  # the last validation's only: same weights as the test
        assert [event.step for event in events.Images(tag)] == test_step, tag
    assert tags["graph"]
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    graphs = [e for path in folder.glob("events.out.tfevents.*") for e in EventFileLoader(str(path)).Load()
              if e.HasField("graph_def")]
    assert len(graphs) == 1  # one graph per run: TensorBoard warns about a second one (fit and test each logged it)
    hparams = events.PluginTagToContent("hparams")
    assert "_hparams_/experiment" in hparams
    from tensorboard.plugins.hparams import plugin_data_pb2

    experiment = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/experiment"]).experiment
    assert {info.name.tag for info in experiment.metric_infos} == {"val/accuracy", "val/loss", "test/accuracy", "test/loss"}
    assert {"validation", "max_epochs", "model", "data", "optimizer", "lr", "batch_size", "seed"} == {
        info.name for info in experiment.hparam_infos}
    start = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["validation"].number_value == 0.25 and start.hparams["model"].string_value == "mnist_cnn_small"


@pytest.mark.slow
def test_cli_runs_and_puts_everything_under_the_run_dir(data_dir: Path, tmp_path: Path):
    run_dir = tmp_path / "cli-run"
    done = run_cli("train", "model=mnist_cnn_small", "trainer.max_epochs=1", f"hydra.run.dir={run_dir}")
    assert done.returncode == 0, done.stderr[-2000:]
    for path in ("metrics.json", "checkpoints/last.ckpt", ".hydra/config.yaml", "tensorboard"):
        assert (run_dir / path).exists(), path
    assert f"Run dir: {run_dir}" in done.stdout + done.stderr
    assert 'Model: "mnist_cnn_small"' in done.stdout + done.stderr  # the Keras-style summary at start


@pytest.mark.slow
def test_cli_reports_missing_data_in_one_line(tmp_path: Path):
    done = run_cli("train", "model=asl_cnn", f"data.data_dir={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: Sign-Language-MNIST: sign_mnist_train.csv, sign_mnist_test.csv not found in")
    assert "Traceback" not in done.stderr
    verbose = run_cli("train", "model=asl_cnn", f"data.data_dir={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}",
                      env={"HYDRA_FULL_ERROR": "1"})
    assert verbose.returncode != 0 and "Traceback" in verbose.stderr and "DataNotFoundError" in verbose.stderr


@pytest.mark.slow
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
    assert result["epochs"] == 1 and result["metrics"]["test"]["accuracy"] > min_acc


@pytest.mark.slow
def test_help_and_cfg_job_work_as_in_any_hydra_app(tmp_path: Path):
    shown = run_cli("train", "--help")
    assert shown.returncode == 0 and "model: asl_cnn, bn_cnn" in shown.stdout
    job = run_cli("train", "model=asl_cnn", "--cfg", "job")
    assert job.returncode == 0 and "arch: asl_cnn" in job.stdout and "SignMNISTDataModule" in job.stdout


def test_feature_maps_leave_batchnorm_statistics_alone(data_dir: Path, tmp_path: Path):
    module = ClassifierModule("asl_cnn", 24, [1, 28, 28]).train()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    trainer = SimpleNamespace(loggers=[TensorBoardLogger(tmp_path)], is_global_zero=True, global_step=0,
                              datamodule=SignMNISTDataModule())
    InputInspection().on_train_end(trainer, module)  # forwards a few test images through conv/BN/pool
    assert module.training and all(torch.equal(before[k], v) for k, v in module.state_dict().items())
