"""Training options beyond the notebooks: learning-rate schedules, label smoothing, channels_last,
and the ``experiment=<model>_best`` recipes that use them with the architecture unchanged."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from cnnzoo.errors import ConfigError
from cnnzoo.training.module import ClassifierModule
from cnnzoo.models import list_models
from cnnzoo.training.optim import create_optimizer, create_scheduler
from cnnzoo.train import train
from tests.conftest import CONF, compose_run

BEST = sorted(p.stem for p in (CONF / "experiment").glob("*_best.yaml"))


def _lrs(name: str, steps: int, **options) -> list[float]:
    optimizer = create_optimizer([torch.nn.Parameter(torch.zeros(1))], "adam", lr=0.001)
    scheduler = create_scheduler(optimizer, steps, name, **options)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_onecycle_rises_to_max_lr_then_anneals():
    lrs = _lrs("onecycle", 100, max_lr=0.01, pct_start=0.25)
    assert lrs[0] == pytest.approx(0.01 / 25) and max(lrs) == pytest.approx(0.01, rel=1e-3)
    assert lrs.index(max(lrs)) in (24, 25) and lrs[-1] < 1e-5


def test_onecycle_defaults_to_the_optimizer_rate_and_cosine_warms_up_then_decays():
    assert max(_lrs("onecycle", 40)) == pytest.approx(0.001, rel=1e-3)
    lrs = _lrs("cosine", 100, warmup=0.1)
    assert lrs[0] == pytest.approx(0.0001) and lrs[9] == pytest.approx(0.001)
    assert lrs[55] == pytest.approx(0.001 * 0.5 * (1 + math.cos(math.pi * 45 / 90))) and lrs[-1] < 1e-6


@pytest.mark.parametrize(("name", "options", "message"), [
    ("step", {}, r"model.scheduler.name='step': unknown schedule, expected one of cosine, onecycle"),
    ("cosine", {"gamma": 2}, r"model.scheduler \(cosine\): .*gamma"),
])
def test_bad_schedules_are_one_line_errors(name: str, options: dict, message: str):
    optimizer = create_optimizer([torch.nn.Parameter(torch.zeros(1))], "adam")
    with pytest.raises(ConfigError, match=message):
        create_scheduler(optimizer, 10, name, **options)


def test_label_smoothing_is_keras_smoothed_categorical_crossentropy():
    module = ClassifierModule("mnist_mlp", 10, [1, 28, 28], label_smoothing=0.1)
    logits, labels = torch.randn(6, 10, generator=torch.Generator().manual_seed(0)), torch.arange(6)
    # Keras: targets y * (1 - s) + s / classes, then categorical cross-entropy on the softmax.
    targets = F.one_hot(labels, 10).float() * 0.9 + 0.1 / 10
    keras_loss = -(targets * torch.log(torch.softmax(logits, dim=1))).sum(dim=1).mean()
    assert module.loss(logits, labels).item() == pytest.approx(keras_loss.item(), rel=1e-6)
    assert module.loss(logits, labels).item() > ClassifierModule("mnist_mlp", 10, [1, 28, 28]).loss(logits, labels).item() - 1
    with pytest.raises(ConfigError, match=r"model.label_smoothing=1.5: expected a number in \[0, 1\)"):
        ClassifierModule("mnist_mlp", 10, [1, 28, 28], label_smoothing=1.5)


@pytest.mark.parametrize("name", list_models())
def test_channels_last_changes_layout_not_results(name: str):
    torch.manual_seed(0)
    plain = ClassifierModule(name, 10, [1, 28, 28] if name != "bn_cnn" else [1, 64, 64]).eval()
    fast = ClassifierModule(name, 10, list(plain.net.input_shape), channels_last=True).eval()
    fast.load_state_dict(plain.state_dict())
    conv_weights = [p for p in fast.net.parameters() if p.ndim == 4]
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in conv_weights)
    images = torch.rand(5, *plain.net.input_shape)
    assert torch.allclose(fast(images), plain(images), atol=1e-5)


@pytest.mark.parametrize("experiment", BEST)
def test_best_recipes_keep_the_notebook_architecture(tmp_path: Path, experiment: str):
    model = experiment.removesuffix("_best")
    best = compose_run("train", tmp_path, f"experiment={experiment}")
    notebook = compose_run("train", tmp_path, f"model={model}")
    assert best.model.arch == notebook.model.arch == model
    assert best.data._target_ == notebook.data._target_ and best.data.validation == notebook.data.validation
    assert best.data.augment and best.model.scheduler and best.model.label_smoothing > 0
    if model == "asl_cnn":
        assert best.data.augment.hflip is False  # a mirrored hand is another sign
    assert OmegaConf.select(notebook, "model.scheduler") is None and notebook.data.augment is None


@pytest.mark.parametrize("experiment", BEST)
def test_best_recipes_train(data_dir: Path, tmp_path: Path, experiment: str):
    cfg = compose_run("train", tmp_path, f"experiment={experiment}", "trainer.max_epochs=2", "data.batch_size=16",
                      "+trainer.limit_train_batches=3")
    result = train(cfg)
    assert result["status"] == "completed" and result["epochs"] == 2
    assert result["metrics"]["train"]["lr"] < cfg.model.scheduler.max_lr / 5  # the schedule ran: annealed


def test_compile_keeps_checkpoint_keys_and_rejects_unknown_modes():
    plain, compiled = ClassifierModule("mnist_mlp", 10, [1, 28, 28]), ClassifierModule("mnist_mlp", 10, [1, 28, 28],
                                                                                       compile=True)
    assert list(compiled.state_dict()) == list(plain.state_dict())  # checkpoints load either way
    with pytest.raises(ConfigError, match=r"compile='fast': expected false, true or a torch.compile mode"):
        ClassifierModule("mnist_mlp", 10, [1, 28, 28], compile="fast")


@pytest.mark.slow
def test_compiled_training_matches_eager(data_dir: Path, tmp_path: Path):
    results = {}
    for flag in ("false", "true"):
        cfg = compose_run("train", tmp_path / flag, "model=mnist_mlp", f"compile={flag}", "trainer.max_epochs=1",
                          "+trainer.limit_train_batches=4", "test=false")
        results[flag] = train(cfg)["metrics"]["train"]
    assert results["true"]["loss"] == pytest.approx(results["false"]["loss"], rel=1e-4)
