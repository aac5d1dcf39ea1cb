"""Open a cnnzoo checkpoint for evaluate / predict / resume, and pair it with data that fits it.

A checkpoint carries the network's hyper-parameters and the data config it was trained with
(``ClassifierModule``'s ``data_config``), so ``evaluate`` and ``predict`` need nothing but its path.
Everything that can go wrong here is a user mistake (wrong path, a file that is not a checkpoint,
a checkpoint of another model, data with another class count or image size), so each one is a
typed one-line error instead of a ``KeyError`` or a size-mismatch traceback from ``load_state_dict``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cnnzoo.data import InMemoryDataModule
from cnnzoo.data.config import check_fits as check_data_fits
from cnnzoo.errors import ConfigError, ModelError
from cnnzoo.models.checkpoint import REQUIRED_HPARAMS, read_checkpoint, weights_problem
from cnnzoo.training.module import ClassifierModule

__all__ = ["REQUIRED_HPARAMS", "check_fits", "check_resumable", "datamodule_for", "load_classifier", "open_model",
           "read_checkpoint"]


def load_classifier(path: str | Path, field: str = "ckpt_path") -> ClassifierModule:
    """The ``ClassifierModule`` saved in ``path``, on CPU, in eval mode."""
    checkpoint = read_checkpoint(path, field)
    try:
        module = ClassifierModule(**checkpoint["hyper_parameters"])
    except ModelError as e:  # hyper-parameters that describe no network (an input shape of (1, 2))
        raise ModelError(f"{field}={path}: {e}") from None
    problem = weights_problem(module.state_dict(), checkpoint["state_dict"])
    if problem:
        raise ModelError(f"{field}={path}: its weights are not those of its architecture "
                         f"{module.hparams.arch} ({problem}); is it from another model?")
    module.load_state_dict(checkpoint["state_dict"])
    return module.eval()


def open_model(path: str | Path, data: DictConfig | None = None, keras_needs_data: bool = True) -> ClassifierModule:
    """A cnnzoo checkpoint, or a Keras file (``.h5``/``.keras``, told apart by content) as the same
    kind of model, in eval mode on CPU.  A Keras file records no data: ``data`` gives its class
    names and preprocessing (required unless ``keras_needs_data`` is false)."""
    from cnnzoo.interop.keras_files import is_keras_file

    if not is_keras_file(path):
        return load_classifier(path)
    if not data:
        if not keras_needs_data:
            return ClassifierModule(None, None, None, keras_model=str(path)).eval()
        raise ConfigError(f"keras_model={path}: choose the data to evaluate on with data=<mnist|fashion_mnist|sign_mnist>")
    datamodule = instantiate(data)
    module = ClassifierModule(None, datamodule.num_classes, list(datamodule.input_shape),
                              class_names=list(datamodule.class_names), keras_model=str(path),
                              data_config=OmegaConf.to_container(data, resolve=True))
    return module.eval()


def save_module(module: ClassifierModule, path: str | Path) -> Path:
    """``module`` as a checkpoint that ``load_classifier`` and Lightning's ``load_from_checkpoint``
    read (weights and hyper-parameters; no trainer state), written atomically."""
    import lightning

    from cnnzoo.atomic import atomic_path

    checkpoint = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                  "pytorch-lightning_version": lightning.__version__}
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
    return Path(path)


def check_resumable(path: str | Path, model: ClassifierModule) -> dict[str, Any]:
    """Resuming ``path`` into ``model`` needs its trainer state (``save_module`` writes none) and
    must not change the architecture, classes or input shape; returns the checkpoint."""
    checkpoint = read_checkpoint(path)
    if "optimizer_states" not in checkpoint:
        raise ConfigError(f"ckpt_path={path}: holds weights only (no optimizer or loop state, as Model.save writes), "
                          "so training cannot resume from it; it can be evaluated, predicted or loaded with cnnzoo.load")
    stored = checkpoint["hyper_parameters"]
    for key in REQUIRED_HPARAMS:
        if _plain(stored[key]) != _plain(model.hparams[key]):
            raise ConfigError(
                f"ckpt_path={path}: checkpoint has {key}={stored[key]!r} but this run's model has "
                f"{key}={model.hparams[key]!r}; resume with the model and data it was trained on"
            )
    return checkpoint


def _plain(value: Any) -> Any:
    """Tuples and lists compare equal when they hold the same values."""
    return list(value) if isinstance(value, (list, tuple)) else value


def datamodule_for(module: ClassifierModule, data: DictConfig | None = None) -> InMemoryDataModule:
    """``data`` if given, else the checkpoint's own data config; checked against the network.

    The checkpoint's ``data_dir`` is not reused: where the files live is a property of the machine
    (``$CNNZOO_DATA_DIR`` or ``./data``), not of the model.
    """
    if data is None:
        stored = module.hparams.get("data_config")
        if not stored:
            raise ConfigError("the checkpoint records no data config; choose one with data=<mnist|fashion_mnist|sign_mnist>")
        data = OmegaConf.create({**stored, "data_dir": None})
    datamodule = instantiate(data)
    check_fits(module, datamodule)
    return datamodule


def check_fits(module: ClassifierModule, datamodule: InMemoryDataModule) -> None:
    """The data must have the network's class count and per-sample input shape."""
    check_data_fits(module.hparams, datamodule)
