"""``ClassifierModule``: the one LightningModule that trains any registered cnnzoo network.

The network itself is a plain ``nn.Module`` from ``cnnzoo.models.create`` returning logits; this
module adds what Keras' ``compile``/``fit`` add: the loss (cross-entropy on logits, equal to Keras'
categorical cross-entropy on softmax outputs), the optimizer by Keras name with Keras defaults, and
metrics (torchmetrics, aggregated per epoch so logging never syncs every step).  Everything needed to
rebuild the network, and the data config it was trained with, is saved as hyperparameters, so a
checkpoint alone restores the model and says which data and preprocessing it expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from cnnzoo.models import create, summary
from cnnzoo.optim import create_optimizer

DEFAULT_OPTIMIZER = {"name": "rmsprop"}  # Keras' compile() default


def _metrics(num_classes: int, prefix: str) -> MetricCollection:
    metrics: dict[str, Any] = {
        "acc": MulticlassAccuracy(num_classes, average="micro"),
        "f1": MulticlassF1Score(num_classes, average="macro"),
    }
    if num_classes > 5:
        metrics["top5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro")
    return MetricCollection(metrics, prefix=prefix)


class ClassifierModule(L.LightningModule):
    """Trains ``create(arch, num_classes, input_shape)`` like Keras' ``compile(loss='categorical_crossentropy')``."""

    def __init__(
        self,
        arch: str,
        num_classes: int,
        input_shape: Sequence[int],
        optimizer: dict[str, Any] | None = None,
        class_names: Sequence[str] | None = None,
        data_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = create(arch, num_classes=num_classes, input_shape=tuple(input_shape))
        self.example_input_array = torch.zeros(1, *input_shape)  # for TensorBoard's graph
        self.optimizer_options = dict(optimizer or DEFAULT_OPTIMIZER)
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.train_metrics = _metrics(num_classes, "train/")
        self.val_metrics = _metrics(num_classes, "val/")
        self.test_metrics = _metrics(num_classes, "test/")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str, metrics: MetricCollection) -> dict:
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        metrics.update(logits, labels)
        training = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=training, on_epoch=True, prog_bar=True, batch_size=len(labels),
                 sync_dist=not training)  # eval losses are averaged over DDP ranks once per epoch
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=stage != "test")
        return {"loss": loss, "logits": logits.detach()}

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train", self.train_metrics)["loss"]

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict:
        return self._step(batch, "val", self.val_metrics)  # logits feed cnnzoo.callbacks.PredictionReport

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict:
        return self._step(batch, "test", self.test_metrics)

    def predict_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(images).softmax(dim=-1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        options = dict(self.optimizer_options)
        return create_optimizer(self.parameters(), options.pop("name"), **options)

    def on_train_epoch_end(self) -> None:
        """The learning rate of the epoch (``train/lr``), so schedules show next to the loss."""
        self.log("train/lr", float(self.optimizers().param_groups[0]["lr"]), on_step=False, on_epoch=True)

    def on_fit_start(self) -> None:
        rank_zero_info(str(summary(self.net)))


def grouped_metrics(metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Trainer ``callback_metrics`` ``{"val/acc": t, ...}`` -> ``{"val": {"acc": 0.98}, ...}``,
    epoch values only, with Lightning's ``_epoch`` suffix dropped."""
    grouped: dict[str, dict[str, float]] = {}
    for key, value in sorted(metrics.items()):
        stage, _, name = key.partition("/")
        if name and not name.endswith("_step"):
            grouped.setdefault(stage, {})[name.removesuffix("_epoch")] = float(value)
    return grouped
