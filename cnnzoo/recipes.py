"""The training recipes in ``conf/``, as data that scripts, tests and README's tables read.

Why this module exists: a notebook's recipe (data and split, optimizer, batch size, epochs, the
accuracy the notebook reported) has one home, ``conf/model/<name>.yaml``, and a "beat it" recipe
one more, ``conf/experiment/<name>.yaml`` (with the accuracy it must reach).  Everything else that
needs those facts (the benchmark, the reproduction script, the tests, README's tables) composes
the config here, exactly as ``python -m cnnzoo.train model=<name>`` does, instead of restating it.
"""

from __future__ import annotations

import dataclasses
from functools import cached_property
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

CONF = Path(__file__).resolve().parents[1] / "conf"


def compose_train_config(*overrides: str) -> DictConfig:
    """The config ``python -m cnnzoo.train <overrides>`` runs with (without Hydra's own node)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONF), version_base="1.3", job_name="train"):
        return compose("train", overrides=list(overrides))


def model_recipes() -> list[str]:
    """The notebook recipes: ``model=<name>``."""
    return sorted(p.stem for p in (CONF / "model").glob("*.yaml"))


def experiment_recipes() -> list[str]:
    """The other recipes: ``experiment=<name>`` (the ``_best`` ones train a notebook's network better)."""
    return sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One recipe as composed from ``conf/``: ``recipe("asl_cnn")`` or ``recipe("asl_cnn_best")``."""

    name: str
    overrides: tuple[str, ...]  # what selects it on the command line

    @cached_property
    def config(self) -> DictConfig:
        return compose_train_config(*self.overrides)

    def _plain(self, key: str) -> Any:
        value = OmegaConf.select(self.config, key)
        return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value

    @property
    def arch(self) -> str:
        return self.config.model.arch

    @property
    def batch_size(self) -> int:
        return self.config.data.batch_size

    @property
    def epochs(self) -> int:
        return self.config.trainer.max_epochs

    @property
    def optimizer(self) -> dict[str, Any]:
        return self._plain("optimizer")

    @property
    def split(self) -> str:
        """The split whose final accuracy the recipe is judged on (``val`` or ``test``)."""
        return (self._plain("target") or self._plain("notebook"))["split"]

    @property
    def notebook_accuracy(self) -> float | None:
        return self._plain("notebook.accuracy")

    @property
    def target_accuracy(self) -> float | None:
        """An experiment's goal, ``None`` for a notebook recipe."""
        return self._plain("target.accuracy")

    @property
    def source(self) -> str:
        return self._plain("notebook.source")

    def datamodule(self):
        """The recipe's DataModule (nothing is read from disk until it is set up)."""
        from hydra.utils import instantiate

        return instantiate(self.config.data)

    def module(self):
        """The ``ClassifierModule`` ``cnnzoo.train`` builds for this recipe (untrained): sized from its
        data, with its optimizer, label smoothing, schedule, class names and data config."""
        from cnnzoo.train import build_module  # the one place the training config becomes a module

        return build_module(self.config, self.datamodule())

    def network(self):
        """The network as the recipe trains it: sized from its data, as ``cnnzoo.train`` sizes it."""
        from cnnzoo.models import create

        datamodule = self.datamodule()
        return create(self.arch, num_classes=datamodule.num_classes, input_shape=datamodule.input_shape)


def recipe(name: str) -> Recipe:
    """``model=<name>`` if ``conf/model/<name>.yaml`` exists, else ``experiment=<name>``."""
    if name in model_recipes():
        return Recipe(name, (f"model={name}",))
    if name in experiment_recipes():
        return Recipe(name, (f"experiment={name}",))
    from cnnzoo.errors import ConfigError

    raise ConfigError(f"unknown recipe {name!r}; expected one of {', '.join(model_recipes() + experiment_recipes())}")


def recipes() -> list[Recipe]:
    """Every recipe: the notebooks' first, then the experiments."""
    return [recipe(name) for name in model_recipes() + experiment_recipes()]
