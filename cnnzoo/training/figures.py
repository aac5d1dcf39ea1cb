"""Matplotlib figures of what a classifier does: confusion matrix, misclassified images, feature maps.

These are the notebooks' inspection cells (notebook 001's grid of incorrect predictions, notebook
004's look at what convolutions produce) as functions returning a ``Figure``, so the same picture
goes to a PNG file (``save_png``) and to TensorBoard (``SummaryWriter.add_figure``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files and TensorBoard only; never a window

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cnnzoo.atomic import atomic_path  # noqa: E402


def confusion_matrix_figure(matrix: torch.Tensor, class_names: Sequence[str], title: str = "Confusion matrix") -> Figure:
    """Counts with true labels as rows and predictions as columns; cells annotated when legible."""
    counts = matrix.detach().cpu().long()
    n = len(class_names)
    side = max(4.0, 0.38 * n + 2)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(counts.numpy(), cmap="Blues")
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true", title=title)
    ax.set_xticklabels(class_names, rotation=90 if n > 10 else 0)
    ax.set_yticklabels(class_names)
    if n <= 30:
        threshold = counts.max().item() / 2
        for (row, col), count in zip(torch.cartesian_prod(torch.arange(n), torch.arange(n)).tolist(), counts.flatten()):
            if count:
                color = "white" if count > threshold else "black"
                ax.text(col, row, str(count.item()), ha="center", va="center", fontsize=7, color=color)
    fig.tight_layout()
    return fig


def misclassified_figure(
    images: torch.Tensor,
    predicted: Sequence[int],
    expected: Sequence[int],
    indices: Sequence[int],
    class_names: Sequence[str],
) -> Figure:
    """Up to 24 images in a 6-wide grid, each titled ``index, predicted, expected`` like notebook 001."""
    count = min(len(images), 24)
    titles = [f"#{indices[k]}\np: {class_names[predicted[k]]}; e: {class_names[expected[k]]}" for k in range(count)]
    fig = _grid_figure(images[:count], titles, cols=6, cell=(2.0, 2.3), fontsize=9)
    if count == 0:
        fig.axes[0].set_title("no misclassified images")
    return fig


def image_grid_figure(images: torch.Tensor, titles: Sequence[str], title: str) -> Figure:
    """A grid of input images with short titles (e.g. their labels)."""
    fig = _grid_figure(images, list(titles), cols=min(8, max(1, len(images))), cell=(1.6, 1.8), fontsize=8)
    fig.suptitle(title)
    return fig


def feature_maps_figure(images: torch.Tensor, maps: torch.Tensor, title: str, max_channels: int = 16) -> Figure:
    """One row per image: the input, then its first ``max_channels`` feature maps (each stretched
    to its own range), drawn as two images per row."""
    channels = min(maps.shape[1], max_channels)
    rows = len(images)
    fig, axes = plt.subplots(rows, 2, figsize=(1.2 * (channels + 1), 1.3 * rows + 0.4), squeeze=False,
                             gridspec_kw={"width_ratios": [1, channels]})
    for row in range(rows):
        axes[row, 0].imshow(_as_image(images[row]), cmap="gray")
        tiles = [_as_image(maps[row, c : c + 1]) for c in range(channels)]
        axes[row, 1].imshow(_mosaic(tiles, cols=channels), cmap="viridis")
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(f"{title}: input, then {channels} of {maps.shape[1]} channels ({maps.shape[2]}x{maps.shape[3]})")
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.9, wspace=0.05, hspace=0.1)
    return fig


def history_figure(history: dict[str, list[float]], title: str = "") -> Figure:
    """Loss and accuracy per epoch, training and validation side by side: the notebooks'
    ``plt.plot(history.history['accuracy'])`` cells in one figure."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, label in ((metric, "training"), (f"val_{metric}", "validation")):
            values = history.get(key)
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", label=label)
        ax.set(xlabel="epoch", ylabel=metric, title=metric)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _grid_figure(images: torch.Tensor, titles: list[str], cols: int, cell: tuple[float, float], fontsize: int) -> Figure:
    """Images in a grid drawn as one picture on one axes (one axes per image costs ~25 ms each to
    lay out), each with its title above it."""
    count = len(images)
    rows = max(1, math.ceil(count / cols))
    fig, ax = plt.subplots(figsize=(cell[0] * cols, cell[1] * rows))
    ax.axis("off")
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.92 if rows == 1 else 0.95)
    if count == 0:
        return fig
    tiles = [_as_image(image) for image in images]
    height, width = tiles[0].shape[:2]
    gap = max(2, height // 3)  # room for a two-line title
    ax.imshow(_mosaic(tiles, cols, gap_top=gap), cmap="gray")
    for k, text in enumerate(titles[:count]):
        row, col = divmod(k, cols)
        ax.text(col * (width + 1) + width / 2, row * (height + gap) + gap - 0.5, text, ha="center", va="bottom",
                fontsize=fontsize)
    return fig


def _mosaic(tiles: list, cols: int, gap_top: int = 0):
    """Equal-sized H x W (or H x W x 3) arrays tiled ``cols`` wide, 1 pixel apart, ``gap_top`` white rows
    above each row of tiles; the background is white (1.0)."""
    import numpy as np

    height, width = tiles[0].shape[:2]
    rows = math.ceil(len(tiles) / cols)
    out = np.ones((rows * (height + gap_top), cols * (width + 1) - 1, *tiles[0].shape[2:]), dtype=np.float32)
    for k, tile in enumerate(tiles):
        row, col = divmod(k, cols)
        top, left = row * (height + gap_top) + gap_top, col * (width + 1)
        out[top : top + height, left : left + width] = tile
    return out


def save_png(fig: Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` atomically: a killed write never leaves a truncated PNG."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


def _as_image(image: torch.Tensor):
    """C x H x W (C = 1 or 3) tensor -> array matplotlib shows, stretched to its own min..max."""
    x = image.detach().float().cpu()
    x = x[0] if x.shape[0] == 1 else x.permute(1, 2, 0)
    low, high = x.min(), x.max()
    return ((x - low) / (high - low) if high > low else torch.zeros_like(x)).numpy()
