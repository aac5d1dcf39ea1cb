"""Random affine augmentation of a whole batch at once, on the batch's device.

Keras' ``ImageDataGenerator(rotation_range, zoom_range, width_shift_range, height_shift_range,
horizontal_flip)`` (the ASL course's augmentation) transforms one image at a time on the CPU.  Here
each sample of a batch gets its own random rotation, zoom, shift and flip, but the batch is warped
by one ``affine_grid`` + ``grid_sample`` call, so augmentation costs one op per batch and runs
wherever the batch lives (the GPU when training there).  Pixels brought in from outside the image
repeat the nearest edge pixel, Keras' default ``fill_mode='nearest'``.  Samples are read
bilinearly (Keras' default ``interpolation_order=1``), which blurs every sub-pixel shift; with
``interpolation: nearest`` (``interpolation_order=0``) a shift moves whole pixels and the training
images stay as sharp as the test images.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cnnzoo.errors import ConfigError

INTERPOLATIONS = ("bilinear", "nearest")  # grid_sample's modes for Keras' interpolation_order 1 and 0
FIELDS = ("rotation", "zoom", "shift", "hflip", "interpolation")


class RandomAffine:
    """Per-sample random rotation (degrees, uniform in ``±rotation``), zoom (scale uniform in
    ``[1 - zoom, 1 + zoom]``), shift (fraction of width/height, uniform in ``±shift``) and, with
    ``hflip``, a left-right flip with probability 1/2; pixels are read ``bilinear`` or ``nearest``.
    Draws from the generator it is given (``TensorBatches`` derives one per batch from the seed,
    epoch and batch index), so augmented runs repeat and resume exactly."""

    def __init__(self, rotation: float = 0.0, zoom: float = 0.0, shift: float = 0.0, hflip: bool = False,
                 interpolation: str = "bilinear") -> None:
        for field, value, upper in (("rotation", rotation, 180), ("zoom", zoom, 1), ("shift", shift, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < upper:
                raise ConfigError(f"data.augment.{field}={value!r}: expected a number in [0, {upper})")
        if not isinstance(hflip, bool):
            raise ConfigError(f"data.augment.hflip={hflip!r}: expected true or false")
        if interpolation not in INTERPOLATIONS:
            raise ConfigError(f"data.augment.interpolation={interpolation!r}: expected {' or '.join(INTERPOLATIONS)}")
        self.rotation, self.zoom, self.shift, self.hflip = float(rotation), float(zoom), float(shift), hflip
        self.interpolation = interpolation

    def __repr__(self) -> str:
        return (f"RandomAffine(rotation={self.rotation}, zoom={self.zoom}, shift={self.shift}, hflip={self.hflip}, "
                f"interpolation={self.interpolation!r})")

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        # The 2x3 matrices are drawn on the CPU and cross to the batch's device in one copy.
        n = len(images)

        def uniform(half_width: float) -> torch.Tensor:
            return torch.rand(n, generator=generator).mul_(2).sub_(1).mul_(half_width)

        angle = uniform(math.radians(self.rotation))
        scale = 1.0 + uniform(self.zoom)  # output pixel -> input pixel: >1 zooms out
        flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if self.hflip else torch.ones(n)
        # affine_grid works in [-1, 1] coordinates: a shift by a fraction f of the size is 2f.
        shift_x, shift_y = (2 * uniform(self.shift) for _ in range(2))
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        theta = torch.stack([torch.stack([cos * flip, -sin, shift_x], dim=1),
                             torch.stack([sin * flip, cos, shift_y], dim=1)], dim=1)
        grid = F.affine_grid(theta.to(images.device, images.dtype), list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, mode=self.interpolation, padding_mode="border", align_corners=False)


def create_augmentation(options: dict | None) -> RandomAffine | None:
    """``data.augment`` (null or a mapping of RandomAffine's fields) -> the augmentation or None."""
    if not options:
        return None
    unknown = set(options) - set(FIELDS)
    if unknown:
        raise ConfigError(f"data.augment.{sorted(unknown)[0]}: unknown field; expected {', '.join(FIELDS)}")
    return RandomAffine(**options)
