"""Deployable files from a checkpoint: ONNX, TorchScript and torch.export (``python -m cnnzoo.export``).

Why this module exists: a checkpoint is for Lightning; deployment wants one file that a runtime
loads without cnnzoo.  The exported graph is the checkpoint's network followed by softmax, so it
returns the class probabilities that ``ClassifierModule.predict_step`` returns, for any batch size
(the batch dimension is dynamic; the per-sample ``(C, H, W)`` is the checkpoint's, float32 NCHW).

Formats:

* ``onnx`` (``.onnx``): torch's torch.export-based ONNX exporter (``dynamo=True``, the default
  since torch 2.9; it needs the ``onnxscript`` package, while the TorchScript-based exporter is
  deprecated), one self-contained file with input ``images`` and output ``probabilities``;
* ``torchscript`` (``.pt``): ``torch.jit.trace``, for ``torch.jit.load`` and the C++ runtime;
* ``export`` (``.pt2``): a ``torch.export`` program, for ``torch.export.load(path).module()``.

The file goes next to the checkpoint (``checkpoints/last.ckpt`` -> ``checkpoints/last.onnx``)
unless ``output=`` names it, written through :func:`cnnzoo.atomic.atomic_path` so a reader never
sees half a file; Hydra writes nothing else (see ``conf/export.yaml``).
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import BinaryIO

import torch
from torch import nn

from cnnzoo.atomic import atomic_path
from cnnzoo.models.checkpoint import load_network
from cnnzoo.errors import ConfigError

FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "export": ".pt2"}
BATCH = torch.export.Dim("batch", min=1)


class Probabilities(nn.Module):
    """What is exported: what the Keras model returns (``keras_output``: logits through softmax)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.keras_output(images)


def export_checkpoint(ckpt_path: str | Path | None, fmt: str = "onnx", output: str | Path | None = None) -> Path:
    """Write the checkpoint's network + softmax as ``fmt`` to ``output`` (default: the checkpoint's
    path with the format's suffix); returns the path written."""
    if not ckpt_path:
        raise ConfigError("ckpt_path is required: python -m cnnzoo.export ckpt_path=<file.ckpt> [format=onnx]")
    if fmt not in FORMATS:
        raise ConfigError(f"format={fmt!r} is not supported; expected one of {', '.join(FORMATS)}")
    if fmt == "onnx" and importlib.util.find_spec("onnxscript") is None:
        raise ConfigError("format=onnx needs the onnxscript package (pip install onnxscript)")
    net = load_network(ckpt_path).net  # torch.load and cnnzoo.models: no Lightning
    model = Probabilities(net).eval()
    example = torch.zeros(2, *net.input_shape)  # 2, not 1: torch.export would fix a batch of 1
    path = Path(output) if output else Path(ckpt_path).with_suffix(FORMATS[fmt])
    with torch.no_grad(), atomic_path(path) as tmp, open(tmp, "wb") as f:
        WRITERS[fmt](model, example, f)
    return path


def _write_onnx(model: nn.Module, example: torch.Tensor, f: BinaryIO) -> None:
    program = torch.onnx.export(model, (example,), dynamo=True, verbose=False, input_names=["images"],
                                output_names=["probabilities"], dynamic_shapes=({0: BATCH},))
    f.write(program.model_proto.SerializeToString())  # one self-contained file (no external data)


def _write_torchscript(model: nn.Module, example: torch.Tensor, f: BinaryIO) -> None:
    with warnings.catch_warnings():  # TorchScript is deprecated in torch; the format is still asked for
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.(trace|trace_method|save)` is deprecated")
        torch.jit.save(torch.jit.trace(model, example), f)


def _write_export(model: nn.Module, example: torch.Tensor, f: BinaryIO) -> None:
    torch.export.save(torch.export.export(model, (example,), dynamic_shapes=({0: BATCH},)), f)


WRITERS = {"onnx": _write_onnx, "torchscript": _write_torchscript, "export": _write_export}
