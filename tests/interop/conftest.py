"""Fixtures and helpers for the interop tests: Keras reference models and how to compare with them.

Why this file exists: the import tests compare cnnzoo with Keras 3 itself (torch backend) on files
that Keras wrote, so they share the Keras fixtures of ``tests/models`` (imported here, not copied),
one way to give every weight a value away from Keras' initial one (BatchNorm statistics included),
and one way to run Keras on an NHWC batch and cnnzoo on the same batch as NCHW.
"""

import dataclasses
import os
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from tests.models.conftest import keras, keras_model  # noqa: E402,F401  (the shared Keras fixtures)

TOL = 1e-5


def randomize(kmodel, seed: int) -> None:
    """Move every weight off its initial value; BatchNorm gets gamma/variance in [0.5, 1.5] and
    beta/mean around 0, as a trained layer has."""
    rng = np.random.default_rng(seed)
    for layer in kmodel.layers:
        arrays = layer.get_weights()
        if type(layer).__name__ == "BatchNormalization":
            arrays = [rng.uniform(0.5, 1.5, a.shape) if i in (0, 3) else rng.normal(0, 0.3, a.shape)
                      for i, a in enumerate(arrays)]
        else:
            arrays = [a + rng.normal(0, 0.05, a.shape) for a in arrays]
        layer.set_weights([a.astype("float32") for a in arrays])


def trained_looking(module, seed: int = 0):
    """``module`` (a ClassifierModule) with biases off 0 and BatchNorm gamma/variance in [0.5, 1.5],
    beta/mean around 0, as after training (a fresh one has 0/1 there); returns it in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for spec, layer in zip(module.net.specs, module.net):
            if spec.kind == "BatchNormalization":
                layer.running_var.copy_(torch.rand(layer.running_var.shape, generator=generator) + 0.5)
                layer.weight.copy_(torch.rand(layer.weight.shape, generator=generator) + 0.5)
                layer.running_mean.copy_(0.3 * torch.randn(layer.running_mean.shape, generator=generator))
            if getattr(layer, "bias", None) is not None:
                layer.bias.add_(0.05 * torch.randn(layer.bias.shape, generator=generator))
    return module.eval()


def as_ours(x: np.ndarray) -> torch.Tensor:
    """A Keras batch as cnnzoo takes it: NHWC -> NCHW, (N, H, W) -> (N, 1, H, W), flat as is."""
    t = torch.from_numpy(x)
    return t.permute(0, 3, 1, 2) if t.ndim == 4 else t.unsqueeze(1) if t.ndim == 3 else t


@dataclasses.dataclass(frozen=True)
class Reference:
    """A Keras model with trained-looking weights, a batch, and Keras' outputs on it."""

    kmodel: Any
    x: np.ndarray
    y: np.ndarray

    def max_difference(self, ours) -> float:
        """Max |Keras' outputs - ours(batch)|, ``ours`` taking cnnzoo's layout of the batch."""
        with torch.no_grad():
            mine = ours(as_ours(self.x)).numpy()
        assert mine.shape == self.y.shape
        return float(np.abs(mine - self.y).max())


def reference(kmodel, seed: int = 0, n: int = 4) -> Reference:
    """Randomize ``kmodel``'s weights and record its outputs on a random batch of ``n``."""
    randomize(kmodel, seed)
    x = np.random.default_rng(seed).random((n, *kmodel.inputs[0].shape[1:]), dtype=np.float32)
    return Reference(kmodel, x, kmodel.predict(x, verbose=0))
