"""Name -> architecture registry (in the style of torchvision's ``models/_api.py``).

Why this module exists: configs, entry points and tests refer to networks by name
(``model.name=asl_cnn``); the registry maps a name to its layer-spec function and to what the
notebook's code gives it (input shape, class count), and builds it with the shared builder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from cnnzoo.errors import ModelError
from cnnzoo.models.layers import LayerSpec, Shape
from cnnzoo.models.sequential import KerasSequential, build_sequential

SpecFn = Callable[[int], Sequence[LayerSpec]]


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """A registered architecture: ``specs_fn(num_classes)`` gives its Keras layer list."""

    name: str
    specs_fn: SpecFn
    input_shape: Shape  # the notebook's per-sample (C, H, W)
    num_classes: int  # the notebook's class count
    description: str


_MODELS: dict[str, ModelInfo] = {}


def register(*, input_shape: Shape, num_classes: int, name: str | None = None) -> Callable[[SpecFn], SpecFn]:
    """Decorator registering a ``specs(num_classes) -> [LayerSpec, ...]`` function under
    ``name`` (default: the function's name), with its notebook's input shape and class count."""

    def wrap(fn: SpecFn) -> SpecFn:
        key = name or fn.__name__
        if key in _MODELS:
            raise ModelError(f"model name {key!r} is already registered")
        description = next(iter((fn.__doc__ or "").strip().splitlines()), "")
        _MODELS[key] = ModelInfo(key, fn, tuple(input_shape), num_classes, description)
        return fn

    return wrap


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_MODELS)


def model_info(name: str) -> ModelInfo:
    """The registration record of ``name``; unknown names raise :class:`ModelError`."""
    try:
        return _MODELS[name]
    except (KeyError, TypeError):
        raise ModelError(f"unknown model {name!r}; valid names: {', '.join(list_models())}") from None


def default_input_shape(name: str) -> Shape:
    return model_info(name).input_shape


def default_num_classes(name: str) -> int:
    return model_info(name).num_classes


def specs(name: str, num_classes: int | None = None) -> tuple[LayerSpec, ...]:
    """The Keras layer list of ``name`` with ``num_classes`` outputs (default: the notebook's)."""
    info = model_info(name)
    return tuple(info.specs_fn(info.num_classes if num_classes is None else num_classes))


def create(name: str, num_classes: int | None = None, input_shape: Shape | None = None) -> KerasSequential:
    """Build ``name`` for ``input_shape`` ``(C, H, W)`` and ``num_classes`` (defaults: the
    notebook's), freshly initialised as Keras would."""
    shape = default_input_shape(name) if input_shape is None else input_shape
    return build_sequential(specs(name, num_classes), shape, name=name)
