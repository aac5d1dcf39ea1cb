"""Keras layers as frozen specs, and the PyTorch blocks that compute exactly what Keras computes.

Why this module exists: the notebooks are Keras ``Sequential`` models, so cnnzoo describes a
network the same way, as a list of layer specs whose class names and fields are the Keras
constructor's (``Conv2D(75, 3, padding="same", activation="relu")``).  Each spec's
``build(in_shape)`` returns one block (a :class:`KerasLayer`) that carries the Keras math, so the
math is written once and every architecture, summary and weight import reuses it:

* Conv2D/Dense: glorot-uniform kernels, zero biases, the activation fused into the layer;
* 'same'/'valid' padding as TF/Keras compute it, for convolutions and pooling alike:
  ``out = ceil(in / stride)``, ``pad_total = max((out - 1) * stride + k - in, 0)``, the odd pixel
  going to the bottom/right; max pooling pads with -inf, average pooling leaves padded cells out
  of the mean.  Pads are fixed at build time (shapes are static);
* BatchNormalization: eps 1e-3, torch momentum 0.01 (= 1 - Keras' 0.99), and the moving variance
  updated with the *biased* batch variance as Keras 3 does (PyTorch uses the unbiased one);
* weights in Keras layout both ways: ``keras_weights()`` lists a block's arrays in Keras' order
  and layout, ``load_keras_weights(arrays)`` takes them back.

Shapes are per sample and in cnnzoo's order: ``(C, H, W)`` for images, ``(features,)`` for flat
tensors; ``keras_output_shape`` gives Keras' ``(H, W, C)`` view.

Flatten order (NHWC vs NCHW) is handled here, and only here, in two steps.  Keras flattens an
``(H, W, C)`` map, cnnzoo flattens ``(C, H, W)`` (no transpose in ``forward``), so one feature sits
at different positions of the two flat vectors.  (1) ``FlattenLayer.output_keras_order`` gives,
for each of our flat positions, its Keras position; ``build_sequential`` hands that ``keras_order``
to the next block's ``build`` (``Dropout``/``Activation``/``BatchNormalization`` pass it on, Dense
ends it).  (2) ``_feature_layout`` turns it into the permutation that the weight converters of
``DenseLayer`` (kernel input rows) and ``BatchNormalizationLayer`` (per-feature vectors) apply
when weights cross into or out of Keras layout.  ``forward`` never permutes anything.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnzoo.errors import ModelError

Shape = tuple[int, ...]

#: Activations Keras layers can fuse, by Keras name.  Softmax runs over the channel/feature
#: axis, which is dim 1 for both NCHW maps and flat (N, features) tensors.
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda x: x,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": lambda x: torch.softmax(x, dim=1),
}
PADDINGS = ("valid", "same")


def keras_shape(shape: Shape) -> Shape:
    """Keras' view of a per-sample shape: ``(C, H, W)`` becomes ``(H, W, C)``; flat stays."""
    return (*shape[1:], shape[0]) if len(shape) == 3 else tuple(shape)


def keras_auto_name(kind: str) -> str:
    """Keras' default layer name for a class name: Conv2D -> conv2d, MaxPooling2D -> max_pooling2d."""
    return re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", kind)).lower()


def padded_size(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int, int]:
    """Output size and (before, after) padding along one axis, as TF/Keras compute them."""
    if padding == "valid":
        return (size - kernel) // stride + 1, 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


# ----------------------------------------------------------------------------- specs


def _choice(value: Any, choices: tuple[str, ...] | dict, what: str) -> str:
    key = str(value).lower()
    if key not in choices:
        raise ModelError(f"unsupported {what} {value!r}; valid choices: {', '.join(choices)}")
    return key


