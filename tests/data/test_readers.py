"""IDX and CSV readers: correct decoding, and one clear DataError per kind of bad input."""

from __future__ import annotations

import gzip
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cnnzoo.data.readers import parse_label_csv, read_csv_bytes, read_idx_pair
from cnnzoo.errors import DataError
from tests.conftest import idx_bytes, sign_csv_text, write_idx_dataset


@pytest.fixture
def idx_files(tmp_path: Path) -> tuple[Path, Path, dict]:
    arrays = write_idx_dataset(tmp_path, n_train=10, n_test=4)
    return tmp_path / "train-images-idx3-ubyte.gz", tmp_path / "train-labels-idx1-ubyte.gz", arrays


def test_idx_pair_round_trips(idx_files):
    images_path, labels_path, arrays = idx_files
    images, labels = read_idx_pair(images_path, labels_path, num_classes=10)
    np.testing.assert_array_equal(images, arrays["train"][0])
    np.testing.assert_array_equal(labels, arrays["train"][1])
    assert images.dtype == np.uint8 and images.flags.writeable


def test_idx_uncompressed(tmp_path: Path):
    arrays = write_idx_dataset(tmp_path, n_train=5, n_test=3, gz=False)
    images, _ = read_idx_pair(tmp_path / "t10k-images-idx3-ubyte", tmp_path / "t10k-labels-idx1-ubyte", 10)
    np.testing.assert_array_equal(images, arrays["t10k"][0])


def test_idx_missing_file(idx_files):
    images_path, _, _ = idx_files
    with pytest.raises(DataError, match=r"nope-labels.*file not found"):
        read_idx_pair(images_path, images_path.with_name("nope-labels.gz"), 10)


def test_idx_truncated_gzip(idx_files):
    images_path, labels_path, _ = idx_files
    images_path.write_bytes(images_path.read_bytes()[:200])
    with pytest.raises(DataError, match=rf"{images_path.name}: cannot read \(truncated or corrupt gzip\)"):
        read_idx_pair(images_path, labels_path, 10)


def test_idx_not_gzip_at_all(idx_files):
    images_path, labels_path, _ = idx_files
    images_path.write_bytes(b"<html>404</html>")
    with pytest.raises(DataError, match="truncated or corrupt gzip"):
        read_idx_pair(images_path, labels_path, 10)


def test_idx_wrong_magic(idx_files):
    images_path, labels_path, _ = idx_files
    labels_path.write_bytes(gzip.compress(idx_bytes(np.zeros((10, 28, 28), np.uint8))))  # images where labels belong
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz: IDX magic number 2051, expected 2049"):
        read_idx_pair(images_path, labels_path, 10)


def test_idx_dimensions_disagree_with_size(idx_files):
    images_path, labels_path, _ = idx_files
    data = gzip.decompress(images_path.read_bytes())
    images_path.write_bytes(gzip.compress(data[:-28]))  # one row of pixels short
    with pytest.raises(DataError, match=r"header says dimensions \(10, 28, 28\) \(7856 bytes\) but the file holds 7828"):
        read_idx_pair(images_path, labels_path, 10)


def test_idx_header_too_short(idx_files):
    images_path, labels_path, _ = idx_files
    images_path.write_bytes(gzip.compress(struct.pack(">I", 2051)))
    with pytest.raises(DataError, match="too short for an IDX header"):
        read_idx_pair(images_path, labels_path, 10)


def test_idx_count_mismatch(tmp_path: Path, idx_files):
    images_path, labels_path, _ = idx_files
    labels_path.write_bytes(gzip.compress(idx_bytes(np.zeros(9, np.uint8))))
    with pytest.raises(DataError, match=r"10 images but .*train-labels-idx1-ubyte.gz holds 9 labels"):
        read_idx_pair(images_path, labels_path, 10)


def test_idx_empty(tmp_path: Path):
    images, labels = tmp_path / "i.gz", tmp_path / "l.gz"
    images.write_bytes(gzip.compress(idx_bytes(np.zeros((0, 28, 28), np.uint8))))
    labels.write_bytes(gzip.compress(idx_bytes(np.zeros(0, np.uint8))))
    with pytest.raises(DataError, match="holds no images"):
        read_idx_pair(images, labels, 10)


