"""Read a user's image file into the uint8 tensor a cnnzoo network expects.

``predict`` takes PNG/JPEG files from anywhere: photos in colour, scans of any size.  They are
converted (to grayscale or RGB, as the network's channel count says, and resized bilinearly to its
input size) and every conversion is reported, so a user knows what the model actually saw.
Anything that is not a readable image is a ``DataError`` naming the file, never a PIL traceback.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnzoo.errors import DataError

MODES = {1: "L", 3: "RGB"}


def load_image(path: str | Path, shape: tuple[int, int, int]) -> tuple[torch.Tensor, list[str]]:
    """``path`` as a uint8 ``shape`` (C, H, W) tensor, and notes on the conversions applied."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory; expected a PNG or JPEG image file")
    if not path.is_file():
        raise DataError(f"{path}: no such file; expected a PNG or JPEG image file")
    channels, height, width = shape
    if channels not in MODES:
        raise DataError(f"{path}: the model takes {channels}-channel inputs; images can feed 1 or 3 channels")
    try:
        with Image.open(path) as image:
            image.load()
            notes = _conversions(image, MODES[channels], (width, height))
            image = image.convert(MODES[channels])
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except DataError:
        raise
    except Exception as e:  # PIL signals bad files with many types (OSError, SyntaxError, ValueError...)
        reason = " ".join(str(e).split())
        raise DataError(f"{path}: not a readable PNG or JPEG image ({type(e).__name__}: {reason})") from None
    tensor = torch.from_numpy(pixels.copy())
    tensor = tensor.unsqueeze(0) if channels == 1 else tensor.permute(2, 0, 1)
    return tensor.contiguous(), notes


def _conversions(image: Image.Image, mode: str, size: tuple[int, int]) -> list[str]:
    notes = []
    if image.mode != mode:
        notes.append(f"converted {image.mode} to {'grayscale' if mode == 'L' else 'RGB'}")
    if image.size != size:
        notes.append(f"resized {image.size[0]}x{image.size[1]} to {size[0]}x{size[1]}")
    return notes
