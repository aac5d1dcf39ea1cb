"""Batches sliced from in-memory tensors: the data path that costs (almost) nothing per step.

The datasets are a few tens of MB of uint8, so the per-sample ``Dataset.__getitem__`` + collate
path of a ``DataLoader`` is pure overhead.  ``TensorBatches`` keeps the uint8 images on one device
(the GPU when training there), draws a shuffled index tensor per epoch, gathers each batch with one
indexing op and converts/scales it with one vectorised op (training batches may then be augmented
by one more, ``cnnzoo.data.augment``, drawing from a generator of its own per batch).  It is a plain iterable with ``len``, which Lightning
accepts as a dataloader; under DDP each rank takes its own shard.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

BatchTransform = Callable[[torch.Tensor], torch.Tensor]
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class Preprocess:
    """uint8 batch -> float in [0, 1] (the notebooks' ``x / 255``), optionally resized (bilinear)
    and mean/std normalised; one vectorised op per batch on the batch's device."""

    def __init__(self, size: tuple[int, int] | None = None, mean: float | None = None, std: float | None = None):
        self.size, self.mean, self.std = size, mean, std

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.from_unit(images.float().div_(255.0))

    def from_unit(self, x: torch.Tensor) -> torch.Tensor:
        """The same for a float batch already in [0, 1]."""
        if self.size is not None and tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        if self.mean is not None:
            x = x.sub_(self.mean).div_(self.std)
        return x


class TensorBatches:
    """Iterable of ``(images float N x C x H x W, labels int64 N)`` batches from uint8 tensors (or
    float32 ones, a user's arrays, which ``transform`` then takes as they are).

    With ``shuffle`` the order of epoch ``e`` is a permutation seeded by ``seed + e``, so a run is
    repeatable and a resumed run continues with the permutation it would have used.  It is also
    resumable in the middle of an epoch: Lightning stores ``state_dict()`` in checkpoints and hands
    it back to ``load_state_dict()``, after which iteration continues with the next untrained batch.
    A new epoch's number is read from ``current_epoch`` (the trainer's) when it starts, so a run
    resumed from an epoch-end checkpoint, whose loader state Lightning does not hand back (and
    whose loader it builds before it restores the epoch count), still shuffles its next epoch as
    the uninterrupted run did; without it the batches count their own epochs.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        transform: BatchTransform = Preprocess(),
        augment: Augment | None = None,
        rank: int = 0,
        world_size: int = 1,
        current_epoch: Callable[[], int] | None = None,
    ) -> None:
        if images.dtype not in (torch.uint8, torch.float32) or images.ndim != 4:
            raise ValueError(f"images must be uint8 or float32 N x C x H x W, got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels.long()
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.transform, self.augment, self.rank, self.world_size = transform, augment, rank, world_size
        self.epoch = 0  # the epoch the next iteration serves
        self.current_epoch = current_epoch
        self._running: int | None = None  # the epoch being served, and how far
        self._yielded, self._skip = 0, 0
        # Every rank sees the same number of samples (DistributedSampler's drop_last semantics) so
        # that DDP ranks run the same number of steps.
        self.samples = len(images) // world_size if world_size > 1 else len(images)

    def __len__(self) -> int:
        full, rest = divmod(self.samples, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def _order(self) -> torch.Tensor | None:
        """Indices of this rank's samples for the current epoch; ``None`` means 0..N-1 in order."""
        if not self.shuffle and self.world_size == 1:
            return None
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(len(self.images), generator=generator)
        else:
            order = torch.arange(len(self.images))
        return order[self.rank :: self.world_size][: self.samples].to(self.images.device)

    def state_dict(self) -> dict[str, int]:
        """The epoch in progress and how many of its batches were handed out.  Lightning knows the
        epoch's length from ``len()``, so it fetches a batch only when it trains on it."""
        if self._running is None:
            return {"epoch": self.epoch, "batches": 0}
        return {"epoch": self._running, "batches": self._yielded}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self._skip = int(state["epoch"]), int(state["batches"])
        if self._skip >= len(self):  # saved at the end of an epoch: go on with the next one
            self.epoch, self._skip = self.epoch + 1, 0

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.current_epoch is not None and not self._skip:  # a new epoch, not a loaded place in one
            self.epoch = self.current_epoch()
        order = self._order()
        self._running, self._yielded = self.epoch, self._skip
        self.epoch += 1
        first, self._skip = self._skip * self.batch_size, 0
        for start in range(first, len(self) * self.batch_size, self.batch_size):
            self._yielded += 1
            if order is None:
                index = slice(start, min(start + self.batch_size, self.samples))
            else:
                index = order[start : start + self.batch_size]
            images = self.transform(self.images[index])
            if self.augment is not None:
                images = self.augment(images, self.batch_generator(self._running, self._yielded - 1))
            yield images, self.labels[index]

    def batch_generator(self, epoch: int, batch: int) -> torch.Generator:
        """The random stream of one batch's augmentation, derived from (seed, rank, epoch, batch)
        alone: a resumed run draws what an uninterrupted one drew, and nothing else that uses
        randomness (dropout, callbacks, another iteration of this loader) shifts it."""
        key = hashlib.sha256(f"{self.seed}/{self.rank}/{epoch}/{batch}".encode()).digest()
        return torch.Generator().manual_seed(int.from_bytes(key[:8], "little"))