def _positive(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ModelError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def _pair(value: Any, what: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, numbers.Integral) else value
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ModelError(f"{what} must be an integer or a pair of integers, got {value!r}")
    return _positive(pair[0], what), _positive(pair[1], what)


def _real(value: Any, what: str, ok: Callable[[float], bool], expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not ok(float(value)):
        raise ModelError(f"{what} must be {expected}, got {value!r}")
    return float(value)


def _normalize(spec: LayerSpec, **fields: Any) -> None:
    """Store canonical field values on a frozen spec (``__post_init__`` helper)."""
    for name, value in fields.items():
        object.__setattr__(spec, name, value)


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """A Keras layer's constructor arguments; the class name is the Keras class name."""

    @property
    def kind(self) -> str:
        return type(self).__name__

    def build(self, in_shape: Shape, keras_order: torch.Tensor | None = None) -> KerasLayer:
        """The block for a per-sample input of ``in_shape`` (see the module docstring for
        ``keras_order``)."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Conv2D(LayerSpec):
    filters: int
    kernel_size: int | tuple[int, int]
    strides: int | tuple[int, int] = 1
    padding: str = "valid"
    activation: str | None = None
    use_bias: bool = True

    def __post_init__(self) -> None:
        _normalize(
            self,
            filters=_positive(self.filters, "Conv2D filters"),
            kernel_size=_pair(self.kernel_size, "Conv2D kernel_size"),
            strides=_pair(self.strides, "Conv2D strides"),
            padding=_choice(self.padding, PADDINGS, "Conv2D padding"),
            activation=_choice(self.activation or "linear", ACTIVATIONS, "activation"),
            use_bias=bool(self.use_bias),
        )

    def build(self, in_shape, keras_order=None):
        return Conv2DLayer(self, in_shape)


@dataclasses.dataclass(frozen=True)
class Dense(LayerSpec):
    units: int
    activation: str | None = None
    use_bias: bool = True

    def __post_init__(self) -> None:
        _normalize(
            self,
            units=_positive(self.units, "Dense units"),
            activation=_choice(self.activation or "linear", ACTIVATIONS, "activation"),
            use_bias=bool(self.use_bias),
        )

    def build(self, in_shape, keras_order=None):
        return DenseLayer(self, in_shape, keras_order)


@dataclasses.dataclass(frozen=True)
class _Pooling2D(LayerSpec):
    pool_size: int | tuple[int, int] = 2
    strides: int | tuple[int, int] | None = None
    padding: str = "valid"

    def __post_init__(self) -> None:
        pool = _pair(self.pool_size, f"{self.kind} pool_size")
        strides = pool if self.strides is None else _pair(self.strides, f"{self.kind} strides")
        padding = _choice(self.padding, PADDINGS, f"{self.kind} padding")
        _normalize(self, pool_size=pool, strides=strides, padding=padding)

    def build(self, in_shape, keras_order=None):
        return Pooling2DLayer(self, in_shape)


@dataclasses.dataclass(frozen=True)
class MaxPooling2D(_Pooling2D):
    pass


@dataclasses.dataclass(frozen=True)
class AveragePooling2D(_Pooling2D):
    pass


@dataclasses.dataclass(frozen=True)
class BatchNormalization(LayerSpec):
    momentum: float = 0.99
    epsilon: float = 1e-3

    def __post_init__(self) -> None:
        _normalize(
            self,
            momentum=_real(self.momentum, "BatchNormalization momentum", lambda m: 0 <= m <= 1, "in [0, 1]"),
            epsilon=_real(self.epsilon, "BatchNormalization epsilon", lambda e: e > 0, "positive"),
        )

    def build(self, in_shape, keras_order=None):
        return BatchNormalizationLayer(self, in_shape, keras_order)


@dataclasses.dataclass(frozen=True)
class Dropout(LayerSpec):
    rate: float

    def __post_init__(self) -> None:
        _normalize(self, rate=_real(self.rate, "Dropout rate", lambda r: 0 <= r < 1, "in [0, 1)"))

    def build(self, in_shape, keras_order=None):
        return DropoutLayer(self, in_shape, keras_order)


@dataclasses.dataclass(frozen=True)
class Flatten(LayerSpec):
    def build(self, in_shape, keras_order=None):
        return FlattenLayer(self, in_shape, keras_order)


@dataclasses.dataclass(frozen=True)
class Activation(LayerSpec):
    activation: str

    def __post_init__(self) -> None:
        _normalize(self, activation=_choice(self.activation or "linear", ACTIVATIONS, "activation"))

    def build(self, in_shape, keras_order=None):
        return ActivationLayer(self, in_shape, keras_order)


#: Keras' aliases, so the notebooks' spelling works verbatim.
MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D

#: Keras class name -> cnnzoo spec; a spec's fields are named as the Keras config keys.
SPECS: dict[str, type[LayerSpec]] = {
    "Conv2D": Conv2D,
    "Dense": Dense,
    "MaxPooling2D": MaxPooling2D,
    "MaxPool2D": MaxPooling2D,
    "AveragePooling2D": AveragePooling2D,
    "AvgPool2D": AveragePooling2D,
    "BatchNormalization": BatchNormalization,
    "Dropout": Dropout,
    "Flatten": Flatten,
    "Activation": Activation,
}


# ----------------------------------------------------------------------------- blocks

# One Keras weight as this block holds it: (our tensor, to-Keras layout, from-Keras layout).
WeightLayout = tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]


def _same(t: torch.Tensor) -> torch.Tensor:
    return t


def _feature_layout(keras_order: torch.Tensor | None):
    """Converters for a per-feature axis (dim 0) between our flat order and Keras' one.

    ``keras_order[i]`` is the Keras position of our feature ``i``: a tensor indexed by our
    positions becomes Keras-ordered by ``t[argsort(keras_order)]``, and back by ``k[keras_order]``.
    """
    if keras_order is None:
        return _same, _same
    inverse = torch.argsort(keras_order)
    return (lambda t: t[inverse.to(t.device)]), (lambda k: k[keras_order.to(k.device)])


class KerasLayer(nn.Module):
    """A built block: the spec it came from, static shapes, Keras weight conversion."""

    def __init__(self, spec: LayerSpec, in_shape: Shape, out_shape: Shape,
                 keras_order: torch.Tensor | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.name = keras_auto_name(spec.kind)  # the builder numbers repeats: dense, dense_1
        self.input_shape = tuple(in_shape)
        self.output_shape = tuple(out_shape)
        self.keras_order = keras_order

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def keras_output_shape(self) -> Shape:
        return keras_shape(self.output_shape)

    @property
    def output_keras_order(self) -> torch.Tensor | None:
        """Keras position of each output feature (shape-preserving blocks pass theirs on)."""
        return self.keras_order

    def extra_repr(self) -> str:
        return f"{self.spec}, output_shape={self.output_shape}"

    def _weight_layout(self) -> list[WeightLayout]:
        return []

    @property
    def num_keras_weights(self) -> int:
        return len(self._weight_layout())

    def param_counts(self) -> tuple[int, int]:
        """(trainable, non-trainable) scalar counts, as Keras' ``count_params`` splits them."""
        trainable = non_trainable = 0
        for tensor, _, _ in self._weight_layout():
            if isinstance(tensor, nn.Parameter) and tensor.requires_grad:
                trainable += tensor.numel()
            else:
                non_trainable += tensor.numel()
        return trainable, non_trainable

    def keras_weights(self) -> list[np.ndarray]:
        """This block's weights as Keras' ``layer.get_weights()`` would list them."""
        return [to_keras(t.detach()).cpu().numpy().copy() for t, to_keras, _ in self._weight_layout()]

    def load_keras_weights(self, arrays) -> None:
        """Take weights in Keras' order and layout (``layer.get_weights()``)."""
        layout = self._weight_layout()
        arrays = [torch.as_tensor(np.asarray(a)) for a in arrays]
        expected = [tuple(to_keras(t).shape) for t, to_keras, _ in layout]
        got = [tuple(a.shape) for a in arrays]
        if got != expected:
            raise ModelError(
                f"layer {self.name} ({self.kind}) takes Keras weights of shapes {expected}, got {got}"
            )
        with torch.no_grad():
            for (tensor, _, from_keras), array in zip(layout, arrays):
                tensor.copy_(from_keras(array.to(tensor.dtype)))


def _image_shape(spec: LayerSpec, in_shape: Shape) -> Shape:
    if len(in_shape) != 3:
        raise ModelError(f"{spec.kind} needs a (C, H, W) input, got {tuple(in_shape)}")
    return in_shape


def _window(spec, in_shape: Shape, kernel, strides, padding):
    """Output (H, W) and F.pad-style (left, right, top, bottom) pads of a sliding window."""
    (out_h, top, bottom), (out_w, left, right) = (
        padded_size(size, k, s, padding) for size, k, s in zip(in_shape[1:], kernel, strides)
    )
    if out_h < 1 or out_w < 1:
        raise ModelError(f"{spec} does not fit a {in_shape[1]}x{in_shape[2]} input")
    return (out_h, out_w), (left, right, top, bottom)


def _split_pads(pads: tuple[int, int, int, int]):
    """Symmetric pads go to the torch op's own ``padding``; others need an explicit F.pad."""
    left, right, top, bottom = pads
    if left == right and top == bottom:
        return (top, left), None
    return (0, 0), pads


class Conv2DLayer(KerasLayer):
    def __init__(self, spec: Conv2D, in_shape: Shape) -> None:
        channels = _image_shape(spec, in_shape)[0]
        (out_h, out_w), pads = _window(spec, in_shape, spec.kernel_size, spec.strides, spec.padding)
        super().__init__(spec, in_shape, (spec.filters, out_h, out_w))
        self.activation = spec.activation
        self.stride = spec.strides
        self.padding, self.pad = _split_pads(pads)
        self.weight = nn.Parameter(torch.empty(spec.filters, channels, *spec.kernel_size))
        self.bias = nn.Parameter(torch.zeros(spec.filters)) if spec.use_bias else None
        nn.init.xavier_uniform_(self.weight)  # == Keras glorot_uniform for OIHW kernels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad)
        x = F.conv2d(x, self.weight, self.bias, self.stride, self.padding)
        return ACTIVATIONS[self.activation](x)

    @property
    def output_keras_order(self):
        return None

    def _weight_layout(self):
        layout = [(self.weight, lambda w: w.permute(2, 3, 1, 0), lambda k: k.permute(3, 2, 0, 1))]
        return layout + ([(self.bias, _same, _same)] if self.bias is not None else [])


class DenseLayer(KerasLayer):
    def __init__(self, spec: Dense, in_shape: Shape, keras_order=None) -> None:
        if len(in_shape) != 1:
            raise ModelError(f"Dense needs a flat (features,) input, got {tuple(in_shape)}; add Flatten() first")
        super().__init__(spec, in_shape, (spec.units,), keras_order)
        self.activation = spec.activation
        self.weight = nn.Parameter(torch.empty(spec.units, in_shape[0]))
        self.bias = nn.Parameter(torch.zeros(spec.units)) if spec.use_bias else None
        nn.init.xavier_uniform_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ACTIVATIONS[self.activation](F.linear(x, self.weight, self.bias))

    @property
    def output_keras_order(self):
        return None

    def _weight_layout(self):
        rows_to_keras, rows_from_keras = _feature_layout(self.keras_order)
        kernel = (self.weight, lambda w: rows_to_keras(w.t()), lambda k: rows_from_keras(k).t())
        return [kernel] + ([(self.bias, _same, _same)] if self.bias is not None else [])


class Pooling2DLayer(KerasLayer):
    def __init__(self, spec: _Pooling2D, in_shape: Shape) -> None:
        channels = _image_shape(spec, in_shape)[0]
        (out_h, out_w), pads = _window(spec, in_shape, spec.pool_size, spec.strides, spec.padding)
        super().__init__(spec, in_shape, (channels, out_h, out_w))
        self.is_max = isinstance(spec, MaxPooling2D)
        self.padding, self.pad = _split_pads(pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel, stride = self.spec.pool_size, self.spec.strides
        if self.is_max:
            if self.pad is not None:
                x = F.pad(x, self.pad, value=-math.inf)
            return F.max_pool2d(x, kernel, stride, self.padding)
        if self.pad is None:
            return F.avg_pool2d(x, kernel, stride, self.padding, count_include_pad=False)
        # Asymmetric pads: window sums over the zero-padded map, divided by each window's
        # count of real cells (padding left out of the mean, as in TF/Keras).
        sums = F.avg_pool2d(F.pad(x, self.pad), kernel, stride, divisor_override=1)
        cells = F.avg_pool2d(F.pad(x.new_ones((1, 1, *x.shape[2:])), self.pad), kernel, stride,
                             divisor_override=1)
        return sums / cells

    @property
    def output_keras_order(self):
        return None


class BatchNormalizationLayer(KerasLayer):
    def __init__(self, spec: BatchNormalization, in_shape: Shape, keras_order=None) -> None:
        super().__init__(spec, in_shape, in_shape, keras_order)
        features = in_shape[0]  # channels of (C, H, W), or the features of a flat input
        self.momentum = 1.0 - spec.momentum  # PyTorch weighs the new batch, Keras the old average
        self.eps = spec.epsilon
        self.weight = nn.Parameter(torch.ones(features))  # Keras gamma
        self.bias = nn.Parameter(torch.zeros(features))  # Keras beta
        self.register_buffer("running_mean", torch.zeros(features))  # Keras moving_mean
        self.register_buffer("running_var", torch.ones(features))  # Keras moving_variance

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                False, 0.0, self.eps)
        # F.batch_norm blends the *unbiased* batch variance v*n/(n-1) into the running variance;
        # Keras blends the biased v.  Let it update a copy (autograd keeps that copy for
        # backward, so it must not change afterwards), then remove the difference in O(C):
        # momentum*v/(n-1) = (blended - (1-momentum)*old)/n.
        blended = self.running_var.clone()
        y = F.batch_norm(x, self.running_mean, blended, self.weight, self.bias,
                         True, self.momentum, self.eps)
        with torch.no_grad():
            n = x.numel() // x.shape[1]
            self.running_var.copy_(blended - (blended - (1.0 - self.momentum) * self.running_var) / n)
        return y

    def _weight_layout(self):
        to_keras, from_keras = _feature_layout(self.keras_order)
        tensors = (self.weight, self.bias, self.running_mean, self.running_var)
        return [(t, to_keras, from_keras) for t in tensors]


class DropoutLayer(KerasLayer):
    def __init__(self, spec: Dropout, in_shape: Shape, keras_order=None) -> None:
        super().__init__(spec, in_shape, in_shape, keras_order)
        self.rate = spec.rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.rate, self.training)


class FlattenLayer(KerasLayer):
    def __init__(self, spec: Flatten, in_shape: Shape, keras_order=None) -> None:
        super().__init__(spec, in_shape, (math.prod(in_shape),), keras_order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    @property
    def output_keras_order(self):
        if len(self.input_shape) == 1:
            return self.keras_order
        # Our flat position (c, h, w) holds Keras' flat position (h, w, c).
        c, h, w = self.input_shape
        return torch.arange(h * w * c).reshape(h, w, c).permute(2, 0, 1).flatten()


class ActivationLayer(KerasLayer):
    def __init__(self, spec: Activation, in_shape: Shape, keras_order=None) -> None:
        super().__init__(spec, in_shape, in_shape, keras_order)
        self.activation = spec.activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ACTIVATIONS[self.activation](x)
