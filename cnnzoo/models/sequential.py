"""The one builder: a list of Keras layer specs + an input shape -> a PyTorch network.

Why this module exists: the model zoo, the Keras importer, the Python API and any user-written
architecture all describe a network as Keras would (a ``Sequential`` list of
:mod:`cnnzoo.models.layers` specs), so they share one place that builds the modules, threads the
static shapes through them, names them as Keras names layers, and decides what the network returns.

The network returns **logits**: a trailing softmax (``Dense(n, activation="softmax")`` or
``Activation("softmax")``) is kept in the spec and in the summary but not applied in ``forward``;
cross-entropy on logits equals Keras' categorical cross-entropy on the softmax outputs.  The
activation left out is ``net.output_activation``, and ``net.keras_output(x)`` applies it, giving
what the Keras model itself returns: it is the one place cnnzoo turns logits into probabilities.
The zoo allows only softmax or linear heads; the Keras importer also lets a file's
sigmoid/tanh/relu head through, so its models reproduce Keras exactly.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from cnnzoo.errors import ModelError
from cnnzoo.models.layers import ACTIVATIONS, LayerSpec, Shape, keras_names


class KerasSequential(nn.Sequential):
    """The modules of a spec list, named as Keras names layers (``conv2d``, ``conv2d_1``, ``dense``
    ...): maps an ``(N, C, H, W)`` float batch to ``(N, num_classes)`` logits.  ``specs[i]``
    describes ``self[i]``, whose per-sample input and output shapes are ``shapes[i]`` and
    ``shapes[i + 1]``."""

    def __init__(self, modules: Sequence[nn.Module], specs: Sequence[LayerSpec], shapes: Sequence[Shape],
                 name: str = "sequential", output_activation: str = "linear") -> None:
        super().__init__(OrderedDict(zip(keras_names(spec.kind for spec in specs), modules)))
        self.specs = tuple(specs)
        self.shapes = tuple(shapes)
        self.name = name
        self.output_activation = output_activation

    @property
    def input_shape(self) -> Shape:
        return self.shapes[0]

    @property
    def num_classes(self) -> int:
        return self.shapes[-1][0]

    @property
    def layer_names(self) -> list[str]:
        return list(self._modules)

    def keras_output(self, x: torch.Tensor) -> torch.Tensor:
        """What the Keras model returns for ``x``: ``forward`` through the final activation it
        leaves out (probabilities for a softmax head)."""
        return ACTIVATIONS[self.output_activation](self(x))

    def __getitem__(self, idx):
        """``net[i]`` is a module; a slice (``net[:4]``, e.g. for feature maps) is a plain
        ``nn.Sequential`` of the same modules, since it no longer ends in class scores."""
        if isinstance(idx, slice):
            return nn.Sequential(OrderedDict(list(self._modules.items())[idx]))
        return super().__getitem__(idx)


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
    shapes = [_check_input_shape(input_shape)]
    modules = []
    for spec in specs:
        modules.append(spec.build(shapes[-1]))
        shapes.append(spec.output_shape(shapes[-1]))
    activation = getattr(specs[-1], "activation", "linear")
    if len(shapes[-1]) != 1 or activation not in output_activations:
        raise ModelError(
            f"model {name!r} must end in flat class scores such as Dense(num_classes, "
            f"activation='softmax'); its last layer {specs[-1]} gives {shapes[-1]}"
        )
    if activation != "linear":
        modules[-1].activation = "linear"  # logits; the loss (or keras_output) applies the activation
    return KerasSequential(modules, specs, shapes, name, activation)
