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


def numeric_array(values, what: str, expected: str) -> np.ndarray:
    """``values`` (an array, nested lists) as a NumPy array of numbers; anything else (``None``,
    strings, lists of different lengths) is a one-line :class:`DataError` instead of NumPy's or
    torch's ``TypeError``."""
    try:
        array = np.asarray(values)
    except ValueError:  # NumPy cannot make one array of them
        raise DataError(f"{what}: nested lists of different lengths; expected {expected}") from None
    if array.dtype.kind not in "biufc":  # bool, integers, floats, complex: their own checks follow
        raise DataError(f"{what} of dtype {array.dtype}: expected {expected}")
    return array


def image_batch(images, shape: tuple[int, int, int]) -> torch.Tensor:
    """Images as Keras users hold them -> a float ``(N, C, H, W)`` batch in [0, 1].

    Accepted: NumPy arrays or tensors shaped ``(H, W)`` (one gray image), ``(N, H, W)`` (gray),
    ``(N, H, W, C)`` (Keras' NHWC) or ``(N, C, H, W)``, holding uint8 0..255 (or whole numbers in
    that range) or floats in [0, 1]; or a list of PNG/JPEG paths, read at the network's input
    ``shape`` (C, H, W).  Anything else is a one-line :class:`DataError` naming the shape or values
    it got and what it takes."""
    channels = shape[0]
    if isinstance(images, (str, Path)) or (isinstance(images, (list, tuple)) and images
                                            and all(isinstance(i, (str, Path)) for i in images)):
        paths = [images] if isinstance(images, (str, Path)) else list(images)
        return torch.stack([load_image(p, tuple(shape))[0] for p in paths]).float().div_(255.0)
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(
        numeric_array(images, "images", "uint8 0..255 or floats in [0, 1], or PNG/JPEG file paths"))
    shape, takes = tuple(x.shape), (f"(H, W), (N, H, W), (N, H, W, {channels}), (N, {channels}, H, W)"
                                    if channels == 1 else f"(N, H, W, {channels}) or (N, {channels}, H, W)")
    if x.ndim in (2, 3) and channels == 1:
        x = x.reshape(-1, 1, *x.shape[-2:])
    elif x.ndim == 4 and (x.shape[-1] == channels) != (x.shape[1] == channels):
        x = x.permute(0, 3, 1, 2) if x.shape[-1] == channels else x
    else:
        raise DataError(f"images of shape {shape}: cannot tell the layout; the model takes {takes}")
    if x.dtype == torch.bool or x.is_complex():
        raise DataError(f"images of dtype {x.dtype}: expected uint8 0..255 or floats in [0, 1]")
    if x.is_floating_point():
        if x.numel() and (x.min() < 0 or x.max() > 1):
            raise DataError(f"float images must lie in [0, 1], these span {x.min().item():g}..{x.max().item():g}; "
                            "pass uint8 0..255 or divide by 255")
        return x.to(torch.float32, copy=True).contiguous()  # a copy: normalising works in place
    if x.numel() and (x.min() < 0 or x.max() > 255):
        raise DataError(f"integer images must lie in 0..255, these span {x.min().item()}..{x.max().item()}")
    return x.float().div_(255.0).contiguous()

