"""What an exported file says about itself: the model's facts and the input contract, once for every format.

Why this module exists: a Keras file, an ONNX graph, a TorchScript or a torch.export file leaves
cnnzoo with nothing but itself, so each must state what it takes and what it answers: the image
size, how pixels are scaled (the checkpoint's data config: ``x / 255`` as in the notebooks, then
``(x - mean) / std`` if the recipe normalises), whether a resize comes first (bn_cnn's 64x64: it
stays outside every file), and the class names.  The Keras writer and the deploy writers take
these facts from here, so the formats cannot disagree, and the command prints them from here.

* Keras files take NHWC float32 batches already scaled: the caller applies the preprocessing;
* ONNX, TorchScript and torch.export files take the raw NCHW uint8 pixels 0..255 and apply the
  scaling and normalisation inside the graph.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import cnnzoo
from cnnzoo.errors import ConfigError
from cnnzoo.models.sequential import KerasSequential
from cnnzoo.training.optim import DEFAULT_OPTIMIZER


@dataclasses.dataclass(frozen=True)
class ModelFacts:
    """A network and what it was trained with, whether it came as a ClassifierModule or bare."""

    net: KerasSequential
    class_names: list[str]
    data_config: dict[str, Any] | None  # None or empty: the preprocessing was not recorded (a bare network)
    optimizer: dict[str, Any]
    label_smoothing: float = 0.0
    scheduler: dict[str, Any] | None = None

    @property
    def resize(self) -> list[int] | None:
        size = (self.data_config or {}).get("resize")
        return None if size is None else [size, size] if isinstance(size, int) else list(size)

    @property
    def normalize(self) -> dict[str, float] | None:
        norm = (self.data_config or {}).get("normalize")
        return None if not norm else {"mean": float(norm["mean"]), "std": float(norm["std"])}

    @property
    def scaling(self) -> str | None:
        """The preprocessing as a formula of the uint8 pixels ``x``; None when not recorded."""
        if not self.data_config:
            return None
        norm = self.normalize
        return f"(x / 255 - {norm['mean']:g}) / {norm['std']:g}" if norm else "x / 255"

    def require_scaling(self, fmt: str) -> str:
        if self.scaling is None:
            raise ConfigError(f"format={fmt}: the model records no data config, so the input scaling the file "
                              "must apply is unknown; export a checkpoint written by cnnzoo.train")
        return self.scaling


def model_facts(module_or_net: Any) -> ModelFacts:
    """The facts of a ``ClassifierModule`` (its hparams) or of a bare ``KerasSequential``."""
    if isinstance(module_or_net, KerasSequential):
        net = module_or_net
        return ModelFacts(net, [str(i) for i in range(net.num_classes)], None, dict(DEFAULT_OPTIMIZER))
    hparams = module_or_net.hparams
    return ModelFacts(
        net=module_or_net.net,
        class_names=list(module_or_net.class_names),
        data_config=_plain(hparams.get("data_config")),
        optimizer=_plain(hparams.get("optimizer")) or dict(DEFAULT_OPTIMIZER),
        label_smoothing=float(hparams.get("label_smoothing") or 0.0),
        scheduler=_plain(hparams.get("scheduler")),
    )


def _plain(value: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def keras_input(facts: ModelFacts) -> dict[str, Any]:
    """The input of a Keras file: NHWC float32 at the network's size, scaled by the caller."""
    shape = facts.net.input_shape
    return {"layout": "NHWC" if len(shape) == 3 else "NF", "shape": [None, *shape[1:], shape[0]] if len(shape) == 3
            else [None, *shape], "dtype": "float32", "scaling": facts.scaling, "normalize": facts.normalize,
            "resize_before": facts.resize, "applied": "by the caller, before the model"}


def deploy_input(facts: ModelFacts, fmt: str) -> dict[str, Any]:
    """The input of an ONNX/TorchScript/torch.export file: raw uint8 NCHW pixels, scaled inside."""
    return {"name": "images", "layout": "NCHW", "shape": ["batch", *facts.net.input_shape], "dtype": "uint8",
            "range": [0, 255], "scaling": facts.require_scaling(fmt), "normalize": facts.normalize,
            "resize_before": facts.resize, "applied": "inside the file"}


def describe(facts: ModelFacts, input_spec: dict[str, Any]) -> dict[str, Any]:
    """Everything a file states about itself (JSON-ready)."""
    return {
        "cnnzoo_version": cnnzoo.__version__,
        "arch": facts.net.name,
        "class_names": list(facts.class_names),
        "input": input_spec,
        "output": {"name": "probabilities", "shape": ["batch", facts.net.num_classes],
                   "activation": facts.net.output_activation},
    }


def contract_line(input_spec: dict[str, Any], num_classes: int, where: str) -> str:
    """The input contract in one line: shape, dtype, scaling, the class names' count and home."""
    shape = "[" + ", ".join("batch" if d in (None, "batch") else str(d) for d in input_spec["shape"]) + "]"
    if input_spec["dtype"] == "uint8":
        scaling = f"raw pixels 0..255 (the file computes {input_spec['scaling']} itself)"
    elif input_spec["scaling"]:
        scaling = f"give it {input_spec['scaling']} of the uint8 pixels x"
    else:
        scaling = "scaling not recorded (a network exported without its data config)"
    resize = input_spec["resize_before"]
    resize_text = f"; resize images to {resize[0]}x{resize[1]} first (bilinear)" if resize else ""
    name = f" \"{input_spec['name']}\"" if "name" in input_spec else ""
    return (f"input{name}: {input_spec['dtype']} {input_spec['layout']} {shape}, {scaling}{resize_text}; "
            f"{num_classes} class names in {where}")
