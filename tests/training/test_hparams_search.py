"""``hparams_search=optuna_lr_batch``: an Optuna search through the hydra/sweeper=optuna plugin.

The search itself runs through the real CLI (a sweeper only runs under ``-m``), on the small
generated MNIST files of the ``data_dir`` fixture.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.conftest import compose_run, run_cli

SEARCH = "optuna_lr_batch"


def _require_optuna() -> None:
    """Optuna comes with the dev extra: skip without it, but fail under CI=true."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("optuna is not installed")
        pytest.skip("optuna is not installed")


def test_search_config_selects_the_optuna_sweeper(tmp_path: Path):
    cfg = compose_run("train", tmp_path, f"hparams_search={SEARCH}", "model=mnist_mlp")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.cnnzoo_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert sweeper.direction == "maximize" and sweeper.sampler.seed == cfg.seed
    assert set(sweeper.params) == {"optimizer.lr", "data.batch_size"}
    assert cfg.data.validation == 0.1  # mnist_mlp has no validation split of its own


def test_overrides_become_optuna_distributions():
    _require_optuna()
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from hydra_plugins.cnnzoo_optuna_sweeper._impl import search_space_from_overrides

    space, fixed = search_space_from_overrides([
        "optimizer.lr=tag(log, interval(1e-4, 1e-2))", "data.batch_size=choice(32, 64)",
        "trainer.max_epochs=range(1, 4)", "model=mnist_mlp", "~callbacks", "+trainer.limit_train_batches=2",
        "data.batch_size=16",  # a later fixed value takes the key out of the search space
    ])
    assert space == {
        "optimizer.lr": FloatDistribution(1e-4, 1e-2, log=True),
        "trainer.max_epochs": IntDistribution(1, 3),  # Hydra's range excludes its stop
    }
    # fixed overrides reach every job as written
    assert list(fixed.values()) == ["model=mnist_mlp", "~callbacks", "+trainer.limit_train_batches=2", "data.batch_size=16"]
    assert search_space_from_overrides(["x=choice(a, 'b c')"])[0] == {"x": CategoricalDistribution(["a", "b c"])}


@pytest.mark.slow
def test_optuna_search_maximizes_the_returned_validation_accuracy(data_dir: Path, tmp_path: Path):
    _require_optuna()
    sweep_dir = tmp_path / "sweep"
    done = run_cli(
        "train", "-m", f"hparams_search={SEARCH}", "model=mnist_mlp", "trainer.max_epochs=1", "trainer.accelerator=cpu",
        "hydra.sweeper.n_trials=3", "test=false", f"hydra.sweep.dir={sweep_dir}",
    )
    assert done.returncode == 0, done.stderr[-3000:]

    results = OmegaConf.to_container(OmegaConf.load(sweep_dir / "optimization_results.yaml"))
    assert results["name"] == "optuna" and set(results["best_params"]) == {"optimizer.lr", "data.batch_size"}
    assert 1e-4 <= results["best_params"]["optimizer.lr"] <= 1e-2
    assert results["best_params"]["data.batch_size"] in (32, 64, 128, 256)

    trials = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert [p.name for p in trials] == ["0", "1", "2"]
    val_acc = {}
    for trial in trials:
        metrics = json.loads((trial / "metrics.json").read_text())
        config = OmegaConf.load(trial / ".hydra" / "config.yaml")
        assert metrics["model"] == "mnist_mlp" and set(metrics["metrics"]) == {"train", "val"}
        val_acc[(config.optimizer.lr, config.data.batch_size)] = metrics["metrics"]["val"]["accuracy"]
    assert len({lr for lr, _ in val_acc}) == 3  # each trial got its own learning rate from Optuna
    # best_value is the highest validation accuracy, and best_params are its trial's
    assert results["best_value"] == pytest.approx(max(val_acc.values()))
    best = (results["best_params"]["optimizer.lr"], results["best_params"]["data.batch_size"])
    assert val_acc[best] == pytest.approx(results["best_value"])
