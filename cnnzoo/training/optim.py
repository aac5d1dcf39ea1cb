"""Optimizers by Keras name with Keras' defaults and Keras' update rules; learning-rate schedules.

The notebooks compile with ``optimizer='adam'`` or no optimizer at all (Keras then uses RMSprop).
PyTorch's RMSprop and Adam differ from Keras in where epsilon enters:

* Keras/TF RMSprop divides by ``sqrt(v + eps)``; torch by ``sqrt(v) + eps``.  With eps = 1e-7 that
  is a floor of 3e-4 vs 1e-7 on the denominator: steps differ by orders of magnitude wherever
  gradients are small, so cnnzoo ships ``KerasRMSprop``.
* Keras Adam uses the "epsilon hat" form ``lr_t * m / (sqrt(v) + eps)``; torch adds eps after the
  bias correction of ``v``.  ``KerasAdam`` follows Keras.

SGD (with or without momentum/Nesterov) has the same trajectory in both for a constant learning
rate, so torch's own is used.  Config fields keep Keras' names (``rho``, ``epsilon``, ``beta_1``...)
apart from ``lr`` (Keras' ``learning_rate``).

The notebooks train at a constant learning rate.  The "beat it" recipes step a schedule every
batch: ``onecycle`` (torch's OneCycleLR) or ``cosine`` (linear warm-up, then cosine decay to 0).
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from cnnzoo.errors import ConfigError


DEFAULT_OPTIMIZER = {"name": "rmsprop"}  # Keras' compile() default


class _KerasOptimizer(torch.optim.Optimizer):
    """Shared step loop: per param group, the params with gradients go to ``_update``."""

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001 - torch's signature
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._update(group, params, [p.grad for p in params])
        return loss

    def _update(self, group: dict, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        raise NotImplementedError

    def _state(self, p: torch.Tensor, key: str) -> torch.Tensor:
        state = self.state[p]
        if key not in state:
            state[key] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state[key]


class KerasRMSprop(_KerasOptimizer):
    """Keras 3 / tf.keras RMSprop: ``v = rho v + (1-rho) g^2``; ``p -= lr g / sqrt(v + eps)``."""

    def __init__(self, params: Iterable, lr: float = 1e-3, rho: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-7):
        super().__init__(params, {"lr": lr, "rho": rho, "momentum": momentum, "epsilon": epsilon})

    def _update(self, group: dict, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        velocities = [self._state(p, "velocity") for p in params]
        torch._foreach_mul_(velocities, group["rho"])
        torch._foreach_addcmul_(velocities, grads, grads, value=1 - group["rho"])
        denominators = torch._foreach_add(velocities, group["epsilon"])
        torch._foreach_sqrt_(denominators)  # in place: one temporary per step, not three
        if group["momentum"] > 0:
            momenta = [self._state(p, "momentum") for p in params]
            torch._foreach_mul_(momenta, group["momentum"])
            torch._foreach_addcdiv_(momenta, grads, denominators, value=group["lr"])
            torch._foreach_sub_(params, momenta)
        else:
            torch._foreach_addcdiv_(params, grads, denominators, value=-group["lr"])


class KerasAdam(_KerasOptimizer):
    """Keras 3 / tf.keras Adam: ``p -= lr sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)``."""

    def __init__(
        self, params: Iterable, lr: float = 1e-3, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7
    ):
        super().__init__(params, {"lr": lr, "beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon, "step": 0})

    def _update(self, group: dict, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        group["step"] += 1
        b1, b2, t = group["beta_1"], group["beta_2"], group["step"]
        alpha = group["lr"] * (1 - b2**t) ** 0.5 / (1 - b1**t)
        ms = [self._state(p, "m") for p in params]
        vs = [self._state(p, "v") for p in params]
        torch._foreach_lerp_(ms, grads, 1 - b1)
        torch._foreach_mul_(vs, b2)
        torch._foreach_addcmul_(vs, grads, grads, value=1 - b2)
        denominators = torch._foreach_sqrt(vs)
        torch._foreach_add_(denominators, group["epsilon"])
        torch._foreach_addcdiv_(params, ms, denominators, value=-alpha)


def _sgd(params: Iterable, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False) -> torch.optim.SGD:
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov)


OPTIMIZERS = {"rmsprop": KerasRMSprop, "adam": KerasAdam, "sgd": _sgd}


def _known(name: object, table: dict[str, Callable], field: str, kind: str) -> Callable:
    if not isinstance(name, str) or name not in table:
        raise ConfigError(f"{field}={name!r}: unknown {kind}, expected one of {', '.join(sorted(table))}")
    return table[name]


def create_optimizer(params: Iterable, name: str, **options: Any) -> torch.optim.Optimizer:
    """The Keras optimizer called ``name`` with Keras' defaults, overridden by ``options``."""
    _known(name, OPTIMIZERS, "optimizer.name", "optimizer")
    try:
        return OPTIMIZERS[name](params, **options)
    except TypeError as e:
        raise ConfigError(f"optimizer ({name}): {e}") from None


