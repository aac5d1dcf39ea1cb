"""Keras layers as specs, and the PyTorch modules that compute exactly what Keras computes.

Why this module exists: the notebooks are Keras ``Sequential`` models, so cnnzoo describes a
network the same way, as a list of layer specs whose class names and fields are the Keras
constructor's (``Conv2D(75, 3, padding="same", activation="relu")``).  A spec knows its output
shape and builds one module; that module is torch's own wherever Keras computes the same thing
and changes only what differs (timm's ``Conv2dSame(nn.Conv2d)`` pattern):

* Conv2D/Dense: ``nn.Conv2d``/``nn.Linear`` with glorot-uniform kernels, zero biases and the
  activation fused into the layer, as Keras fuses it;
* 'same'/'valid' padding as TF/Keras compute it, for convolutions and pooling alike:
  ``out = ceil(in / stride)``, ``pad_total = max((out - 1) * stride + k - in, 0)``, the odd pixel
  going to the bottom/right.  Pads are static (shapes are): symmetric ones go to the torch op,
  asymmetric ones to one ``F.pad`` first; max pooling pads with -inf, average pooling leaves padded
  cells out of the mean;
* BatchNormalization: ``nn.BatchNorm2d`` with eps 1e-3, torch momentum 0.01 (= 1 - Keras' 0.99),
  and the moving variance updated with the *biased* batch variance as Keras 3 does (torch uses
  the unbiased one); it also normalises flat ``(N, features)`` inputs, as Keras' does;
* Dropout and Flatten are torch's ``nn.Dropout`` and ``nn.Flatten``.

Shapes are per sample and in cnnzoo's order: ``(C, H, W)`` for images, ``(features,)`` for flat
tensors; ``keras_shape`` gives Keras' ``(H, W, C)`` view.  How weights are laid out in Keras files
(HWIO kernels, the NHWC flatten order) is not a property of these modules: it lives in
:mod:`cnnzoo.interop.keras_layout`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

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


def keras_names(kinds: Iterable[str]) -> list[str]:
    """The names a new Keras session gives a layer list, repeats numbered: conv2d, conv2d_1, dense.
    Keras 3 files also key their weights by these names, whatever the layers were called."""
    seen, names = Counter(), []
    for kind in kinds:
        base = keras_auto_name(kind)
        names.append(f"{base}_{seen[base]}" if seen[base] else base)
        seen[base] += 1
    return names


def padded_size(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int, int]:
    """Output size and (before, after) padding along one axis, as TF/Keras compute them."""
    if padding == "valid":
        return (size - kernel) // stride + 1, 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


# ----------------------------------------------------------------------------- field checks


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


def _image_shape(kind: str, in_shape: Shape) -> Shape:
    if len(in_shape) != 3:
        raise ModelError(f"{kind} needs a (C, H, W) input, got {tuple(in_shape)}")
    return in_shape


# ----------------------------------------------------------------------------- specs


@dataclasses.dataclass
class LayerSpec:
    """A Keras layer's constructor arguments, checked and put in canonical form (``kernel_size=3``
    becomes ``(3, 3)``); the class name is the Keras class name, the fields its config keys."""

    @property
    def kind(self) -> str:
        return type(self).__name__

    def output_shape(self, in_shape: Shape) -> Shape:
        """The per-sample output shape for a per-sample input of ``in_shape``."""
        return tuple(in_shape)

    def build(self, in_shape: Shape) -> nn.Module:
        """The module computing this layer for a per-sample input of ``in_shape``."""
        raise NotImplementedError


class _Windowed:
    """Shape arithmetic shared by Conv2D and the poolings: output size and static pads."""

    def _window(self, in_shape: Shape) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
        """Output (H, W) and F.pad-style (left, right, top, bottom) pads."""
        _image_shape(self.kind, in_shape)
        kernel = getattr(self, "kernel_size", None) or self.pool_size
        (out_h, top, bottom), (out_w, left, right) = (
            padded_size(size, k, s, self.padding) for size, k, s in zip(in_shape[1:], kernel, self.strides)
        )
        if out_h < 1 or out_w < 1:
            raise ModelError(f"{self} does not fit a {in_shape[1]}x{in_shape[2]} input")
        return (out_h, out_w), (left, right, top, bottom)


@dataclasses.dataclass
class Conv2D(_Windowed, LayerSpec):
    filters: int
    kernel_size: int | tuple[int, int]
    strides: int | tuple[int, int] = 1
    padding: str = "valid"
    activation: str | None = None
    use_bias: bool = True

    def __post_init__(self) -> None:
        self.filters = _positive(self.filters, "Conv2D filters")
        self.kernel_size = _pair(self.kernel_size, "Conv2D kernel_size")
        self.strides = _pair(self.strides, "Conv2D strides")
        self.padding = _choice(self.padding, PADDINGS, "Conv2D padding")
        self.activation = _choice(self.activation or "linear", ACTIVATIONS, "activation")
        self.use_bias = bool(self.use_bias)

    def output_shape(self, in_shape):
        return (self.filters, *self._window(in_shape)[0])

    def build(self, in_shape):
        return KerasConv2d(in_shape[0], self, self._window(in_shape)[1])


@dataclasses.dataclass
class Dense(LayerSpec):
    units: int
    activation: str | None = None
    use_bias: bool = True

    def __post_init__(self) -> None:
        self.units = _positive(self.units, "Dense units")
        self.activation = _choice(self.activation or "linear", ACTIVATIONS, "activation")
        self.use_bias = bool(self.use_bias)

    def output_shape(self, in_shape):
        if len(in_shape) != 1:
            raise ModelError(f"Dense needs a flat (features,) input, got {tuple(in_shape)}; add Flatten() first")
        return (self.units,)

    def build(self, in_shape):
        self.output_shape(in_shape)
        return KerasDense(in_shape[0], self)


@dataclasses.dataclass
class _Pooling2D(_Windowed, LayerSpec):
    pool_size: int | tuple[int, int] = 2
    strides: int | tuple[int, int] | None = None
    padding: str = "valid"

    def __post_init__(self) -> None:
        self.pool_size = _pair(self.pool_size, f"{self.kind} pool_size")
        self.strides = self.pool_size if self.strides is None else _pair(self.strides, f"{self.kind} strides")
        self.padding = _choice(self.padding, PADDINGS, f"{self.kind} padding")

    def output_shape(self, in_shape):
        return (in_shape[0], *self._window(in_shape)[0])


@dataclasses.dataclass
class MaxPooling2D(_Pooling2D):
    def build(self, in_shape):
        return KerasMaxPool2d(self, self._window(in_shape)[1])


@dataclasses.dataclass
class AveragePooling2D(_Pooling2D):
    def build(self, in_shape):
        return KerasAvgPool2d(self, self._window(in_shape)[1])


@dataclasses.dataclass
class BatchNormalization(LayerSpec):
    momentum: float = 0.99
    epsilon: float = 1e-3

    def __post_init__(self) -> None:
        self.momentum = _real(self.momentum, "BatchNormalization momentum", lambda m: 0 <= m <= 1, "in [0, 1]")
        self.epsilon = _real(self.epsilon, "BatchNormalization epsilon", lambda e: e > 0, "positive")

    def build(self, in_shape):
        # the channels of (C, H, W), or the features of a flat input
        return KerasBatchNorm(in_shape[0], eps=self.epsilon, momentum=1.0 - self.momentum)


@dataclasses.dataclass
class Dropout(LayerSpec):
    rate: float

    def __post_init__(self) -> None:
        self.rate = _real(self.rate, "Dropout rate", lambda r: 0 <= r < 1, "in [0, 1)")

    def build(self, in_shape):
        return nn.Dropout(self.rate)  # inverted dropout, elementwise: what Keras' Dropout does


@dataclasses.dataclass
class Flatten(LayerSpec):
    def output_shape(self, in_shape):
        return (math.prod(in_shape),)

    def build(self, in_shape):
        return nn.Flatten()  # NCHW order; Keras' NHWC order is the interop module's business


@dataclasses.dataclass
class Activation(LayerSpec):
    activation: str

    def __post_init__(self) -> None:
        self.activation = _choice(self.activation or "linear", ACTIVATIONS, "activation")

    def build(self, in_shape):
        return KerasActivation(self.activation)


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


def layer_configs(specs: Iterable[LayerSpec]) -> list[dict[str, Any]]:
    """Specs as plain data, Keras' ``{"class_name", "config"}`` form: what checkpoints store."""
    return [{"class_name": spec.kind, "config": dataclasses.asdict(spec)} for spec in specs]


