"""A data config read without its DataModule: sizes, preprocessing and the test split.

Why this module exists: ``summary`` needs only a dataset's class count and input shape, ``predict``
only its preprocessing and test images.  A ``LightningDataModule`` gives them too, but importing
it imports Lightning, which costs an entry point more than the work it does.  ``data_spec`` reads
the same config keys the DataModules take (``conf/data/*.yaml``), with the same checks; for a
``_target_`` that is not one of cnnzoo's DataModules it returns None and the caller instantiates it.
No Lightning import here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cnnzoo.data.sources import FASHION_MNIST, MNIST, SIGN_MNIST, CsvDataset, IdxDataset, default_data_dir
from cnnzoo.errors import ConfigError

#: DataModule class name -> its source (``cnnzoo.data.datamodule``; a test checks they agree)
SOURCES: dict[str, IdxDataset | CsvDataset] = {
    "MNISTDataModule": MNIST, "FashionMNISTDataModule": FASHION_MNIST, "SignMNISTDataModule": SIGN_MNIST,
}
IMAGE_SIZE = (28, 28)
MAX_SIZE = 1024  # data.resize per side: the images are 28x28, and a 1024x1024 batch of 64 is already 256 MiB
SWITCHES = ("drop_last", "download")
MODULES = ("cnnzoo.data", "cnnzoo.data.datamodule")


@dataclasses.dataclass
class DataSpec:
    """What a cnnzoo DataModule with this config gives, without Lightning."""

    source: IdxDataset | CsvDataset
    size: tuple[int, int]
    normalize: dict[str, float]
    data_dir: Path
    download: bool = False
    splits: dict[str, Any] = dataclasses.field(default_factory=dict)

    name = property(lambda self: self.source.name)
    class_names = property(lambda self: self.source.class_names)
    num_classes = property(lambda self: len(self.source.class_names))
    input_shape = property(lambda self: (1, *self.size))

    @property
    def preprocess(self):
        from cnnzoo.data.batches import Preprocess

        return Preprocess(self.size, **self.normalize)

    def setup(self, stage: str | None = None) -> None:
        """``splits["test"]``: the test images (uint8, N x 1 x 28 x 28) and labels, as the DataModule's."""
        import torch

        if "test" not in self.splits:
            x, y = self.source.load(self.data_dir, download=self.download)["test"]
            self.splits["test"] = (torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y).long())


def data_spec(config: Mapping) -> DataSpec | None:
    """The ``DataSpec`` of a ``conf/data`` config; None when its ``_target_`` is not a cnnzoo DataModule."""
    module, _, name = str(config.get("_target_", "")).rpartition(".")
    if module not in MODULES or name not in SOURCES:
        return None
    check_data(config)
    data_dir = config.get("data_dir")
    return DataSpec(SOURCES[name], check_size(config.get("resize")) or IMAGE_SIZE,
                    check_normalize(config.get("normalize")), Path(data_dir) if data_dir else default_data_dir(),
                    config.get("download", False))


def check_switch(value: object, key: str) -> None:
    """A true/false value: any other text would read as true."""
    if not isinstance(value, bool):
        raise ConfigError(f"{key}={value!r}: expected true or false")


def check_data(config: Mapping) -> None:
    """The true/false keys of a data config (``data.drop_last``, ``data.download``)."""
    for key in SWITCHES:
        check_switch(config.get(key, False), f"data.{key}")


def check_size(value: object) -> tuple[int, int] | None:
    if value is None:
        return None
    size = (value, value) if isinstance(value, int) else tuple(value)  # type: ignore[arg-type]
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_SIZE for v in size):
        raise ConfigError(f"data.resize={value!r}: expected null, a positive int or [height, width], "
                          f"each at most {MAX_SIZE}")
    return size  # type: ignore[return-value]


def check_normalize(value: Mapping | None) -> dict[str, float]:
    if value is None:
        return {}
    keys = set(value)
    if keys != {"mean", "std"} or not float(value["std"]) > 0:
        raise ConfigError(f"data.normalize={dict(value)!r}: expected null or {{mean: float, std: float > 0}}")
    return {"mean": float(value["mean"]), "std": float(value["std"])}


def check_fits(hparams: Mapping, data: Any) -> None:
    """The data (a DataModule or ``DataSpec``) must have the network's class count and input shape."""
    arch, num_classes, shape = hparams["arch"], hparams["num_classes"], list(hparams["input_shape"])
    if data.num_classes != num_classes:
        raise ConfigError(
            f"model {arch} has {num_classes} classes but data {data.name} has "
            f"{data.num_classes}; use data with {num_classes} classes"
        )
    if list(data.input_shape) != shape:
        height, width = shape[-2:]
        raise ConfigError(
            f"model {arch} takes inputs of shape {shape} but data {data.name} "
            f"gives {list(data.input_shape)}; set data.resize=[{height},{width}]"
        )


def checkpoint_data(hparams: Mapping) -> Any:
    """The data a checkpoint was trained on (its ``data_config``), checked against its network: a
    ``DataSpec``, or the DataModule itself for a ``_target_`` outside cnnzoo.  The stored ``data_dir``
    is not reused: where the files live is a property of the machine (``$CNNZOO_DATA_DIR``)."""
    stored = hparams.get("data_config")
    if not stored:
        raise ConfigError("the checkpoint records no data config; choose one with data=<mnist|fashion_mnist|sign_mnist>")
    config = {**stored, "data_dir": None}
    data = data_spec(config)
    if data is None:
        from hydra.utils import instantiate

        data = instantiate(config)
    check_fits(hparams, data)
    return data