def _onecycle(optimizer: torch.optim.Optimizer, total_steps: int, max_lr: float | None = None,
              pct_start: float = 0.25, div_factor: float = 25.0, final_div_factor: float = 1e4):
    """OneCycleLR peaking at ``max_lr`` (default: the optimizer's ``lr``); momentum is not cycled,
    since the Keras optimizers keep theirs under Keras' names."""
    max_lr = max_lr if max_lr is not None else optimizer.param_groups[0]["lr"]
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=pct_start,
                                               div_factor=div_factor, final_div_factor=final_div_factor,
                                               cycle_momentum=False)


def _cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup: float = 0.0):
    """Linear warm-up over the first ``warmup`` fraction of the steps, then cosine decay to 0."""
    warmup_steps = int(warmup * total_steps)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


SCHEDULERS = {"onecycle": _onecycle, "cosine": _cosine}


def create_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, name: str, **options: Any):
    """The per-step schedule called ``name`` over ``total_steps`` optimizer steps."""
    _known(name, SCHEDULERS, "model.scheduler.name", "schedule")
    try:
        return SCHEDULERS[name](optimizer, total_steps, **options)
    except TypeError as e:
        raise ConfigError(f"model.scheduler ({name}): {e}") from None


# ----------------------------------------------------------------------------- checks before training

def _number(value: object) -> float | None:
    """``value`` as a finite float, or None when it is not a (finite, non-bool) number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


# field -> (test, what is expected); a field without a rule only has to be a known option.
_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "lr": (lambda v: v > 0, "a finite number > 0"),
    "beta_1": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "beta_2": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "rho": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "momentum": (lambda v: v >= 0, "a finite number >= 0"),
    "epsilon": (lambda v: v > 0, "a finite number > 0"),
    "max_lr": (lambda v: v > 0, "a finite number > 0"),
    "pct_start": (lambda v: 0 < v < 1, "a number in (0, 1)"),
    "div_factor": (lambda v: v > 0, "a finite number > 0"),
    "final_div_factor": (lambda v: v > 0, "a finite number > 0"),
    "warmup": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
}


def _check_fields(prefix: str, name: str, factory: Callable, options: dict[str, Any], skip: int) -> None:
    """Each of ``options`` is a parameter of ``factory`` (after its first ``skip``) with a valid value."""
    known = list(inspect.signature(factory).parameters)[skip:]
    for key, value in options.items():
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {prefix}.{close[0]}?" if close else ""
            raise ConfigError(f"unknown key {prefix}.{key}: {name} takes {', '.join(known)}{hint}")
        if value is None and key == "max_lr":
            continue  # onecycle: peak at the optimizer's lr
        if key == "nesterov":
            if not isinstance(value, bool):
                raise ConfigError(f"{prefix}.nesterov={value!r}: expected true or false")
            continue
        test, expected = _RULES[key]
        number = _number(value)
        if number is None or not test(number):
            raise ConfigError(f"{prefix}.{key}={value!r}: expected {expected}")


def check_optimizer(options: dict[str, Any]) -> None:
    """``model.optimizer`` names a known optimizer and gives it only valid options (before any training)."""
    options = dict(options)
    name = options.pop("name", None)
    factory = _known(name, OPTIMIZERS, "optimizer.name", "optimizer")
    _check_fields("optimizer", name, factory, options, skip=1)
    if options.get("nesterov") and not options.get("momentum"):
        raise ConfigError("optimizer.nesterov=true: Nesterov momentum needs optimizer.momentum > 0")


def check_scheduler(options: dict[str, Any] | None) -> None:
    """``model.scheduler`` (if any) names a known schedule and gives it only valid options."""
    if not options:
        return
    options = dict(options)
    name = options.pop("name", None)
    factory = _known(name, SCHEDULERS, "model.scheduler.name", "schedule")
    _check_fields("model.scheduler", name, factory, options, skip=2)
