"""Keras' weight layout, both ways: the one place that knows how Keras stores what cnnzoo computes.

Why this module exists: a cnnzoo network and its Keras twin compute the same numbers from weights
laid out differently, and every crossing (reading ``.h5``/``.keras`` files, writing them, the
equivalence tests) needs the same mapping.  It is derived from the layer list and its shapes:

* Conv2D kernels: torch's OIHW is Keras' HWIO (``permute(2, 3, 1, 0)``);
* Dense kernels: torch's ``(out, in)`` is Keras' ``(in, out)`` transposed;
* BatchNormalization: gamma, beta, moving mean, moving variance, in that order;
* the flatten order: Keras flattens an ``(H, W, C)`` map, cnnzoo an ``(C, H, W)`` one (the network
  never transposes in ``forward``), so one feature sits at different positions of the two flat
  vectors.  Walking the layer list, a Flatten of an image gives, for each of our flat positions,
  its Keras position; Dropout, Activation and BatchNormalization keep that order, and the next
  Dense takes it into its kernel rows (a flat BatchNormalization into its per-feature vectors).

``layer_weights(net)`` lists each layer's arrays as Keras' ``layer.get_weights()`` would, and
``load_layer_weights(net, arrays)`` takes them back; ``keras_weights``/``load_keras_weights`` are
the same for the whole model (``model.get_weights()``/``set_weights``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from cnnzoo.errors import ModelError
from cnnzoo.models.sequential import KerasSequential

Convert = Callable[[torch.Tensor], torch.Tensor]
#: One Keras weight: (our tensor, to Keras' layout, from Keras' layout).
Weight = tuple[torch.Tensor, Convert, Convert]
SHAPE_KEEPING = ("Dropout", "Activation", "BatchNormalization")


def _same(t: torch.Tensor) -> torch.Tensor:
    return t


def _feature_order(order: torch.Tensor | None) -> tuple[Convert, Convert]:
    """Converters of a per-feature axis (dim 0) between our flat order and Keras': ``order[i]`` is
    the Keras position of our feature ``i``."""
    if order is None:
        return _same, _same
    inverse = torch.argsort(order)
    return (lambda t: t[inverse]), (lambda k: k[order])


def _weights(kind: str, module: torch.nn.Module, order: torch.Tensor | None) -> list[Weight]:
    """A module's Keras weights, given the Keras order of its flat input features."""
    to_keras, from_keras = _feature_order(order)
    bias = [(module.bias, _same, _same)] if getattr(module, "bias", None) is not None else []
    if kind == "Conv2D":
        return [(module.weight, lambda w: w.permute(2, 3, 1, 0), lambda k: k.permute(3, 2, 0, 1)), *bias]
    if kind == "Dense":
        return [(module.weight, lambda w: to_keras(w.t()), lambda k: from_keras(k).t()), *bias]
    if kind == "BatchNormalization":
        return [(t, to_keras, from_keras) for t in (module.weight, module.bias, module.running_mean, module.running_var)]
    return []


def _layouts(net: KerasSequential) -> list[list[Weight]]:
    """Each layer's Keras weights, the flatten order threaded through the layer list."""
    layouts, order = [], None
    for spec, module, in_shape in zip(net.specs, net, net.shapes):
        layouts.append(_weights(spec.kind, module, order))
        if spec.kind == "Flatten" and len(in_shape) == 3:
            c, h, w = in_shape  # our flat position (c, h, w) holds Keras' flat position (h, w, c)
            order = torch.arange(h * w * c).reshape(h, w, c).permute(2, 0, 1).flatten()
        elif spec.kind not in SHAPE_KEEPING and spec.kind != "Flatten":
            order = None
    return layouts


def block_layout(kind: str, module: torch.nn.Module) -> list[Weight]:
    """The Keras weights of one module on its own (no Flatten before it)."""
    return _weights(kind, module, None)


def to_arrays(layout: Sequence[Weight]) -> list[np.ndarray]:
    return [to_keras(t.detach()).cpu().numpy().copy() for t, to_keras, _ in layout]


def load_arrays(layout: Sequence[Weight], arrays: Iterable, where: str) -> None:
    """Copy Keras-layout ``arrays`` into ``layout``'s tensors after checking their shapes."""
    arrays = [torch.as_tensor(np.asarray(a)) for a in arrays]
    expected = [tuple(to_keras(t).shape) for t, to_keras, _ in layout]
    got = [tuple(a.shape) for a in arrays]
    if got != expected:
        raise ModelError(f"{where} takes Keras weights of shapes {expected}, got {got}")
    with torch.no_grad():
        for (tensor, _, from_keras), array in zip(layout, arrays):
            tensor.copy_(from_keras(array.to(tensor.dtype)))


def layer_weights(net: KerasSequential) -> list[list[np.ndarray]]:
    """Each layer's weights as Keras' ``layer.get_weights()`` lists them."""
    return [to_arrays(layout) for layout in _layouts(net)]


def load_layer_weights(net: KerasSequential, per_layer: Sequence[Iterable]) -> None:
    """Take each layer's ``layer.get_weights()``; all shapes are checked before anything is copied."""
    layouts = _layouts(net)
    for name, spec, layout, arrays in zip(net.layer_names, net.specs, layouts, per_layer):
        expected = [tuple(to_keras(t).shape) for t, to_keras, _ in layout]
        got = [tuple(np.shape(a)) for a in arrays]
        if got != expected:
            raise ModelError(f"layer {name} ({spec.kind}) takes Keras weights of shapes {expected}, got {got}")
    for name, spec, layout, arrays in zip(net.layer_names, net.specs, layouts, per_layer):
        load_arrays(layout, arrays, f"layer {name} ({spec.kind})")


def keras_weights(net: KerasSequential) -> list[np.ndarray]:
    """All weights, as Keras' ``model.get_weights()`` lists them."""
    return [array for arrays in layer_weights(net) for array in arrays]


def load_keras_weights(net: KerasSequential, arrays: Iterable) -> None:
    """Take ``model.get_weights()`` of the equivalent Keras model."""
    arrays, counts = list(arrays), [len(layout) for layout in _layouts(net)]
    if len(arrays) != sum(counts):
        raise ModelError(f"{net.name} takes {sum(counts)} Keras weight arrays, got {len(arrays)}")
    starts = np.cumsum([0, *counts])
    load_layer_weights(net, [arrays[a:b] for a, b in zip(starts[:-1], starts[1:])])


def weighted_layers(net: KerasSequential) -> list[int]:
    """Indices of the layers that have Keras weights."""
    return [i for i, layout in enumerate(_layouts(net)) if layout]
