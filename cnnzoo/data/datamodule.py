"""LightningDataModules for MNIST, Fashion-MNIST and Sign-Language-MNIST.

All three share one in-memory design: ``TensorDataModule`` serves splits held as tensors through
``TensorBatches`` (index, convert, scale per batch); ``InMemoryDataModule`` fills them from a
dataset's files, decoded once into uint8 tensors and split with Keras semantics, and a subclass
only names its source and its notebook's validation split.  ``cnnzoo.data.arrays`` fills them
from a user's NumPy arrays (Keras' ``model.fit(x, y)``).

``validation`` follows Keras' ``fit``: a fraction takes the *last* part of the training arrays
before any shuffling (``validation_split``); ``"test"`` validates on the test file (what the ASL
course calls ``sign_mnist_valid.csv``); ``None`` trains without validation.
"""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import torch

from cnnzoo.data.augment import create_augmentation
from cnnzoo.data.batches import BatchTransform, Preprocess, TensorBatches
from cnnzoo.data.config import IMAGE_SIZE, check_normalize, check_size
from cnnzoo.data.sources import FASHION_MNIST, MNIST, SIGN_MNIST, CsvDataset, IdxDataset, default_data_dir
from cnnzoo.errors import ConfigError

Split = tuple[torch.Tensor, torch.Tensor]


class TensorDataModule(L.LightningDataModule):
    """Splits (``train``, ``val``, ``test``) held as ``(images N x C x H x W, labels)`` tensors and
    served as ``TensorBatches``; subclasses fill ``splits`` and set the attributes below."""

    batch_size: int
    seed: int
    drop_last: bool = False
    shuffle: bool = True
    preprocess: BatchTransform
    augment = None
    splits: dict[str, Split]

    @property
    def has_validation(self) -> bool:
        return "val" in self.splits

    def _batches(self, split: str, shuffle: bool = False, drop_last: bool = False,
                 augment: BatchTransform | None = None) -> TensorBatches:
        self.setup()
        images, labels = self.splits[split]
        trainer = self.trainer
        if trainer is not None:
            device = trainer.strategy.root_device
            images, labels = images.to(device), labels.to(device)
        return TensorBatches(
            images,
            labels,
            self.batch_size,
            shuffle=shuffle,
            seed=self.seed,
            drop_last=drop_last,
            transform=self.preprocess,
            augment=augment,
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
            current_epoch=(lambda: trainer.current_epoch) if trainer is not None else None,
        )

    def train_dataloader(self) -> TensorBatches:
        return self._batches("train", shuffle=self.shuffle, drop_last=self.drop_last, augment=self.augment)

    def val_dataloader(self) -> TensorBatches | list:
        return self._batches("val") if self.has_validation else []

    def test_dataloader(self) -> TensorBatches:
        return self._batches("test")

    def predict_dataloader(self) -> TensorBatches:
        return self._batches("test")


class InMemoryDataModule(TensorDataModule):
    """A whole dataset held as uint8 tensors; subclasses set ``source`` and ``default_validation``."""

    source: IdxDataset | CsvDataset
    default_validation: float | str | None = None
    image_size = IMAGE_SIZE

    def __init__(
        self,
        data_dir: str | Path | None = None,
        batch_size: int = 32,
        validation: float | str | None = "default",
        resize: tuple[int, int] | list[int] | int | None = None,
        normalize: dict[str, float] | None = None,
        seed: int = 42,
        drop_last: bool = False,
        download: bool = True,
        augment: dict[str, float | bool] | None = None,
    ) -> None:
        super().__init__()
        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        self.batch_size = _positive_int(batch_size, "data.batch_size")
        self.validation = self.default_validation if validation == "default" else _check_validation(validation)
        self.size = check_size(resize) or self.image_size
        self.preprocess = Preprocess(self.size, **check_normalize(normalize))
        self.augment = create_augmentation(augment)  # training batches only
        self.seed, self.drop_last, self.download = seed, drop_last, download
        self.splits: dict[str, Split] = {}

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.source.class_names

    @property
    def num_classes(self) -> int:
        return len(self.source.class_names)

    @property
    def has_validation(self) -> bool:  # known before the files are read
        return self.validation == "test" or bool(self.validation)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Per-sample (C, H, W) the network sees, after any resize."""
        return (1, *self.size)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        arrays = self.source.load(self.data_dir, download=self.download)
        (train_x, train_y), (test_x, test_y) = (
            (torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y).long()) for x, y in (arrays["train"], arrays["test"])
        )
        self.splits["test"] = (test_x, test_y)
        if self.has_validation and self.validation != "test":
            split_at = math.floor(len(train_x) * (1.0 - self.validation))  # Keras: the last fraction
            self.splits["train"] = (train_x[:split_at], train_y[:split_at])
            self.splits["val"] = (train_x[split_at:], train_y[split_at:])
        else:
            self.splits["train"] = (train_x, train_y)
            if self.validation == "test":
                self.splits["val"] = (test_x, test_y)


class MNISTDataModule(InMemoryDataModule):
    """MNIST; validates like Deitel's notebook (``validation_split=0.1``), reports the test set."""

    source = MNIST
    default_validation = 0.1


class FashionMNISTDataModule(InMemoryDataModule):
    """Fashion-MNIST; trains on train and reports test, as notebook 004 does."""

    source = FASHION_MNIST
    default_validation = None


class SignMNISTDataModule(InMemoryDataModule):
    """Sign-Language-MNIST (24 letters, no J/Z); validates on the test file like the ASL course."""

    source = SIGN_MNIST
    default_validation = "test"


def _positive_int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{field}={value!r}: expected a positive integer")
    return value


def _check_validation(value: object) -> float | str | None:
    if value is None or value == "test":
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1:
        return float(value)
    raise ConfigError(f"data.validation={value!r}: expected a fraction in [0, 1) (Keras validation_split), 'test' or null")
