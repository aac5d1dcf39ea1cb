"""The Optuna search loop: ask Optuna for trials, launch them as Hydra jobs, tell it their results."""

from __future__ import annotations

import logging
import math
import numbers
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep, Transformer
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

log = logging.getLogger(__name__)

DIRECTIONS = ("minimize", "maximize")


def distribution_from_override(override: Override) -> BaseDistribution:
    """Optuna's distribution for one sweep override (``choice``, ``range`` or ``interval``)."""
    value = override.value()
    if override.is_choice_sweep() or (override.is_range_sweep() and value.shuffle):
        # Encoded, so that "key=<choice>" is a valid override again.
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if override.is_range_sweep():
        assert isinstance(value, RangeSweep)
        values = list(override.sweep_iterator())  # Hydra's range excludes stop, Optuna's high is included
        if not values:
            raise ValueError(f"{override.input_line}: empty range")
        if all(isinstance(v, int) for v in (value.start, value.stop, value.step)):
            return IntDistribution(int(values[0]), int(values[-1]), step=int(value.step))
        return FloatDistribution(float(values[0]), float(values[-1]), step=float(value.step))
    if override.is_interval_sweep():
        assert isinstance(value, IntervalSweep)
        return FloatDistribution(float(value.start), float(value.end), log="log" in value.tags)
    raise NotImplementedError(f"{override.input_line}: not a sweep the Optuna sweeper supports")


def search_space_from_overrides(arguments: Sequence[str]) -> Tuple[Dict[str, BaseDistribution], Dict[str, str]]:
    """Split overrides into Optuna distributions and fixed overrides, both by key (later ones win).

    A fixed override is passed on to every job as it was written (``~logger`` stays ``~logger``).
    """
    distributions: Dict[str, BaseDistribution] = {}
    fixed: Dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(list(arguments)):
        key = override.get_key_element()
        distributions.pop(key, None)
        fixed.pop(key, None)
        if override.is_sweep_override():
            distributions[key] = distribution_from_override(override)
        else:
            fixed[key] = override.input_line or f"{key}={override.get_value_element_as_str()}"
    return distributions, fixed


class OptunaSweeperImpl(Sweeper):
    def __init__(
        self,
        sampler: Any,
        direction: str,
        n_trials: int,
        n_jobs: int,
        storage: Optional[str],
        study_name: Optional[str],
        max_failure_rate: float,
        params: Optional[DictConfig],
    ) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"hydra.sweeper.direction must be one of {DIRECTIONS}, got {direction!r}")
        if n_trials < 1 or n_jobs < 1:
            raise ValueError("hydra.sweeper.n_trials and hydra.sweeper.n_jobs must be at least 1")
        if not 0.0 <= max_failure_rate <= 1.0:
            raise ValueError("hydra.sweeper.max_failure_rate must be in [0, 1]")
        self.sampler_config = sampler
        self.direction = direction
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.storage = storage
        self.study_name = study_name
        self.max_failure_rate = max_failure_rate
        self.params = params
        self.config: Optional[DictConfig] = None
        self.launcher: Any = None
        self.job_idx = 0

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )
        self.job_idx = 0

    def _sampler(self, seed_offset: int = 0) -> Optional[optuna.samplers.BaseSampler]:
        if self.sampler_config is None or isinstance(self.sampler_config, optuna.samplers.BaseSampler):
            return self.sampler_config
        seed = self.sampler_config.get("seed")
        if seed_offset and seed is not None:
            return instantiate(self.sampler_config, seed=int(seed) + seed_offset)
        return instantiate(self.sampler_config)

    def sweep(self, arguments: List[str]) -> None:
        assert self.config is not None and self.launcher is not None
        configured = [f"{key}={value}" for key, value in (self.params or {}).items()]
        distributions, fixed = search_space_from_overrides([*configured, *arguments])
        if not distributions:
            raise ValueError("the Optuna sweeper has nothing to search: set hydra.sweeper.params")

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")  # as Hydra's basic sweeper does

        sampler = self._sampler()
        study = optuna.create_study(
            study_name=self.study_name,
            storage=self.storage,
            sampler=sampler,
            direction=self.direction,
            load_if_exists=True,
        )
        resume = bool(OmegaConf.select(self.config, "resume", default=False))
        stale = [t for t in study.trials if t.state == TrialState.RUNNING] if resume else []
        if resume and study.trials:
            # A new process would draw the earlier sweep's first trials again from the same seed.
            study.sampler = self._sampler(seed_offset=len(study.trials))
        log.info(f"Study name: {study.study_name}")
        log.info(f"Storage: {self.storage}")
        log.info(f"Sampler: {type(study.sampler).__name__}")
        log.info(f"Direction: {self.direction}")
        log.info("Search space: " + ", ".join(f"{k}: {d}" for k, d in distributions.items()))

        # resume=true: n_trials is the study's total; the trials a stopped sweep left running are
        # run again first (same params, same job dir: the job resumes from its last.ckpt).
        finished = sum(t.state != TrialState.RUNNING for t in study.trials) if resume else 0
        if stale:
            log.info(f"Resuming trials {[t.number for t in stale]}, {finished} finished")
        remaining = self.n_trials - finished
        while remaining > 0:
            batch = min(self.n_jobs, remaining)
            trials = [optuna.trial.Trial(study, t._trial_id) for t in stale[:batch]]
            stale = stale[batch:]
            trials += [study.ask(distributions) for _ in range(batch - len(trials))]
            # In the search space's order: a resumed trial's overrides match its job.json's (resume.job_subdir).
            overrides = [(*(f"{key}={trial.params[key]}" for key in distributions), *fixed.values()) for trial in trials]
            # Job dirs are trial numbers: a continued study's jobs never reuse an earlier trial's dir.
            returns = self.launcher.launch(overrides, initial_job_idx=trials[0].number)
            self.job_idx += len(returns)
            failures = 0
            for trial, ret in zip(trials, returns):
                try:
                    value = ret.return_value  # re-raises the job's exception
                    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
                        raise ValueError(f"the task must return a float to optimize, it returned {value!r}")
                    study.tell(trial, float(value))
                    log.info(f"Trial {trial.number} returned {value} with {trial.params}")
                except Exception as e:
                    failures += 1
                    study.tell(trial, state=TrialState.FAIL)
                    log.warning(f"Trial {trial.number} failed: {e}")
            if failures / len(returns) > self.max_failure_rate:
                log.error(f"{failures} of {len(returns)} jobs failed (max_failure_rate={self.max_failure_rate})")
                for ret in returns:
                    ret.return_value  # raises the first failure, with its traceback
                raise RuntimeError("the Optuna sweep failed")  # a non-float return value
            remaining -= len(returns)

        if not any(t.state == TrialState.COMPLETE for t in study.trials):
            raise RuntimeError("no Optuna trial completed")
        best = study.best_trial
        log.info(f"Best parameters: {best.params}")
        log.info(f"Best value: {best.value}")
        OmegaConf.save(
            OmegaConf.create({"name": "optuna", "best_params": best.params, "best_value": best.value}),
            sweep_dir / "optimization_results.yaml",
        )
