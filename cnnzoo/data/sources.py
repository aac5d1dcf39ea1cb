"""The three datasets as data: where their files may live, their class names and label mapping.

A dataset here is a small frozen record plus one ``load(data_dir)`` that returns uint8 arrays
``{"train": (images N x H x W, labels N), "test": (...)}`` with labels already mapped to
contiguous class indices.  The DataModules never see a file name; adding a location or a file
name variant is a one-line change here.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnzoo.data.cache import cached_arrays
from cnnzoo.data.readers import parse_label_csv, read_csv_bytes, read_idx_pair
from cnnzoo.errors import DataError, DataNotFoundError

SPLITS = ("train", "test")
DOWNLOAD_TIMEOUT_S = 5.0

Arrays = dict[str, tuple[np.ndarray, np.ndarray]]


def default_data_dir() -> Path:
    """``$CNNZOO_DATA_DIR`` when set, else ``./data``."""
    return Path(os.environ.get("CNNZOO_DATA_DIR") or "data")


def _first_existing(folder: Path, names: list[str]) -> Path | None:
    for name in names:
        path = folder / name
        if path.is_file() or (path.parent.suffix == ".zip" and path.parent.is_file()):
            return path
    return None


@dataclass(frozen=True)
class IdxDataset:
    """MNIST-style dataset: four IDX files, optionally gzipped, in one of several folders."""

    name: str
    class_names: tuple[str, ...]
    folders: tuple[str, ...]  # relative to data_dir
    system_folders: tuple[str, ...] = ()  # absolute, e.g. where a Debian package installs it
    torchvision_name: str = ""  # torchvision.datasets class able to download it
    advice: str = ""

    def files(self, split: str) -> dict[str, list[str]]:
        prefix = "train" if split == "train" else "t10k"
        return {
            kind: [f"{prefix}-{kind}-idx{dim}-ubyte{gz}" for gz in (".gz", "")]
            + [f"{prefix}-{kind}.idx{dim}-ubyte{gz}" for gz in (".gz", "")]
            for kind, dim in (("images", 3), ("labels", 1))
        }

    def search_path(self, data_dir: Path) -> list[Path]:
        return [data_dir / f for f in self.folders] + [Path(f) for f in self.system_folders]

    def _locate(self, data_dir: Path) -> dict[str, tuple[Path, Path]] | None:
        """Paths of all four files from the first folder holding any; ``None`` if none holds any."""
        for folder in self.search_path(data_dir):
            found = {
                (split, kind): _first_existing(folder, names)
                for split in SPLITS
                for kind, names in self.files(split).items()
            }
            if not any(found.values()):
                continue
            missing = [self.files(split)[kind][0] for (split, kind), path in found.items() if path is None]
            if missing:
                raise DataNotFoundError(f"{folder}: {self.name} is incomplete, missing {', '.join(missing)} (or unzipped)")
            return {split: (found[split, "images"], found[split, "labels"]) for split in SPLITS}
        return None

    def _download(self, data_dir: Path) -> str:
        """Try torchvision's downloader into ``data_dir``; returns why it failed ('' on success)."""
        import torchvision.datasets

        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        try:
            for train in (True, False):
                getattr(torchvision.datasets, self.torchvision_name)(str(data_dir), train=train, download=True)
            return ""
        except Exception as e:  # noqa: BLE001 - any network/IO failure becomes the "where to put files" error
            return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        finally:
            socket.setdefaulttimeout(previous)

    def load(self, data_dir: Path, download: bool = False) -> Arrays:
        paths = self._locate(data_dir)
        reason = "download=false"
        if paths is None and download and self.torchvision_name:
            reason = self._download(data_dir) or "downloaded files not found"
            paths = self._locate(data_dir)
        if paths is None:
            tried = ", ".join(str(p) for p in self.search_path(data_dir))
            names = ", ".join(self.files(s)[k][0] for s in SPLITS for k in ("images", "labels"))
            raise DataNotFoundError(
                f"{self.name} not found (looked in {tried}; download: {reason}). "
                f"Put {names} in {data_dir / self.folders[0]}/ (set data.data_dir=... or CNNZOO_DATA_DIR){self.advice}"
            )
        return {split: read_idx_pair(*paths[split], num_classes=len(self.class_names)) for split in SPLITS}


