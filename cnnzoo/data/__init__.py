"""Datasets: readers for IDX and Kaggle CSV files, and the in-memory LightningDataModules.

The names below are imported on first use (PEP 562), so ``cnnzoo.data.config`` (sizes and test
images without Lightning, for ``summary`` and ``predict``) does not import Lightning.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "TensorBatches": "cnnzoo.data.batches",
    "FashionMNISTDataModule": "cnnzoo.data.datamodule",
    "InMemoryDataModule": "cnnzoo.data.datamodule",
    "MNISTDataModule": "cnnzoo.data.datamodule",
    "SignMNISTDataModule": "cnnzoo.data.datamodule",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    """``cnnzoo.data.X`` imports X's module on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cnnzoo.data' has no attribute {name!r}")
