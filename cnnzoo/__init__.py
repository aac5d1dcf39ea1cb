"""cnnzoo: the classic Keras teaching CNNs, rebuilt on PyTorch Lightning + Hydra.

The package shows the architecture: ``cnnzoo.data`` (readers, batches, DataModules),
``cnnzoo.models`` (Keras-equivalent layers, the notebooks' layer lists, the builder, summaries),
``cnnzoo.training`` (the LightningModule, metrics, optimizers, callbacks, faults, checkpoints),
``cnnzoo.interop`` (Keras files in, deployable files out), ``cnnzoo.recipes`` (the recipes in
``conf/`` as data) and thin Hydra entry points (``python -m cnnzoo.train|evaluate|predict|summary|export``).

``import cnnzoo`` is cheap: the names below are imported on first use (PEP 562), so nothing pulls
in torch or Lightning before a function needs it.  ``cnnzoo.fit/evaluate/predict/load/open_run``
are :mod:`cnnzoo.api`'s (``cnnzoo.evaluate`` and ``cnnzoo.predict`` stay callable once their
entry-point modules are imported); ``cnnzoo.summary`` is an entry point: summaries are
``cnnzoo.models.summary``.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> the module that defines it
_LAZY = {
    "fit": "cnnzoo.api",
    "evaluate": "cnnzoo.api",
    "predict": "cnnzoo.api",
    "load": "cnnzoo.api",
    "open_run": "cnnzoo.api",
    "sweep_results": "cnnzoo.api",
    "create": "cnnzoo.models",
    "list_models": "cnnzoo.models",
    "load_model": "cnnzoo.interop.keras_files",
    "load_weights": "cnnzoo.interop.keras_files",
    "recipe": "cnnzoo.recipes",
    "load_data": "cnnzoo.data.arrays",
    "class_names": "cnnzoo.data.arrays",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'cnnzoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
