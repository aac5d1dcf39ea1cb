"""Readers for the two on-disk formats the notebooks use: IDX (MNIST, Fashion-MNIST) and the
Kaggle Sign-Language-MNIST CSV.

Both decode straight into uint8 numpy arrays (images N x H x W, labels N) and turn every kind of
bad input into one ``DataError`` line naming the file and the line/field at fault.  The CSV path
is vectorised (one C-level parse of the whole file) because the 27,455-row training CSV must load
in seconds; only when that fast path rejects the file do we walk it line by line to say *where*.

torchvision's ``read_image_file``/``read_label_file`` are not used: they need uncompressed files
and fail with bare assertions, while we need gzip support and messages a user can act on.
"""

from __future__ import annotations

import gzip
import math
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from cnnzoo.errors import DataError

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension
CSV_PIXELS = 784
INTEGER_FIELD = re.compile(rb"\s*[+-]?\d+\s*")  # what numpy's text parser accepts as an integer


def read_bytes(path: Path) -> bytes:
    """Whole file contents, transparently un-gzipped when the name ends in ``.gz``."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as e:
        raise DataError(f"{path}: cannot read ({'truncated or corrupt gzip' if path.suffix == '.gz' else e})") from None


def parse_idx(data: bytes, source: str, expected_magic: int) -> np.ndarray:
    """Decode one IDX buffer (big-endian header: magic, then one uint32 per dimension)."""
    ndim = {IDX_IMAGES_MAGIC: 3, IDX_LABELS_MAGIC: 1}[expected_magic]
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(f"{source}: {len(data)} bytes is too short for an IDX header ({header_len} bytes expected)")
    magic, *dims = (int(v) for v in np.frombuffer(data, dtype=">u4", count=1 + ndim))
    if magic != expected_magic:
        kind = "images" if expected_magic == IDX_IMAGES_MAGIC else "labels"
        raise DataError(f"{source}: IDX magic number {magic}, expected {expected_magic} for an {kind} file")
    expected_len = header_len + math.prod(dims)
    if len(data) != expected_len:
        raise DataError(
            f"{source}: header says dimensions {tuple(dims)} ({expected_len} bytes) but the file holds {len(data)} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims).copy()  # writable


def read_idx_pair(images_path: Path, labels_path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W) and labels (N,) from a matching pair of IDX files, cross-checked."""
    images = parse_idx(read_bytes(images_path), str(images_path), IDX_IMAGES_MAGIC)
    labels = parse_idx(read_bytes(labels_path), str(labels_path), IDX_LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(f"{images_path}: {len(images)} images but {labels_path} holds {len(labels)} labels")
    if len(images) == 0:
        raise DataError(f"{images_path}: holds no images")
    bad = np.flatnonzero(labels >= num_classes)
    if bad.size:
        raise DataError(f"{labels_path}: label {labels[bad[0]]} at index {bad[0]} is outside 0..{num_classes - 1}")
    return images, labels


def read_csv_bytes(path: Path) -> bytes:
    """Bytes of a Kaggle CSV stored plain, gzipped, or as a member of Kaggle's ``archive.zip``.

    A member is addressed as ``archive.zip/sign_mnist_train.csv`` (the zip's path plus member name).
    """
    if path.parent.suffix == ".zip":
        try:
            with zipfile.ZipFile(path.parent) as archive:
                names = {Path(n).name: n for n in archive.namelist()}
                if path.name not in names:
                    raise DataError(f"{path.parent}: holds no member named {path.name}")
                return archive.read(names[path.name])
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
            raise DataError(f"{path.parent}: not a readable zip archive ({e})") from None
    return read_bytes(path)


def parse_label_csv(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Raw labels (N,) int64 and images (N, 28, 28) uint8 from Kaggle's ``label,pixel1..pixel784`` CSV."""
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the final newline
    if not lines or not lines[0].strip():
        raise DataError(f"{source}: empty file, expected the header 'label,pixel1,...,pixel784'")
    header = lines[0].decode("utf-8", "replace").strip().lstrip("\ufeff").split(",")
    expected_header = ["label"] + [f"pixel{i}" for i in range(1, CSV_PIXELS + 1)]
    if header != expected_header:
        raise DataError(f"{source}: line 1: {_header_problem(header, expected_header)}")
    rows = lines[1:]
    if not rows:
        raise DataError(f"{source}: holds a header but no data rows")
    for number, row in enumerate(rows, start=2):
        if row.count(b",") != CSV_PIXELS:
            raise DataError(f"{source}: line {number}: {row.count(b',') + 1} columns, expected {CSV_PIXELS + 1}")
    try:
        values = np.fromstring(b",".join(rows), dtype=np.int64, sep=",")  # noqa: NPY201 - fast C text parser
    except ValueError:
        values = None
    if values is None or values.size != len(rows) * (CSV_PIXELS + 1):
        _raise_first_bad_field(rows, source)
    table = values.reshape(len(rows), CSV_PIXELS + 1)
    pixels = table[:, 1:]
    out_of_range = np.flatnonzero((pixels < 0).any(axis=1) | (pixels > 255).any(axis=1))
    if out_of_range.size:
        row = int(out_of_range[0])
        col = int(np.flatnonzero((pixels[row] < 0) | (pixels[row] > 255))[0])
        raise DataError(f"{source}: line {row + 2}, field pixel{col + 1}: value {pixels[row, col]} is outside 0..255")
    return table[:, 0].copy(), pixels.astype(np.uint8).reshape(-1, 28, 28)


def _header_problem(header: list[str], expected: list[str]) -> str:
    if len(header) != len(expected):
        return f"header has {len(header)} columns, expected {len(expected)} ('label,pixel1,...,pixel784')"
    index = next(i for i, (got, want) in enumerate(zip(header, expected)) if got != want)
    return f"header column {index + 1} is {header[index]!r}, expected {expected[index]!r}"


def _raise_first_bad_field(rows: list[bytes], source: str) -> None:
    """Slow path, only for files the fast parser rejected: name the first field that is not an integer."""
    names = ["label"] + [f"pixel{i}" for i in range(1, CSV_PIXELS + 1)]
    for number, row in enumerate(rows, start=2):
        for name, field in zip(names, row.split(b",")):
            if not INTEGER_FIELD.fullmatch(field):
                shown = field.decode("utf-8", "replace")
                raise DataError(f"{source}: line {number}, field {name}: {shown!r} is not an integer")
    raise DataError(f"{source}: could not be parsed as integers")  # pragma: no cover - the loop always finds it
