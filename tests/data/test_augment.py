"""Batch augmentation: identity when switched off, random per sample, label-preserving geometry,
repeatable from the seed, training batches only, and clear errors for bad ``data.augment`` fields."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnzoo.data import SignMNISTDataModule
from cnnzoo.data.augment import RandomAffine, create_augmentation
from cnnzoo.errors import ConfigError


def _images(n: int = 16) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def test_zero_ranges_are_the_identity():
    images = _images()
    assert torch.allclose(RandomAffine()(images, torch.Generator()), images, atol=1e-5)  # float32 grid arithmetic


def test_every_sample_gets_its_own_transform_within_the_input_range():
    images = _images(1).repeat(8, 1, 1, 1)
    out = RandomAffine(rotation=10, zoom=0.1, shift=0.1)(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == images.dtype
    assert len({tuple(sample.flatten()[:50].tolist()) for sample in out}) == 8  # all different
    assert out.min() >= images.min() - 1e-6 and out.max() <= images.max() + 1e-6  # bilinear, edge fill


def test_a_shift_moves_the_content_and_fills_with_the_edge():
    image = torch.zeros(1, 1, 28, 28)
    image[..., 10:14, 10:14] = 1.0
    out = RandomAffine(shift=0.25)  # draws one shift; check it against the moved square's centre
    shifted = out(image, torch.Generator().manual_seed(1))
    mass = shifted[0, 0]
    rows, cols = torch.nonzero(mass > 0.5, as_tuple=True)
    assert len(rows) > 0 and (rows.float().mean() - 11.5).abs() <= 7 and (cols.float().mean() - 11.5).abs() <= 7
    assert torch.isclose(shifted.sum(), image.sum(), rtol=0.15)  # moved, not destroyed


def test_hflip_mirrors_about_half_the_batch():
    image = torch.zeros(1, 1, 28, 28)
    image[..., :, :4] = 1.0  # a bar on the left edge
    out = RandomAffine(hflip=True)(image.repeat(200, 1, 1, 1), torch.Generator().manual_seed(0))
    mirrored = (out[:, 0, :, -4:].mean(dim=(1, 2)) > 0.99).sum().item()
    kept = (out[:, 0, :, :4].mean(dim=(1, 2)) > 0.99).sum().item()
    assert mirrored + kept == 200 and 70 < mirrored < 130


def test_nearest_interpolation_moves_whole_pixels():
    images = _images(64)
    out = RandomAffine(shift=0.1, hflip=True, interpolation="nearest")(images, torch.Generator().manual_seed(0))
    for original, moved in zip(images, out):  # every pixel a copy of one of its image's pixels: no blur
        assert torch.isin(moved, original).all()
    blurred = RandomAffine(shift=0.1, hflip=True)(images, torch.Generator().manual_seed(0))
    assert not all(torch.isin(moved, original).all() for original, moved in zip(images, blurred))


def _augmented_batches(data_dir: Path, seed: int, state: dict | None = None) -> list[torch.Tensor]:
    dm = SignMNISTDataModule(data_dir=data_dir, batch_size=8, seed=seed, augment={"rotation": 20, "shift": 0.1})
    dm.setup()
    loader = dm.train_dataloader()
    if state:
        loader.load_state_dict(state)
    return [images for images, _ in loader]


def test_augmentation_comes_from_the_seed_and_position_not_the_global_generator(data_dir: Path):
    torch.manual_seed(0)
    first = _augmented_batches(data_dir, seed=7)
    torch.manual_seed(123)  # dropout, callbacks or anything else drawing in between changes nothing
    assert all(torch.equal(a, b) for a, b in zip(first, _augmented_batches(data_dir, seed=7)))
    resumed = _augmented_batches(data_dir, seed=7, state={"epoch": 0, "batches": 3})  # a mid-epoch resume
    assert len(resumed) == len(first) - 3 and all(torch.equal(a, b) for a, b in zip(first[3:], resumed))
    other = _augmented_batches(data_dir, seed=8)
    assert not torch.allclose(first[0], other[0])


@pytest.mark.parametrize(("options", "message"), [
    ({"rotation": -1}, r"data.augment.rotation=-1: expected a number in \[0, 180\)"),
    ({"zoom": 1.5}, r"data.augment.zoom=1.5: expected a number in \[0, 1\)"),
    ({"shift": "a"}, r"data.augment.shift='a': expected a number in \[0, 1\)"),
    ({"hflip": "yes"}, r"data.augment.hflip='yes': expected true or false"),
    ({"interpolation": "cubic"}, r"data.augment.interpolation='cubic': expected bilinear or nearest"),
    ({"shear": 0.1}, r"data.augment.shear: unknown field; expected rotation, zoom, shift, hflip, interpolation"),
])
def test_bad_fields_are_one_line_errors(options: dict, message: str):
    with pytest.raises(ConfigError, match=message):
        create_augmentation(options)


def test_only_training_batches_are_augmented(data_dir: Path):
    plain = SignMNISTDataModule(data_dir=data_dir, batch_size=8)
    augmented = SignMNISTDataModule(data_dir=data_dir, batch_size=8, augment={"rotation": 20, "shift": 0.1})
    for dm in (plain, augmented):
        dm.setup()
    train_plain, train_aug = next(iter(plain.train_dataloader())), next(iter(augmented.train_dataloader()))
    assert torch.equal(train_plain[1], train_aug[1]) and not torch.allclose(train_plain[0], train_aug[0])
    for loader in ("val_dataloader", "test_dataloader"):
        a, b = next(iter(getattr(plain, loader)())), next(iter(getattr(augmented, loader)()))
        assert torch.equal(a[0], b[0])
