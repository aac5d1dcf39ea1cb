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
    cols = 6
    rows = max(1, math.ceil(count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2.3 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < count:
            ax.imshow(_as_image(images[k]), cmap="gray")
            ax.set_title(
                f"#{indices[k]}\np: {class_names[predicted[k]]}; e: {class_names[expected[k]]}", fontsize=9
            )
    if count == 0:
        axes.flat[0].set_title("no misclassified images")
    fig.tight_layout()
    return fig


def image_grid_figure(images: torch.Tensor, titles: Sequence[str], title: str) -> Figure:
    """A grid of input images with short titles (e.g. their labels)."""
    count = len(images)
    cols = min(8, count)
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows + 0.4), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < count:
            ax.imshow(_as_image(images[k]), cmap="gray")
            ax.set_title(titles[k], fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def feature_maps_figure(images: torch.Tensor, maps: torch.Tensor, title: str, max_channels: int = 16) -> Figure:
    """One row per image: the input, then its first ``max_channels`` feature maps."""
    channels = min(maps.shape[1], max_channels)
    rows, cols = len(images), channels + 1
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.3 * rows + 0.4), squeeze=False)
    for row in range(rows):
        axes[row, 0].imshow(_as_image(images[row]), cmap="gray")
        for channel in range(channels):
            axes[row, channel + 1].imshow(maps[row, channel].detach().float().cpu().numpy(), cmap="viridis")
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(f"{title}: input, then {channels} of {maps.shape[1]} channels ({maps.shape[2]}x{maps.shape[3]})")
    fig.tight_layout()
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
