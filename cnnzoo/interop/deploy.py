"""Files from a checkpoint for use outside cnnzoo: ONNX, TorchScript, torch.export and Keras (``python -m cnnzoo.export``).

Why this module exists: a checkpoint is for Lightning; deployment wants one file that a runtime
loads without cnnzoo, and that says itself what it takes.  The ONNX, TorchScript and torch.export
files take **raw uint8 pixels**, NCHW ``[batch, C, H, W]`` at the network's input size, and apply
the checkpoint's preprocessing inside (``x / 255``, then ``(x - mean) / std`` if the recipe
normalises), so the pixels of an image file give the checkpoint's answer: the network's output
through its last activation, the probabilities ``ClassifierModule.probabilities`` (and
``python -m cnnzoo.predict``) gives, for any batch size.  A resize (bn_cnn's 64x64) stays outside:
the file states it.  Each file carries the same facts (:mod:`cnnzoo.interop.contract`: class names,
input contract, cnnzoo version) as JSON: ONNX ``metadata_props`` (``cnnzoo``, ``class_names``,
``input``, ``cnnzoo_version``), ``cnnzoo.json`` in TorchScript's ``_extra_files`` and in
torch.export's ``extra_files``.

Formats:

* ``onnx`` (``.onnx``): torch's torch.export-based ONNX exporter (``dynamo=True``, the default
  since torch 2.9; it needs the ``onnxscript`` package, while the TorchScript-based exporter is
  deprecated), one self-contained file with input ``images`` and output ``probabilities``;
* ``torchscript`` (``.pt``): ``torch.jit.trace``, for ``torch.jit.load`` and the C++ runtime;
* ``export`` (``.pt2``): a ``torch.export`` program, for ``torch.export.load(path).module()``;
* ``keras`` (``.keras``) and ``h5`` (``.h5``): Keras files (:mod:`cnnzoo.interop.keras_writer`),
  NHWC float32 inputs scaled by the caller, compiled with the checkpoint's training config.

The file goes next to the checkpoint (``checkpoints/last.ckpt`` -> ``checkpoints/last.onnx``)
unless ``output=`` names it, written through :func:`cnnzoo.atomic.atomic_output` so a reader never
sees half a file and an unwritable path is one line; Hydra writes nothing else (see
``conf/export.yaml``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import nn

from cnnzoo.atomic import atomic_output
from cnnzoo.models.checkpoint import load_network
from cnnzoo.errors import ConfigError
from cnnzoo.interop.contract import ModelFacts, contract_line, deploy_input, describe, keras_input, model_facts

FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "export": ".pt2", "keras": ".keras", "h5": ".h5"}
KERAS_FORMATS = ("keras", "h5")
BATCH = torch.export.Dim("batch", min=1)
#: Where each format keeps its facts, as the command says it.
FACTS_AT = {"onnx": "metadata_props (class_names, input, cnnzoo)", "torchscript": "_extra_files cnnzoo.json",
            "export": "extra_files cnnzoo.json", "keras": "metadata.json (\"cnnzoo\")", "h5": "the cnnzoo attribute"}


class FromPixels(nn.Module):
    """What is exported: raw uint8 NCHW pixels -> the checkpoint's preprocessing (``Preprocess``'s
    ops, in its order) -> the network through its last activation (``keras_output``)."""

    def __init__(self, net: nn.Module, normalize: dict[str, float] | None) -> None:
        super().__init__()
        self.net = net
        self.mean, self.std = (normalize["mean"], normalize["std"]) if normalize else (None, None)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return self.net.keras_output(x)


@dataclasses.dataclass(frozen=True)
class Exported:
    """A written file and what the command says about it (the input contract, notes)."""

    path: Path
    lines: list[str]


def export_checkpoint(ckpt_path: str | Path | None, fmt: str = "onnx", output: str | Path | None = None,
                      overwrite: bool = False) -> Exported:
    """Write the checkpoint as ``fmt`` to ``output`` (default: the checkpoint's path with the
    format's suffix; an existing file only with ``overwrite``); returns the path written and the
    lines describing its input."""
    if not ckpt_path:
        raise ConfigError("ckpt_path is required: python -m cnnzoo.export ckpt_path=<file.ckpt> [format=onnx]")
    if fmt not in FORMATS:
        raise ConfigError(f"format={fmt!r} is not supported; expected one of {', '.join(FORMATS)}")
    if fmt == "onnx" and importlib.util.find_spec("onnxscript") is None:
        raise ConfigError("format=onnx needs the onnxscript package (pip install onnxscript)")
    path = Path(output) if output else Path(ckpt_path).with_suffix(FORMATS[fmt])
    if fmt in KERAS_FORMATS and path.suffix.lower() != FORMATS[fmt]:
        raise ConfigError(f"output={path}: format={fmt} writes a {FORMATS[fmt]} file and Keras picks the reader by "
                          f"the suffix; name it *{FORMATS[fmt]}")
    if path.is_file() and not overwrite:
        raise ConfigError(f"output={path} exists: give another output=, or overwrite=true to replace it")
    facts = model_facts(load_network(ckpt_path))  # torch.load and cnnzoo.models: no Lightning
    if fmt in KERAS_FORMATS:
        from cnnzoo.interop.keras_writer import write_keras_file

        write_keras_file(facts, path, fmt)
        return Exported(path, [contract_line(keras_input(facts), facts.net.num_classes, FACTS_AT[fmt]),
                               *_keras_notes(facts)])
    input_spec = deploy_input(facts, fmt)
    model = FromPixels(facts.net, facts.normalize).eval()
    example = torch.zeros(2, *facts.net.input_shape, dtype=torch.uint8)  # 2, not 1: torch.export would fix a batch of 1
    with torch.no_grad(), atomic_output(path) as tmp, open(tmp, "wb") as f:
        WRITERS[fmt](model, example, f, describe(facts, input_spec))
    return Exported(path, [contract_line(input_spec, facts.net.num_classes, FACTS_AT[fmt])])


def _keras_notes(facts: ModelFacts) -> list[str]:
    if not facts.scheduler:
        return []
    return [f"note: the learning-rate schedule {facts.scheduler.get('name')!r} is not carried; Keras' optimizer "
            "gets the constant optimizer.lr"]


def _write_onnx(model: nn.Module, example: torch.Tensor, f: BinaryIO, facts: dict[str, Any]) -> None:
    program = torch.onnx.export(model, (example,), dynamo=True, verbose=False, input_names=["images"],
                                output_names=["probabilities"], dynamic_shapes=({0: BATCH},))
    proto = program.model_proto
    for key, value in {"cnnzoo": facts, "class_names": facts["class_names"], "input": facts["input"],
                       "cnnzoo_version": facts["cnnzoo_version"]}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    f.write(proto.SerializeToString())  # one self-contained file (no external data)


def _write_torchscript(model: nn.Module, example: torch.Tensor, f: BinaryIO, facts: dict[str, Any]) -> None:
    with warnings.catch_warnings():  # TorchScript is deprecated in torch; the format is still asked for
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.(trace|trace_method|save)` is deprecated")
        torch.jit.save(torch.jit.trace(model, example), f, _extra_files={"cnnzoo.json": json.dumps(facts)})


def _write_export(model: nn.Module, example: torch.Tensor, f: BinaryIO, facts: dict[str, Any]) -> None:
    program = torch.export.export(model, (example,), dynamic_shapes=({0: BATCH},))
    torch.export.save(program, f, extra_files={"cnnzoo.json": json.dumps(facts)})


WRITERS = {"onnx": _write_onnx, "torchscript": _write_torchscript, "export": _write_export}
