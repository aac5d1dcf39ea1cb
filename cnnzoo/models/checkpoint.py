"""The network in a cnnzoo checkpoint, read with ``torch.load`` alone (no Lightning).

Why this module exists: ``predict`` and ``export`` need only the network and the facts a checkpoint
records about it (the layer list, class names, input shape, the data config it was trained on);
building it from them here, instead of through the LightningModule, keeps those entry points from
importing Lightning, torchmetrics and their imports (``docs/performance.md``: a whole run as fast
as its steps).  ``cnnzoo.training.checkpoints`` reads checkpoints through the same functions.
"""

from __future__ import annotations

import dataclasses
import pickle
import re
from collections import OrderedDict
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnzoo.errors import ModelError
from cnnzoo.models.layers import specs_from_configs
from cnnzoo.models.registry import specs
from cnnzoo.models.sequential import build_sequential

REQUIRED_HPARAMS = ("arch", "num_classes", "input_shape")
NET_PREFIX = "net."  # ClassifierModule keeps the network as .net
ACCEPTED = "expected a .ckpt file written by cnnzoo.train or Model.save, or a Keras .keras/.h5 file"


def read_checkpoint(path: str | Path, field: str = "ckpt_path") -> dict[str, Any]:
    """The checkpoint dict in ``path``, after checking it is a readable cnnzoo one."""
    path = Path(path)
    if not path.is_file():
        what = "a directory" if path.is_dir() else "no such file"
        raise ModelError(f"{field}={path}: {what}; expected a .ckpt file written by cnnzoo.train")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, OSError, ValueError) as e:
        reason = " ".join(str(e).split())  # one line, whatever the unpickler said
        raise ModelError(f"{field}={path}: not a readable PyTorch checkpoint ({type(e).__name__}: {reason})") from None
    except (AttributeError, ImportError) as e:  # torch.save(model): the class of a user's own code
        raise ModelError(f"{field}={path}: a pickled {_missing_class(e)} that cnnzoo cannot rebuild "
                         f"(its code is not importable here); {ACCEPTED}") from None
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    missing = [k for k in REQUIRED_HPARAMS if not isinstance(hparams, dict) or k not in hparams]
    if missing or not isinstance(checkpoint.get("state_dict"), dict):
        raise ModelError(f"{field}={path}: not a cnnzoo checkpoint (no {', '.join(missing) or 'state_dict'})")
    return checkpoint


def _missing_class(error: AttributeError | ImportError) -> str:
    """What the unpickler could not find: ``object of class 'Net'`` or ``object from module 'mylib'``."""
    if isinstance(error, ImportError) and error.name:
        return f"object from module {error.name!r}"
    found = re.search(r"attribute '([^']+)'", str(error))
    return f"object of class {found[1]!r}" if found else "object"


def weights_problem(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> str:
    """The first differences between two state dicts, in words ("" when they fit)."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [f"{k} is {list(found[k].shape)}, expected {list(v.shape)}"
              for k, v in expected.items() if k in found and found[k].shape != v.shape]
    parts = [f"{label} {items[0]}" + (f" and {len(items) - 1} more" if len(items) > 1 else "")
             for label, items in (("missing", missing), ("unexpected", unexpected), ("", shapes)) if items]
    return "; ".join(part.strip() for part in parts)


@dataclasses.dataclass
class CheckpointNetwork:
    """A checkpoint's network (eval mode, CPU) with what the checkpoint says about it."""

    net: nn.Module
    hparams: dict[str, Any]

    @property
    def class_names(self) -> list[str]:
        names = self.hparams.get("class_names")
        return list(names) if names else [str(i) for i in range(self.hparams["num_classes"])]

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """What the Keras model returns (class probabilities for a softmax head)."""
        return self.net.keras_output(images)


def load_network(path: str | Path, field: str = "ckpt_path") -> CheckpointNetwork:
    """The network saved in ``path`` by ``cnnzoo.train``, rebuilt from its layer list, weights loaded."""
    checkpoint = read_checkpoint(path, field)
    hparams = dict(checkpoint["hyper_parameters"])
    layers = hparams.get("layers")
    try:  # hyper-parameters that describe no network (an input shape of (1, 2)) name the file
        layer_list = specs_from_configs(layers) if layers else specs(hparams["arch"], hparams["num_classes"])
        net = build_sequential(layer_list, tuple(hparams["input_shape"]), name=hparams["arch"] or "sequential")
    except ModelError as e:
        raise ModelError(f"{field}={path}: {e}") from None
    found = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith(NET_PREFIX)}
    problem = weights_problem({NET_PREFIX + k: v for k, v in net.state_dict().items()}, found)
    if problem:
        raise ModelError(f"{field}={path}: its weights are not those of its architecture "
                         f"{hparams['arch']} ({problem}); is it from another model?")
    # The keys were compared above; strict=False only lets BatchNorm's own num_batches_tracked
    # (which KerasBatchNorm does not keep) pass when a file carries no module versions.
    net.load_state_dict(_unprefixed(checkpoint["state_dict"], found), strict=False)
    return CheckpointNetwork(net.eval(), hparams)


def _unprefixed(state_dict: dict, found: dict) -> OrderedDict:
    """``found`` without the ``net.`` prefix, with the module versions torch keeps in ``_metadata``
    (without them BatchNorm takes the weights for a pre-1.0 file and adds ``num_batches_tracked``)."""
    weights = OrderedDict((k[len(NET_PREFIX):], v) for k, v in found.items())
    metadata = getattr(state_dict, "_metadata", None) or {}
    weights._metadata = {key[len(NET_PREFIX):] if key.startswith(NET_PREFIX) else "": value  # type: ignore[attr-defined]
                         for key, value in metadata.items() if key == NET_PREFIX[:-1] or key.startswith(NET_PREFIX)}
    return weights
