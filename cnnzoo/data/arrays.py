"""A user's NumPy arrays as a DataModule: what Keras' ``model.fit(x, y, validation_data=...)`` takes.

Why this module exists: ``cnnzoo.keras_api.Sequential.fit`` trains through the same
LightningModule and Trainer as every recipe, so the arrays a learner holds must become the same
kind of DataModule.  Values are used as given, as Keras uses them (the notebooks divide by 255
themselves); layouts are Keras' (``(N, H, W, C)``, or ``(N, H, W)`` for gray images), labels
integers or one-hot rows.
"""

from __future__ import annotations

import numpy as np
import torch

from cnnzoo.data.datamodule import Split, TensorDataModule
from cnnzoo.data.images import numeric_array
from cnnzoo.errors import DataError


def as_images(x, what: str = "x") -> torch.Tensor:
    """Keras-layout image arrays ``(N, H, W, C)`` / ``(N, H, W)`` as a float32 ``(N, C, H, W)``
    tensor, values unchanged."""
    t = torch.as_tensor(numeric_array(x, what, "images (N, H, W, C) or (N, H, W) of numbers").astype(np.float32))
    if t.ndim == 4:
        return t.permute(0, 3, 1, 2).contiguous()
    if t.ndim == 3:
        return t.unsqueeze(1)
    raise DataError(f"{what} of shape {tuple(t.shape)}: expected images (N, H, W, C) or (N, H, W)")


def as_labels(y, num_classes: int, what: str = "y") -> torch.Tensor:
    """Integer labels ``(N,)`` or one-hot rows ``(N, classes)`` as int64 class indices."""
    t = torch.as_tensor(numeric_array(y, what, f"integer labels (N,) or one-hot rows (N, {num_classes})"))
    if t.ndim == 2 and t.shape[1] == num_classes:
        t = t.argmax(dim=1)
    elif t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.ndim != 1 or t.is_floating_point() and not torch.equal(t, t.round()):
        raise DataError(f"{what} of shape {tuple(t.shape)}: expected integer labels (N,) or one-hot rows (N, {num_classes})")
    t = t.long()
    if len(t) and (t.min() < 0 or t.max() >= num_classes):
        raise DataError(f"{what}: labels {t.min().item()}..{t.max().item()} do not fit a {num_classes}-class model "
                        f"(expected 0..{num_classes - 1})")
    return t


class ArrayDataModule(TensorDataModule):
    """``train`` (and optional ``val``) ``(images, labels)`` tensors, batched as every DataModule."""

    name = "arrays"

    def __init__(self, train: Split, val: Split | None, num_classes: int, batch_size: int = 32,
                 shuffle: bool = True, seed: int = 42) -> None:
        super().__init__()
        for split, (images, labels) in (("x", train), *((("validation_data", val),) if val else ())):
            if len(images) != len(labels):
                raise DataError(f"{split}: {len(images)} samples but {len(labels)} labels")
        self.splits = {"train": train, **({"val": val} if val is not None else {})}
        self.num_classes, self.batch_size, self.shuffle, self.seed = num_classes, batch_size, shuffle, seed
        self.class_names = tuple(str(i) for i in range(num_classes))
        self.preprocess = lambda images: images  # Keras takes the arrays as they are

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.splits["train"][0].shape[1:])

    def setup(self, stage: str | None = None) -> None:
        """The splits are the arrays given."""


def load_data(name: str, data_dir: str | None = None):
    """Keras' ``datasets.<name>.load_data()`` for the three datasets: ``((x_train, y_train),
    (x_test, y_test))`` as NumPy uint8 images ``(N, 28, 28)`` and int64 labels ``0..classes-1``
    (Sign-MNIST's letters A..Y without J become 0..23), read from the same files and caches the
    DataModules use.  ``name``: ``mnist``, ``fashion_mnist`` or ``sign_mnist``."""
    from cnnzoo.data.datamodule import FashionMNISTDataModule, MNISTDataModule, SignMNISTDataModule

    modules = {"mnist": MNISTDataModule, "fashion_mnist": FashionMNISTDataModule, "sign_mnist": SignMNISTDataModule}
    if name not in modules:
        raise DataError(f"load_data({name!r}): unknown dataset; expected one of {', '.join(modules)}")
    datamodule = modules[name](data_dir=data_dir, validation=None)
    datamodule.setup()
    return tuple((images[:, 0].numpy(), labels.numpy()) for images, labels in
                 (datamodule.splits["train"], datamodule.splits["test"]))


def class_names(name: str) -> list[str]:
    """The class names of a dataset, index by index (Sign-MNIST: A..Y without J)."""
    from cnnzoo.data.sources import FASHION_MNIST, MNIST, SIGN_MNIST

    return list({"mnist": MNIST, "fashion_mnist": FASHION_MNIST, "sign_mnist": SIGN_MNIST}[name].class_names)