def test_idx_label_out_of_range(idx_files):
    images_path, labels_path, _ = idx_files
    labels_path.write_bytes(gzip.compress(idx_bytes(np.array([0] * 9 + [12], np.uint8))))
    with pytest.raises(DataError, match=r"label 12 at index 9 is outside 0..9"):
        read_idx_pair(images_path, labels_path, 10)


# --- Kaggle CSV -----------------------------------------------------------------------------------

HEADER = "label," + ",".join(f"pixel{i}" for i in range(1, 785))


def row(label: object = 3, fill: object = 7, **override: object) -> str:
    fields = [str(label)] + [str(fill)] * 784
    for name, value in override.items():
        fields[int(name.removeprefix("pixel"))] = str(value)
    return ",".join(fields)


def parse(*rows: str, header: str = HEADER, newline: str = "\n") -> tuple[np.ndarray, np.ndarray]:
    return parse_label_csv((newline.join([header, *rows]) + newline).encode(), "x.csv")


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_csv_parses_labels_and_pixels(newline: str):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels, images = parse_label_csv(sign_csv_text([0, 1, 24, 10, 3], pixels, newline).encode(), "x.csv")
    assert labels.tolist() == [0, 1, 24, 10, 3]
    np.testing.assert_array_equal(images, pixels)


def test_csv_without_final_newline():
    labels, images = parse_label_csv(f"{HEADER}\n{row(5)}".encode(), "x.csv")
    assert labels.tolist() == [5] and images.shape == (1, 28, 28)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"", r"x.csv: empty file"),
        (b"\n", r"x.csv: empty file"),
        (f"{HEADER}\n".encode(), r"x.csv: holds a header but no data rows"),
        (f"{row()}\n{row()}\n".encode(), r"x.csv: line 1: header column 1 is '3', expected 'label'"),
        (b"label,pixel1\n1,2\n", r"x.csv: line 1: header has 2 columns, expected 785"),
    ],
)
def test_csv_header_problems(text: bytes, message: str):
    with pytest.raises(DataError, match=message):
        parse_label_csv(text, "x.csv")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([row(), row()[: -len(",7")]], r"line 3: 784 columns, expected 785"),  # ragged line
        ([row() + ",7"], r"line 2: 786 columns, expected 785"),
        ([row(), "", row()], r"line 3: 1 columns, expected 785"),  # blank line inside the file
        ([row(pixel12="x")], r"line 2, field pixel12: 'x' is not an integer"),
        ([row(pixel5="3.5")], r"line 2, field pixel5: '3.5' is not an integer"),
        ([row(), row(pixel784="")], r"line 3, field pixel784: '' is not an integer"),
        ([row(label="A")], r"line 2, field label: 'A' is not an integer"),
        ([row(pixel3=300)], r"line 2, field pixel3: value 300 is outside 0..255"),
        ([row(), row(), row(pixel700=-1)], r"line 4, field pixel700: value -1 is outside 0..255"),
        ([row(pixel1="99999999999999999999999")], r"line 2, field pixel1: value .* is outside 0..255"),
    ],
)
def test_csv_row_problems_name_line_and_field(rows: list[str], message: str):
    with pytest.raises(DataError, match=rf"x.csv: {message}"):
        parse(*rows)


def test_csv_from_zip_member(tmp_path: Path):
    with zipfile.ZipFile(tmp_path / "archive.zip", "w") as archive:
        archive.writestr("sign_mnist_test/sign_mnist_test.csv", f"{HEADER}\n{row(4)}\n")
    labels, _ = parse_label_csv(read_csv_bytes(tmp_path / "archive.zip" / "sign_mnist_test.csv"), "z")
    assert labels.tolist() == [4]
    with pytest.raises(DataError, match=r"archive.zip: holds no member named sign_mnist_train.csv"):
        read_csv_bytes(tmp_path / "archive.zip" / "sign_mnist_train.csv")


def test_csv_corrupt_zip(tmp_path: Path):
    (tmp_path / "archive.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DataError, match=r"archive.zip: not a readable zip archive"):
        read_csv_bytes(tmp_path / "archive.zip" / "sign_mnist_train.csv")
