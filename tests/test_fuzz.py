"""Property-based tests: whatever bytes or rows a user's file holds, the IDX and CSV readers and
``predict``'s image loader return well-formed data or raise ``DataError``; never another exception,
never a hang (each example has a deadline)."""

from __future__ import annotations

import gzip
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from cnnzoo.data.readers import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, parse_idx, parse_label_csv, read_bytes
from cnnzoo.errors import DataError
from cnnzoo.data.images import load_image
from tests.conftest import idx_bytes

FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
HEADER = "label," + ",".join(f"pixel{i}" for i in range(1, 785))


@FUZZ
@given(data=st.binary(max_size=64), magic=st.sampled_from([IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC]))
def test_idx_arbitrary_bytes(data: bytes, magic: int):
    try:
        array = parse_idx(data, "fuzz", magic)
    except DataError:
        return
    assert array.dtype == np.uint8 and array.ndim == (3 if magic == IDX_IMAGES_MAGIC else 1)


@FUZZ
@given(shape=st.tuples(st.integers(0, 4), st.integers(0, 5), st.integers(0, 5)), cut=st.integers(-3, 3), seed=st.integers(0, 9))
def test_idx_real_headers_with_wrong_lengths(shape, cut: int, seed: int):
    array = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    data = idx_bytes(array)
    data = data[:len(data) + cut] if cut < 0 else data + bytes(cut)
    try:
        decoded = parse_idx(data, "fuzz", IDX_IMAGES_MAGIC)
    except DataError:
        assert cut != 0
        return
    assert cut == 0 and np.array_equal(decoded, array)


@FUZZ
@given(data=st.binary(max_size=200))
def test_gzip_arbitrary_bytes(data: bytes):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x-idx1-ubyte.gz"
        path.write_bytes(data)
        try:
            read_bytes(path)
        except DataError:
            pass


TOKENS = st.one_of(
    st.integers(0, 255).map(str),  # good values
    st.integers(-1000, 1000).map(str),
    st.sampled_from(["", " ", "x", "1.5", "1e3", "+3", " 7 ", "0x10", "nan", "255\t", "\"1\"", "--1"]),
)


@pytest.mark.slow
@settings(FUZZ, max_examples=40)  # each example is a few thousand fields
@given(rows=st.lists(st.tuples(TOKENS, st.lists(TOKENS, min_size=782, max_size=786)), min_size=1, max_size=3),
       newline=st.sampled_from(["\n", "\r\n"]))
def test_csv_rows_load_correctly_or_raise(rows, newline: str):
    text = newline.join([HEADER] + [",".join([label, *pixels]) for label, pixels in rows]) + newline
    try:
        labels, images = parse_label_csv(text.encode(), "fuzz.csv")
    except DataError:
        return
    # Accepted: then every field was an integer in range and every row complete, and nothing changed.
    assert images.shape == (len(rows), 28, 28) and images.dtype == np.uint8
    for (label, pixels), got_label, got in zip(rows, labels, images.reshape(len(rows), -1)):
        assert len(pixels) == 784 and int(label) == got_label
        assert [int(p) for p in pixels] == got.tolist()


@FUZZ
@given(data=st.binary(max_size=300), prefix=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"]))
def test_image_loader_arbitrary_bytes(data: bytes, prefix: bytes):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.png"
        path.write_bytes(prefix + data)
        try:
            image, _ = load_image(path, (1, 28, 28))
        except DataError:
            return
        assert image.shape == (1, 28, 28)


@FUZZ
@given(width=st.integers(1, 80), height=st.integers(1, 80), mode=st.sampled_from(["L", "RGB", "RGBA", "P", "I;16", "1"]),
       fmt=st.sampled_from(["PNG", "JPEG"]), channels=st.sampled_from([1, 3]))
def test_image_loader_real_images_of_any_size_and_mode(width, height, mode, fmt, channels):
    if fmt == "JPEG" and mode not in ("L", "RGB"):
        return  # JPEG cannot hold these modes
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, format=fmt)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"input.{fmt.lower()}"
        path.write_bytes(buffer.getvalue())
        image, notes = load_image(path, (channels, 32, 24))
    assert image.shape == (channels, 32, 24) and str(image.dtype) == "torch.uint8"
    assert (f"resized {width}x{height} to 24x32" in notes) == ((width, height) != (24, 32))


@pytest.mark.parametrize("compressed", [gzip.compress(b"\x00" * 10)[:-4], b"\x1f\x8b" + b"\xff" * 30])
def test_broken_gzip_examples(tmp_path: Path, compressed: bytes):
    (tmp_path / "x.gz").write_bytes(compressed)
    with pytest.raises(DataError, match="truncated or corrupt gzip"):
        read_bytes(tmp_path / "x.gz")
