"""``hydra/sweeper=optuna``: the config schema and the Sweeper class Hydra instantiates.

The schema follows the ``hydra-optuna-sweeper`` plugin's (``sampler``, ``direction``, ``n_trials``,
``n_jobs``, ``storage``, ``study_name``, ``max_failure_rate``, ``params`` in Hydra's sweep syntax),
so an ``hparams_search`` config written for that plugin runs unchanged, single-objective only.

No ``from __future__ import annotations`` here: Hydra's plugin scan runs this module before it is in
``sys.modules``, where ``@dataclass`` cannot resolve string annotations (and every run would fail).
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.cnnzoo_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    # The sampler is instantiated by the sweeper, after Optuna is imported (not by Hydra).
    _recursive_: bool = False
    # Any optuna.samplers.* class, e.g. {_target_: optuna.samplers.TPESampler, seed: 42}.
    sampler: Any = field(default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": None})
    direction: str = "minimize"  # or "maximize": what to do with the float each job returns
    n_trials: int = 20
    n_jobs: int = 1  # trials asked of Optuna, and handed to the launcher, at a time
    storage: Optional[str] = None  # e.g. sqlite:///optuna.db to keep (and resume) the study
    study_name: Optional[str] = None
    max_failure_rate: float = 0.0  # fraction of failed jobs in a batch tolerated before the sweep fails
    # {key: sweep}: choice(...) -> categorical, range(...) -> stepped int/float,
    # interval(a, b) -> float, tag(log, interval(a, b)) -> log-scale float; anything else is fixed.
    params: Optional[Dict[str, str]] = None


ConfigStore.instance().store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="cnnzoo")


class OptunaSweeper(Sweeper):
    """Thin front for :class:`._impl.OptunaSweeperImpl`, which needs Optuna."""

    def __init__(self, **settings: Any) -> None:
        """``settings`` are the fields of :class:`OptunaSweeperConf` (checked by the implementation)."""
        try:
            from ._impl import OptunaSweeperImpl
        except ModuleNotFoundError as e:
            if e.name != "optuna":
                raise
            raise ImportError("hydra/sweeper=optuna needs Optuna: pip install 'optuna>=4'") from e
        self.sweeper = OptunaSweeperImpl(**settings)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> None:
        return self.sweeper.sweep(arguments)
