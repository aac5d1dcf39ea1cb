"""The three DataModules on generated files: layouts, splits, label mapping, batches, errors."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnzoo.data import FashionMNISTDataModule, MNISTDataModule, SignMNISTDataModule, TensorBatches
from cnnzoo.data import sources
from cnnzoo.errors import ConfigError, DataError, DataNotFoundError
from tests.conftest import SIGN_LABELS, write_idx_dataset, write_sign_dataset

MODULES = [MNISTDataModule, FashionMNISTDataModule, SignMNISTDataModule]


@pytest.mark.parametrize("module", MODULES)
def test_loaders_yield_float_nchw_and_class_indices(data_dir: Path, module):
    dm = module(data_dir=data_dir, batch_size=16)
    dm.setup()
    for loader in (dm.train_dataloader(), dm.test_dataloader()):
        images, labels = next(iter(loader))
        assert images.dtype == torch.float32 and images.shape == (16, *dm.input_shape)
        assert 0.0 <= images.min() and images.max() <= 1.0
        assert labels.dtype == torch.int64 and labels.max() < dm.num_classes
    assert len(dm.class_names) == dm.num_classes


def test_data_dir_defaults_to_env(data_dir: Path):
    assert MNISTDataModule().data_dir == data_dir


def test_mnist_validation_split_is_the_last_fraction_like_keras(data_dir: Path):
    dm = MNISTDataModule(data_dir=data_dir, validation=0.25)
    dm.setup()
    full = MNISTDataModule(data_dir=data_dir, validation=None)
    full.setup()
    all_x, all_y = full.splits["train"]
    split_at = int(96 * 0.75)
    assert torch.equal(dm.splits["train"][0], all_x[:split_at]) and torch.equal(dm.splits["val"][0], all_x[split_at:])
    assert torch.equal(dm.splits["val"][1], all_y[split_at:])
    assert "val" not in full.splits and full.val_dataloader() == []


def test_default_validation_follows_the_notebooks(data_dir: Path):
    assert MNISTDataModule(data_dir=data_dir).validation == 0.1
    assert FashionMNISTDataModule(data_dir=data_dir).validation is None
    sign = SignMNISTDataModule(data_dir=data_dir)
    sign.setup()
    assert sign.validation == "test" and sign.splits["val"][0] is sign.splits["test"][0]


def test_idx_values_survive_the_whole_path(tmp_path: Path):
    arrays = write_idx_dataset(tmp_path / "mnist", n_train=20, n_test=8)
    dm = MNISTDataModule(data_dir=tmp_path, validation=None, batch_size=8)
    images, labels = next(iter(dm.test_dataloader()))
    np.testing.assert_allclose(images[:, 0].numpy(), arrays["t10k"][0][:8] / 255.0, rtol=1e-6)
    assert labels.tolist() == arrays["t10k"][1][:8].tolist()


def test_torchvision_layout_and_uncompressed_files(tmp_path: Path):
    write_idx_dataset(tmp_path / "FashionMNIST" / "raw", gz=False)
    dm = FashionMNISTDataModule(data_dir=tmp_path)
    dm.setup()
    assert len(dm.splits["train"][0]) == 96 and dm.class_names[0] == "T-shirt/top"


def test_sign_labels_map_to_24_contiguous_classes_with_letter_names(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    arrays = write_sign_dataset(tmp_path / "sign_mnist", gz=False)
    dm = SignMNISTDataModule(data_dir=tmp_path)
    dm.setup()
    assert dm.num_classes == 24 and len(dm.class_names) == 24
    assert "J" not in dm.class_names and "Z" not in dm.class_names and dm.class_names[9] == "K"
    raw = arrays["train"][1]
    mapped = dm.splits["train"][1].numpy()
    assert [SIGN_LABELS[i] for i in mapped] == raw.tolist()
    assert sorted(set(mapped)) == list(range(24))
    np.testing.assert_array_equal(dm.splits["train"][0][:, 0].numpy(), arrays["train"][0])


@pytest.mark.parametrize("layout", ["valid_name", "zip"])
def test_sign_alternative_file_names(tmp_path: Path, monkeypatch, layout: str):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "sign_mnist"
    write_sign_dataset(folder, gz=False)
    if layout == "valid_name":
        (folder / "sign_mnist_test.csv").rename(folder / "sign_mnist_valid.csv")
    else:
        with zipfile.ZipFile(folder / "archive.zip", "w") as archive:
            for name in ("sign_mnist_train.csv", "sign_mnist_test.csv"):
                archive.write(folder / name, name)
                (folder / name).unlink()
    dm = SignMNISTDataModule(data_dir=tmp_path)
    dm.setup()
    assert len(dm.splits["train"][0]) == 72 and len(dm.splits["test"][0]) == 48


def test_sign_decoded_arrays_are_cached_and_invalidated(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "sign_mnist"
    write_sign_dataset(folder, n_train=30)
    SignMNISTDataModule(data_dir=tmp_path).setup()
    assert (folder / "sign_mnist_train.csv.gz.cnnzoo.npz").is_file()
    write_sign_dataset(folder, n_train=26, seed=9)  # the source changes: the cache must not be used
    dm = SignMNISTDataModule(data_dir=tmp_path)
    dm.setup()
    assert len(dm.splits["train"][0]) == 26


def test_cache_falls_back_when_the_data_folder_is_read_only(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "sign_mnist"
    write_sign_dataset(folder)
    folder.chmod(0o555)
    try:
        SignMNISTDataModule(data_dir=tmp_path).setup()
        assert not list(folder.glob("*.npz"))
        assert len(list((tmp_path / "cache" / "cnnzoo").glob("*.npz"))) == 2
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("label", [9, 25, -1])
def test_sign_label_outside_the_known_set(tmp_path: Path, monkeypatch, label: int):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "sign_mnist"
    write_sign_dataset(folder, gz=False)
    path = folder / "sign_mnist_train.csv"
    lines = path.read_bytes().split(b"\r\n")
    lines[4] = f"{label},".encode() + lines[4].split(b",", 1)[1]
    path.write_bytes(b"\r\n".join(lines))
    with pytest.raises(DataError, match=rf"sign_mnist_train.csv: line 5, field label: {label} is not one of 0, 1,"):
        SignMNISTDataModule(data_dir=tmp_path).setup()


def test_missing_data_dir_lists_paths_and_fails_fast(tmp_path: Path):
    started = time.monotonic()
    with pytest.raises(DataNotFoundError) as info:
        MNISTDataModule(data_dir=tmp_path / "nowhere").setup()
    assert time.monotonic() - started < 15
    message = str(info.value)
    assert "\n" not in message
    for part in ("MNIST not found", str(tmp_path / "nowhere" / "mnist"), "MNIST/raw", "train-images-idx3-ubyte.gz", "CNNZOO_DATA_DIR"):
        assert part in message


def test_missing_data_without_download(tmp_path: Path):
    with pytest.raises(DataNotFoundError, match="download: download=false"):
        MNISTDataModule(data_dir=tmp_path, download=False).setup()


def test_fashion_error_mentions_the_debian_package(tmp_path: Path, monkeypatch):
    fashion = sources.IdxDataset(**{**sources.FASHION_MNIST.__dict__, "system_folders": (str(tmp_path / "none"),)})
    monkeypatch.setattr(FashionMNISTDataModule, "source", fashion)
    with pytest.raises(DataNotFoundError, match="apt-get install dataset-fashion-mnist"):
        FashionMNISTDataModule(data_dir=tmp_path, download=False).setup()


def test_one_idx_file_missing_is_named(tmp_path: Path):
    write_idx_dataset(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataNotFoundError, match=r"mnist: MNIST is incomplete, missing t10k-labels-idx1-ubyte.gz"):
        MNISTDataModule(data_dir=tmp_path).setup()


def test_sign_missing_file_is_named(tmp_path: Path):
    write_sign_dataset(tmp_path / "sign_mnist")
    (tmp_path / "sign_mnist" / "sign_mnist_test.csv.gz").unlink()
    with pytest.raises(DataNotFoundError, match=r"Sign-Language-MNIST: sign_mnist_test.csv not found in .*Kaggle"):
        SignMNISTDataModule(data_dir=tmp_path).setup()


def test_resize_and_normalize(data_dir: Path):
    dm = SignMNISTDataModule(data_dir=data_dir, resize=[64, 64], normalize={"mean": 0.5, "std": 0.25}, batch_size=4)
    assert dm.input_shape == (1, 64, 64)
    images, _ = next(iter(dm.test_dataloader()))
    assert images.shape == (4, 1, 64, 64)
    assert images.min() >= -2.0 - 1e-6 and images.max() <= 2.0 + 1e-6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, r"data.batch_size=0: expected a positive integer"),
        ({"validation": 1.5}, r"data.validation=1.5: expected a fraction in \[0, 1\)"),
        ({"validation": "val"}, r"data.validation='val'"),
        ({"resize": [64]}, r"data.resize=\[64\]: expected null, a positive int or \[height, width\]"),
        ({"normalize": {"mean": 0.1}}, r"data.normalize=\{'mean': 0.1\}: expected null or \{mean: float, std: float > 0\}"),
    ],
)
def test_bad_options_are_config_errors(kwargs: dict, message: str):
    with pytest.raises(ConfigError, match=message):
        MNISTDataModule(**kwargs)


# --- TensorBatches --------------------------------------------------------------------------------


def _batches(n: int = 10, **kwargs) -> TensorBatches:
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1)
    return TensorBatches(images, torch.arange(n), 4, **kwargs)


def test_batches_cover_every_sample_once_per_epoch():
    loader = _batches(shuffle=True, seed=3)
    assert len(loader) == 3
    epoch0 = torch.cat([y for _, y in loader])
    epoch1 = torch.cat([y for _, y in loader])
    assert sorted(epoch0.tolist()) == list(range(10)) and not torch.equal(epoch0, epoch1)
    assert torch.equal(torch.cat([y for _, y in _batches(shuffle=True, seed=3)]), epoch0)  # repeatable
    resumed = _batches(shuffle=True, seed=3, current_epoch=lambda: 1)  # the trainer's epoch count
    assert torch.equal(torch.cat([y for _, y in resumed]), epoch1)  # a resumed run continues the sequence


def test_batches_images_match_labels_and_drop_last():
    loader = _batches(shuffle=True, drop_last=True)
    assert len(loader) == 2
    for images, labels in loader:
        assert torch.allclose(images.flatten(), labels.float() / 255)


def test_batches_shard_across_ranks_without_overlap():
    shards = [torch.cat([y for _, y in _batches(n=11, shuffle=True, rank=r, world_size=2)]) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 5
    assert not set(shards[0].tolist()) & set(shards[1].tolist())
