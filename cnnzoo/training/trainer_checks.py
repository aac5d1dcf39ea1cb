"""The ``trainer.*`` values users type, checked before the Trainer is built.

Lightning reports a bad ``max_epochs``, ``devices`` or ``precision`` from deep inside its
constructor (or, for ``max_epochs``, by quietly not training); ``check_trainer`` says in one line
which value is wrong and what Lightning accepts.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any

from omegaconf import OmegaConf

from cnnzoo.errors import ConfigError


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


def check_trainer(trainer: Mapping[str, Any]) -> None:
    """``trainer.max_epochs``, ``trainer.devices`` and ``trainer.precision`` hold values Lightning takes."""
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
