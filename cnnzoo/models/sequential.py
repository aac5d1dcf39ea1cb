"""The one builder: a list of Keras layer specs + an input shape -> a PyTorch network.

Why this module exists: the model zoo, the Keras importer and any user-written architecture all
describe a network as Keras would (a ``Sequential`` list of :mod:`cnnzoo.models.layers` specs),
so they must share one place that chains the blocks, threads shapes and the flatten order
through them, names them as Keras does, and decides what the network returns.

The network returns **logits**: a trailing softmax (``Dense(n, activation="softmax")`` or
``Activation("softmax")``) is kept in the spec and in the summary but not applied in ``forward``;
cross-entropy on logits equals Keras' categorical cross-entropy on the softmax outputs.  The
activation left out is ``net.output_activation``, and ``net.keras_output(x)`` applies it, giving
what the Keras model itself returns.  The zoo allows only softmax or linear heads; the Keras
importer also lets a file's sigmoid/tanh/relu head through, so its models reproduce Keras exactly.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from cnnzoo.errors import ModelError
from cnnzoo.models.layers import ACTIVATIONS, KerasLayer, LayerSpec, Shape


class KerasSequential(nn.Sequential):
    """A chain of :class:`KerasLayer` blocks, children named as Keras names layers
    (``conv2d``, ``conv2d_1``, ``dense`` ...): maps an ``(N, C, H, W)`` float batch to
    ``(N, num_classes)`` logits (the scores before ``output_activation``)."""

    def __init__(self, layers: Sequence[KerasLayer], specs: Sequence[LayerSpec],
                 input_shape: Shape, name: str = "sequential", output_activation: str = "linear") -> None:
        super().__init__(OrderedDict((layer.name, layer) for layer in layers))
        self.specs = tuple(specs)
        self.input_shape = tuple(input_shape)
        self.num_classes = layers[-1].output_shape[0]
        self.name = name
        self.output_activation = output_activation

    def keras_output(self, x: torch.Tensor) -> torch.Tensor:
        """What the Keras model returns for ``x``: ``forward`` through the final activation it
        leaves out (probabilities for a softmax head)."""
        return ACTIVATIONS[self.output_activation](self(x))

    def __getitem__(self, idx):
        """``net[i]`` is a block; a slice (``net[:4]``, e.g. for feature maps) is a plain
        ``nn.Sequential`` of the same blocks, since it no longer ends in class scores."""
        if isinstance(idx, slice):
            return nn.Sequential(OrderedDict(list(self._modules.items())[idx]))
        return super().__getitem__(idx)

    def keras_weights(self) -> list[np.ndarray]:
        """All weights, as Keras' ``model.get_weights()`` lists them."""
        return [array for layer in self for array in layer.keras_weights()]

    def load_keras_weights(self, arrays: Iterable) -> None:
        """Take ``model.get_weights()`` of the equivalent Keras model."""
        arrays = list(arrays)
        expected = sum(layer.num_keras_weights for layer in self)
        if len(arrays) != expected:
            raise ModelError(f"{self.name} takes {expected} Keras weight arrays, got {len(arrays)}")
        start = 0
        for layer in self:
            layer.load_keras_weights(arrays[start:start + layer.num_keras_weights])
            start += layer.num_keras_weights


def _check_input_shape(input_shape) -> Shape:
    shape = tuple(input_shape)
    if len(shape) not in (1, 3) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
    ):
        raise ModelError(
            f"input shape must be (C, H, W) or (features,) of positive integers, got {input_shape!r}"
        )
    return shape


def build_sequential(specs: Iterable[LayerSpec], input_shape, name: str = "sequential",
                     output_activations: Sequence[str] = ("linear", "softmax")) -> KerasSequential:
    """Build ``specs`` (a Keras ``Sequential`` layer list) for per-sample ``input_shape``
    ``(C, H, W)``; the last layer must give flat ``(num_classes,)`` outputs through one of
    ``output_activations``, which ``forward`` leaves out."""
    specs = tuple(specs)
    if not specs:
        raise ModelError(f"model {name!r} has no layers")
    input_shape = _check_input_shape(input_shape)
    shape, order = input_shape, None
    layers, seen = [], Counter()
    for spec in specs:
        layer = spec.build(shape, order)
        base = layer.name
        layer.name = f"{base}_{seen[base]}" if seen[base] else base
        seen[base] += 1
        layers.append(layer)
        shape, order = layer.output_shape, layer.output_keras_order
    last = layers[-1]
    activation = getattr(last, "activation", "linear")
    if len(shape) != 1 or activation not in output_activations:
        raise ModelError(
            f"model {name!r} must end in flat class scores such as Dense(num_classes, "
            f"activation='softmax'); its last layer {last.spec} gives {shape}"
        )
    if activation != "linear":
        last.activation = "linear"  # logits; the loss (or keras_output) applies the activation
    return KerasSequential(layers, specs, input_shape, name, activation)