def specs_from_configs(configs: Iterable[dict[str, Any]]) -> list[LayerSpec]:
    """The inverse of :func:`layer_configs`."""
    return [SPECS[layer["class_name"]](**layer["config"]) for layer in configs]


# ----------------------------------------------------------------------------- modules


def _split_pads(pads: tuple[int, int, int, int]) -> tuple[tuple[int, int], tuple[int, int, int, int] | None]:
    """Symmetric pads go to the torch op's own ``padding``; others need an explicit F.pad."""
    left, right, top, bottom = pads
    if left == right and top == bottom:
        return (top, left), None
    return (0, 0), pads


class KerasConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TF's static 'same' pads, Keras' initialisers and a fused activation."""

    def __init__(self, in_channels: int, spec: Conv2D, pads: tuple[int, int, int, int]) -> None:
        padding, pad = _split_pads(pads)
        super().__init__(in_channels, spec.filters, spec.kernel_size, spec.strides, padding, bias=spec.use_bias)
        self.pad = pad
        self.activation = spec.activation
        nn.init.xavier_uniform_(self.weight)  # == Keras glorot_uniform for OIHW kernels
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad)
        return ACTIVATIONS[self.activation](super().forward(x))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.activation}"


class KerasDense(nn.Linear):
    """``nn.Linear`` with Keras' initialisers and a fused activation."""

    def __init__(self, in_features: int, spec: Dense) -> None:
        super().__init__(in_features, spec.units, bias=spec.use_bias)
        self.activation = spec.activation
        nn.init.xavier_uniform_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ACTIVATIONS[self.activation](super().forward(x))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.activation}"


class KerasMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` after TF's static 'same' pads, filled with -inf."""

    def __init__(self, spec: MaxPooling2D, pads: tuple[int, int, int, int]) -> None:
        super().__init__(spec.pool_size, spec.strides)
        self.pad = pads if any(pads) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad, value=-math.inf)
        return super().forward(x)


class KerasAvgPool2d(nn.AvgPool2d):
    """TF's average pooling: padded cells are left out of each window's mean.  Symmetric pads are
    torch's ``count_include_pad=False``; asymmetric ones divide window sums by real-cell counts."""

    def __init__(self, spec: AveragePooling2D, pads: tuple[int, int, int, int]) -> None:
        padding, pad = _split_pads(pads)
        super().__init__(spec.pool_size, spec.strides, padding, count_include_pad=False)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is None:
            return super().forward(x)
        sums = F.avg_pool2d(F.pad(x, self.pad), self.kernel_size, self.stride, divisor_override=1)
        cells = F.avg_pool2d(F.pad(x.new_ones((1, 1, *x.shape[2:])), self.pad), self.kernel_size, self.stride,
                             divisor_override=1)
        return sums / cells


class KerasBatchNorm(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose moving variance takes the *biased* batch variance, as Keras'; it
    takes ``(N, C, H, W)`` maps and flat ``(N, features)`` inputs alike.  Keras keeps no batch
    counter, and a constant momentum never reads torch's, so there is none."""

    def __init__(self, features: int, eps: float, momentum: float) -> None:
        super().__init__(features, eps=eps, momentum=momentum)
        self.register_buffer("num_batches_tracked", None)

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 4):
            raise ValueError(f"expected a 2D or 4D input, got {x.dim()}D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        # F.batch_norm blends the *unbiased* batch variance v*n/(n-1) into the running variance;
        # Keras blends the biased v.  Let it update a copy (autograd keeps that copy for
        # backward, so it must not change afterwards), then remove the difference in O(C):
        # momentum*v/(n-1) = (blended - (1-momentum)*old)/n.
        blended = self.running_var.clone()
        y = F.batch_norm(x, self.running_mean, blended, self.weight, self.bias, True, self.momentum, self.eps)
        with torch.no_grad():
            n = x.numel() // x.shape[1]
            self.running_var.copy_(blended - (blended - (1.0 - self.momentum) * self.running_var) / n)
        return y


class KerasActivation(nn.Module):
    """Keras' ``Activation`` layer, by Keras name."""

    def __init__(self, activation: str) -> None:
        super().__init__()
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ACTIVATIONS[self.activation](x)

    def extra_repr(self) -> str:
        return self.activation
