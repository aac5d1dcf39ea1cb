"""``cnnzoo.data.images.load_image``: what ``predict`` feeds the network, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnzoo.errors import DataError
from cnnzoo.data.images import load_image


def test_grayscale_image_of_the_right_size_is_taken_as_is(tmp_path: Path):
    pixels = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    image, notes = load_image(tmp_path / "a.png", (1, 28, 28))
    assert notes == [] and image.dtype == torch.uint8
    assert torch.equal(image, torch.from_numpy(pixels).unsqueeze(0))


def test_colour_and_size_are_converted_and_said(tmp_path: Path):
    Image.fromarray(np.full((50, 40, 3), 200, dtype=np.uint8)).save(tmp_path / "b.jpg")
    image, notes = load_image(tmp_path / "b.jpg", (1, 64, 64))
    assert image.shape == (1, 64, 64)
    assert notes == ["converted RGB to grayscale", "resized 40x50 to 64x64"]


def test_three_channel_networks_get_rgb(tmp_path: Path):
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(tmp_path / "c.png")
    image, notes = load_image(tmp_path / "c.png", (3, 28, 28))
    assert image.shape == (3, 28, 28) and notes == ["converted L to RGB"]


def test_a_truncated_png_is_a_data_error(tmp_path: Path):
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(tmp_path / "d.png")
    data = (tmp_path / "d.png").read_bytes()
    (tmp_path / "d.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"d.png: not a readable PNG or JPEG image"):
        load_image(tmp_path / "d.png", (1, 28, 28))


def test_missing_file(tmp_path: Path):
    with pytest.raises(DataError, match="no such file"):
        load_image(tmp_path / "none.png", (1, 28, 28))