@dataclass(frozen=True)
class CsvDataset:
    """Kaggle-style dataset: ``label,pixel1..pixel784`` CSVs (plain, .gz, or inside archive.zip)."""

    name: str
    class_names: tuple[str, ...]
    raw_labels: tuple[int, ...]  # label values in the files, in class-index order
    folder: str
    file_names: dict[str, tuple[str, ...]]  # split -> accepted names, first is canonical
    advice: str = ""

    def candidates(self, split: str) -> list[str]:
        names = self.file_names[split]
        return [n + gz for n in names for gz in ("", ".gz")] + [f"archive.zip/{n}" for n in names]

    def load(self, data_dir: Path, download: bool = False) -> Arrays:
        folder = data_dir / self.folder
        paths = {split: _first_existing(folder, self.candidates(split)) for split in SPLITS}
        missing = [self.file_names[s][0] for s, p in paths.items() if p is None]
        if missing:
            raise DataNotFoundError(
                f"{self.name}: {', '.join(missing)} not found in {folder} (also tried .csv.gz and archive.zip; "
                f"it cannot be downloaded automatically){self.advice}"
            )
        return {split: self._read(path) for split, path in paths.items()}

    def _read(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        on_disk = path.parent if path.parent.suffix == ".zip" else path

        def decode() -> dict[str, np.ndarray]:
            labels, images = parse_label_csv(read_csv_bytes(path), str(path))
            return {"images": images, "labels": self._class_indices(labels, path)}

        arrays = cached_arrays(on_disk, decode, name=f"{on_disk.name}.{path.name}" if on_disk != path else None)
        return arrays["images"], arrays["labels"]

    def _class_indices(self, labels: np.ndarray, path: Path) -> np.ndarray:
        lookup = np.full(max(self.raw_labels) + 1, -1, dtype=np.int64)
        lookup[list(self.raw_labels)] = np.arange(len(self.raw_labels))
        known = (labels >= 0) & (labels < len(lookup))
        indices = np.where(known, lookup[np.clip(labels, 0, len(lookup) - 1)], -1)
        bad = np.flatnonzero(indices < 0)
        if bad.size:
            allowed = ", ".join(map(str, self.raw_labels))
            raise DataError(f"{path}: line {bad[0] + 2}, field label: {labels[bad[0]]} is not one of {allowed}")
        return indices.astype(np.uint8)


_FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_SIGN_LABELS = tuple(label for label in range(25) if label != 9)  # no J (9) or Z (25): they need motion

MNIST = IdxDataset(
    name="MNIST",
    class_names=tuple(str(d) for d in range(10)),
    folders=("mnist", "MNIST/raw"),
    torchvision_name="MNIST",
)
FASHION_MNIST = IdxDataset(
    name="Fashion-MNIST",
    class_names=_FASHION_CLASSES,
    folders=("fashion_mnist", "FashionMNIST/raw"),
    system_folders=("/usr/share/datasets/fashion-mnist",),
    torchvision_name="FashionMNIST",
    advice=", or install the Debian package: apt-get install dataset-fashion-mnist",
)
SIGN_MNIST = CsvDataset(
    name="Sign-Language-MNIST",
    class_names=tuple(chr(ord("A") + label) for label in _SIGN_LABELS),
    raw_labels=_SIGN_LABELS,
    folder="sign_mnist",
    file_names={"train": ("sign_mnist_train.csv",), "test": ("sign_mnist_test.csv", "sign_mnist_valid.csv")},
    advice="; get sign_mnist_train.csv and sign_mnist_test.csv (or archive.zip) from Kaggle datamunge/sign-language-mnist",
)
