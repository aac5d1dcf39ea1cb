"""Keras-style ``model.summary()`` for cnnzoo networks.

Why this module exists: the notebooks teach by reading ``model.summary()`` (layer names, output
shapes, parameter counts), so cnnzoo prints the same table, row for row, from the built blocks'
static shapes and parameters: shapes in Keras' ``(None, H, W, C)`` order, BatchNorm moving
statistics counted as non-trainable parameters (as Keras counts them), sizes as float32 bytes.
"""

from __future__ import annotations

import dataclasses

from torch import nn

from cnnzoo.errors import ModelError
from cnnzoo.models.layers import Shape, keras_shape
from cnnzoo.models.sequential import KerasSequential


@dataclasses.dataclass(frozen=True)
class SummaryRow:
    name: str  # Keras auto name: conv2d, conv2d_1, dense ...
    kind: str  # Keras layer class: Conv2D, MaxPooling2D ...
    output_shape: Shape  # per sample, Keras order (H, W, C) or (units,)
    params: int


@dataclasses.dataclass(frozen=True)
class ModelSummary:
    name: str
    rows: tuple[SummaryRow, ...]
    trainable: int
    non_trainable: int

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable

    def __str__(self) -> str:
        cells = [(f"{r.name} ({r.kind})", str((None, *r.output_shape)), f"{r.params:,}") for r in self.rows]
        header = ("Layer (type)", "Output Shape", "Param #")
        widths = [max(len(c[i]) for c in [header, *cells]) + 2 for i in range(3)]

        def line(c):
            return f" {c[0]:<{widths[0]}}{c[1]:<{widths[1]}}{c[2]:>{widths[2]}}"

        rule = "_" * (sum(widths) + 1)
        return "\n".join([
            f'Model: "{self.name}"',
            rule,
            line(header),
            "=" * len(rule),
            *map(line, cells),
            "=" * len(rule),
            f"Total params: {_count(self.total)}",
            f"Trainable params: {_count(self.trainable)}",
            f"Non-trainable params: {_count(self.non_trainable)}",
            rule,
        ])


def _count(params: int) -> str:
    """``1,234 (4.82 KB)``: the count and its float32 size, as Keras 3 prints them."""
    size = params * 4.0
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024:
            break
        size /= 1024
    return f"{params:,} ({size:.2f} {unit})"


def summary(net: nn.Module, input_shape: Shape | None = None) -> ModelSummary:
    """Summarise the cnnzoo network in ``net`` (a :class:`KerasSequential`, or any module holding
    one, such as the LightningModule).  Shapes are static: if ``input_shape`` is given it must be
    the ``(C, H, W)`` the network was built for."""
    seq = next((m for m in net.modules() if isinstance(m, KerasSequential)), None)
    if seq is None:
        raise ModelError(f"{type(net).__name__} holds no cnnzoo network (build one with cnnzoo.models.create)")
    if input_shape is not None and tuple(input_shape) != seq.input_shape:
        raise ModelError(
            f"{seq.name} was built for input shape {seq.input_shape}, not {tuple(input_shape)}; "
            "rebuild it with create(name, input_shape=...)"
        )
    rows, trainable, non_trainable = [], 0, 0
    for name, spec, module, shape in zip(seq.layer_names, seq.specs, seq, seq.shapes[1:]):
        t, n = param_counts(module)
        trainable, non_trainable = trainable + t, non_trainable + n
        rows.append(SummaryRow(name, spec.kind, keras_shape(shape), t + n))
    return ModelSummary(seq.name, tuple(rows), trainable, non_trainable)


def param_counts(module: nn.Module) -> tuple[int, int]:
    """(trainable, non-trainable) scalar counts, as Keras' ``count_params`` splits them: the
    buffers (BatchNorm's moving statistics) are non-trainable Keras weights."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    return trainable, frozen + sum(b.numel() for b in module.buffers())
