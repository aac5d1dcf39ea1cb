"""The real datasets load with their published sizes (CNNZOO_DATA_DIR; Debian's Fashion-MNIST).

Skipped when the data is absent; under CI=true that is a failure instead (see conftest).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from cnnzoo.data import FashionMNISTDataModule, MNISTDataModule, SignMNISTDataModule
from cnnzoo.errors import DataNotFoundError
from tests.conftest import real_data_dir

pytestmark = pytest.mark.realdata


def _load(module, **kwargs):
    dm = module(data_dir=real_data_dir(), validation=None, download=False, **kwargs)
    try:
        dm.setup()
    except DataNotFoundError as e:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(str(e))
    return dm


@pytest.mark.parametrize(
    ("module", "n_train", "n_test", "classes"),
    [(MNISTDataModule, 60_000, 10_000, 10), (FashionMNISTDataModule, 60_000, 10_000, 10), (SignMNISTDataModule, 27_455, 7_172, 24)],
)
def test_real_dataset_sizes(module, n_train: int, n_test: int, classes: int, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # a cold CSV parse, not a cached one
    dm = _load(module)
    (train_x, train_y), (test_x, test_y) = dm.splits["train"], dm.splits["test"]
    assert train_x.shape == (n_train, 1, 28, 28) and test_x.shape == (n_test, 1, 28, 28)
    assert train_x.dtype == torch.uint8
    assert set(train_y.unique().tolist()) == set(range(classes)) == set(test_y.unique().tolist())
    assert dm.num_classes == classes


def test_real_mnist_label_counts_match_the_published_ones():
    labels = _load(MNISTDataModule).splits["train"][1]
    assert torch.bincount(labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_real_sign_mnist_test_label_counts():
    labels = _load(SignMNISTDataModule).splits["test"][1]
    expected = [331, 432, 310, 245, 498, 247, 348, 436, 288, 331, 209, 394, 291, 246, 347, 164, 144, 246, 248, 266, 346, 206, 267, 332]
    assert torch.bincount(labels).tolist() == expected
