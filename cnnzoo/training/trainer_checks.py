"""The values users type for a training run, checked before any work starts.

Lightning reports a bad ``max_epochs``, ``devices``, ``precision``, ``accelerator`` or
``limit_train_batches`` from deep inside its constructor (Hydra wraps it in a multi-line
instantiate error), and a ``log_every_n_steps`` or ``accumulate_grad_batches`` of 0 by dividing by
zero mid-run (or, for ``max_epochs``, by quietly not training); ``check_trainer`` says in one line
which value is wrong and what Lightning accepts.  ``check_run`` does the same for the rest of
``cnnzoo.train``'s config: a ``seed`` numpy cannot take, ``threads``, a true/false switch given
any other text (which Python would read as true), and a ``model.*`` key the model class does not take
(a ``TypeError`` from ``instantiate``).
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
import difflib
import inspect
from typing import Any

from omegaconf import OmegaConf

from cnnzoo import threads
from cnnzoo.data.config import check_data, check_switch
from cnnzoo.errors import ConfigError

MAX_SEED = 2**32 - 1  # numpy's (and so Lightning's seed_everything's) largest seed
SWITCHES = ("channels_last", "test", "verbose", "resume")
SET_BY_TRAIN = ("class_names", "data_config", "channels_last", "compile", "keras_model")  # build_module's own
LIMITS = ("limit_train_batches", "limit_val_batches", "limit_test_batches", "limit_predict_batches")


def _precisions() -> list[str]:
    """Every ``precision=`` value Lightning accepts, as text (its own ``Literal`` types, flattened)."""
    from lightning.fabric.connector import _PRECISION_INPUT

    values = [value for literal in typing.get_args(_PRECISION_INPUT) for value in typing.get_args(literal)]
    return list(dict.fromkeys(str(value) for value in values))  # 32 and "32" both mean 32-true


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _devices_ok(devices: object) -> bool:
    """Lightning's forms: ``auto``, a count (``-1``: all), a list of indices, or ``"0,1"`` / ``"2"``."""
    if devices == "auto" or (_is_int(devices) and (devices > 0 or devices == -1)):
        return True
    if isinstance(devices, (list, tuple)):
        return bool(devices) and all(_is_int(d) and d >= 0 for d in devices)
    if isinstance(devices, str):
        parts = [p.strip() for p in devices.strip().strip(",").split(",")]
        return all(p.lstrip("-").isdigit() for p in parts) and (len(parts) > 1 or int(parts[0]) > 0 or parts[0] == "-1")
    return False


def _limit_ok(value: object) -> bool:
    """Lightning's ``limit_*_batches``: a fraction in [0, 1] or a whole number of batches."""
    return (_is_int(value) and value >= 0) or (isinstance(value, float) and 0 <= value <= 1)


def _accelerator_problem(accelerator: object) -> str | None:
    """Why Lightning cannot run on ``accelerator`` here (None: it can, or it is not a name)."""
    from lightning.pytorch.accelerators import AcceleratorRegistry

    names = ["auto", *sorted({"gpu", *AcceleratorRegistry.available_accelerators()})]
    if accelerator not in names:
        return f"expected one of {', '.join(names)}"
    if accelerator == "auto":
        return None
    candidates = ("cuda", "mps") if accelerator == "gpu" else (accelerator,)
    if any(AcceleratorRegistry[name]["accelerator"].is_available() for name in candidates):
        return None
    device = "CUDA" if accelerator == "gpu" else str(accelerator).upper()
    return f"no {device} device is available; trainer=cpu runs here"


def check_trainer(trainer: Mapping[str, Any]) -> None:
    """``trainer.max_epochs``, ``devices``, ``precision``, ``accelerator``, ``log_every_n_steps``,
    ``accumulate_grad_batches`` and ``limit_*_batches`` hold values Lightning takes."""
    if OmegaConf.is_config(trainer):
        trainer = OmegaConf.to_container(trainer, resolve=False)
    max_epochs = trainer.get("max_epochs")
    if max_epochs is not None and not (_is_int(max_epochs) and (max_epochs > 0 or max_epochs == -1)):
        raise ConfigError(f"trainer.max_epochs={max_epochs!r}: expected a positive integer (or -1: no limit)")
    devices = trainer.get("devices")
    if devices is not None and not _devices_ok(devices):
        raise ConfigError(f"trainer.devices={devices!r}: expected auto, a positive count, -1 (all), "
                          "a list of device indices like [0,1] or a string like '0,1'")
    precision = trainer.get("precision")
    if precision is not None and (isinstance(precision, (bool, float)) or str(precision) not in _precisions()):
        raise ConfigError(f"trainer.precision={precision!r}: expected one of {', '.join(_precisions())}")
    accelerator = trainer.get("accelerator")
    problem = _accelerator_problem(accelerator) if not isinstance(accelerator, Mapping) else None
    if accelerator is not None and problem:
        raise ConfigError(f"trainer.accelerator={accelerator!r}: {problem}")
    for key in ("log_every_n_steps", "accumulate_grad_batches"):
        value = trainer.get(key)
        if value is not None and not (_is_int(value) and value > 0):
            raise ConfigError(f"trainer.{key}={value!r}: expected a positive integer")
    for key in LIMITS:
        value = trainer.get(key)
        if value is not None and not _limit_ok(value):
            raise ConfigError(f"trainer.{key}={value!r}: expected a fraction in [0, 1] or a whole number of batches")


def _check_model_keys(model: Mapping[str, Any]) -> None:
    """Every ``model.*`` key is a parameter of the model class (``model._target_``)."""
    from hydra.utils import get_class

    parameters = inspect.signature(get_class(model["_target_"])).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    takes = [name for name in parameters if name not in SET_BY_TRAIN]
    for key in model:
        if key != "_target_" and key not in takes:
            close = difflib.get_close_matches(str(key), takes, n=1)
            hint = f"; did you mean model.{close[0]}?" if close else ""
            raise ConfigError(f"unknown key model.{key}: the model takes {', '.join(takes)}{hint}")


def check_run(cfg: Mapping[str, Any]) -> None:
    """``seed``, ``threads``, the true/false switches, ``data.*`` and the ``model.*`` keys of a
    ``cnnzoo.train`` config."""
    seed = cfg.get("seed")
    if not (_is_int(seed) and 0 <= seed <= MAX_SEED):
        raise ConfigError(f"seed={seed!r}: expected an integer in [0, {MAX_SEED}]")
    threads.check(cfg.get("threads"))
    for key in SWITCHES:
        check_switch(cfg.get(key, False), key)
    check_data(cfg.data)
    _check_model_keys(cfg.model)
