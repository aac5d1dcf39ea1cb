"""Lightning callbacks that show what a model sees and gets wrong, in TensorBoard and as PNG files.

``PredictionReport`` draws the confusion matrix (the LightningModule's own metrics state: one
metrics path) and a grid of up to 24 misclassified images (notebook 001's incorrect-predictions
cell) of the last validation of a fit and of each test; every n-th validation too when asked
(``every_n_epochs``): drawing them took about 0.2 s per validation on the 2-core CPU measured
(docs/performance.md), a cost that a per-epoch default would pay every epoch.
``InputInspection`` logs a grid of training inputs when fitting starts and the feature maps of the
first convolution and pooling layers when it ends (notebook 004's look inside the network).
``History`` keeps Keras' ``history.history``: each epoch's metrics under Keras' names, carried
through checkpoints so a resumed run's history holds every epoch.
Both stay out of the training step: they read the logits the eval steps return, and only rank 0
draws (the confusion matrix is already summed across DDP ranks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import matplotlib.pyplot as plt
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger

from cnnzoo.errors import ConfigError
from cnnzoo.training.figures import (
    confusion_matrix_figure,
    feature_maps_figure,
    image_grid_figure,
    misclassified_figure,
    save_png,
)

SPATIAL_KINDS = ("Conv2D", "MaxPooling2D", "AveragePooling2D")


def _tensorboard(trainer: L.Trainer):
    """The TensorBoard ``SummaryWriter`` of the trainer's loggers, if one is configured."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


class PredictionReport(L.Callback):
    """Confusion matrix and misclassified images of the last validation of a fit and of each test.

    Figures go to TensorBoard as ``<stage>/confusion_matrix`` and ``<stage>/misclassified``; with
    ``png_dir`` the test stage also writes ``confusion_matrix.png`` and ``misclassified.png``
    there.  The last validation's figures are drawn when training ends (or fails), at that validation's step;
    ``every_n_epochs=n`` also draws those of every n-th epoch's validation when it ends (1: every
    epoch).  ``results[stage]`` keeps the last matrix and mistakes for a caller's JSON report.
    """

    def __init__(self, png_dir: str | Path | None = None, max_images: int = 24, every_n_epochs: int = 0) -> None:
        if isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int) or every_n_epochs < 0:
            raise ConfigError(f"callbacks.prediction_report.every_n_epochs={every_n_epochs!r}: expected 0 (the last "
                              "validation only) or a whole number of epochs")
        self.png_dir = Path(png_dir) if png_dir else None
        self.max_images = max_images
        self.every_n_epochs = every_n_epochs
        self.results: dict[str, dict[str, Any]] = {}
        self.validated_step: int | None = None  # global step of the last validation (not the sanity check)
        self._undrawn: tuple | None = None  # the last validation of a fit, until training ends

    def _reset(self) -> None:
        self.seen = 0
        self.mistakes: list[tuple[int, int, int, torch.Tensor]] = []  # index, predicted, expected, image

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._reset()

    on_test_epoch_start = on_validation_epoch_start

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._collect(trainer, outputs, batch)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._collect(trainer, outputs, batch)

    def _collect(self, trainer: L.Trainer, outputs: Any, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        images, labels = batch
        predicted = outputs["logits"].argmax(dim=1)
        if len(self.mistakes) < self.max_images:
            wrong = (predicted != labels).nonzero().flatten().tolist()[: self.max_images - len(self.mistakes)]
            # Eval loaders are not shuffled; under DDP rank r holds samples r, r + world, ...
            for i in wrong:
                index = trainer.global_rank + trainer.world_size * (self.seen + i)
                self.mistakes.append((index, int(predicted[i]), int(labels[i]), images[i].cpu()))
        self.seen += len(labels)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.validated_step = trainer.global_step  # the weights this validation saw
        asked = self.every_n_epochs > 0 and (trainer.current_epoch + 1) % self.every_n_epochs == 0
        self._undrawn = None
        self._report(trainer, pl_module, "val", draw=asked or trainer.state.fn != "fit")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._undrawn is not None:
            self._show(trainer, *self._undrawn)
            self._undrawn = None

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.on_train_end(trainer, pl_module)  # a failed fit still shows its last validation

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._report(trainer, pl_module, "test")

    def report_validation_as_test(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The last validation's matrix and mistakes as the test stage's (same file, same weights),
        drawn with test titles: fit has closed that validation's figures by then."""
        self._report(trainer, pl_module, "test", source="val")

    def _report(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str, source: str | None = None,
                draw: bool = True) -> None:
        """Results now; figures now (``draw``) or, for a fit's validation, when training ends."""
        if not trainer.is_global_zero:
            return
        matrix = pl_module.epoch_results[source or stage]["confusion_matrix"]  # set by the module's epoch end
        names = list(pl_module.class_names)
        self.results[stage] = {
            "confusion_matrix": matrix.tolist(),
            "misclassified": [{"index": i, "predicted": names[p], "expected": names[e]} for i, p, e, _ in self.mistakes],
        }
        if _tensorboard(trainer) is None and not (stage == "test" and self.png_dir is not None):
            return  # no one to show a figure to: none is drawn
        drawing = (stage, matrix, names, self.mistakes, trainer.global_step)
        if draw:
            self._show(trainer, *drawing)
        else:
            self._undrawn = drawing

    def _show(self, trainer: L.Trainer, stage: str, matrix: torch.Tensor, names: list[str],
              mistakes: list[tuple[int, int, int, torch.Tensor]], step: int) -> None:
        """Drawn, to TensorBoard at ``step`` and for the test stage to PNGs; then closed."""
        figures = {
            "confusion_matrix": confusion_matrix_figure(matrix, names, f"{stage} confusion matrix"),
            "misclassified": self._mistakes_figure(mistakes, names),
        }
        writer = _tensorboard(trainer)
        for name, fig in figures.items():
            if writer is not None:
                writer.add_figure(f"{stage}/{name}", fig, global_step=step, close=False)
            if stage == "test" and self.png_dir is not None:
                save_png(fig, self.png_dir / f"{name}.png")
            plt.close(fig)

    @staticmethod
    def _mistakes_figure(mistakes: list[tuple[int, int, int, torch.Tensor]], names: list[str]):
        if mistakes:
            indices, predicted, expected, images = zip(*mistakes)
            return misclassified_figure(torch.stack(images), predicted, expected, indices, names)
        return misclassified_figure(torch.empty(0, 1, 1, 1), [], [], [], names)


class InputInspection(L.Callback):
    """A grid of training inputs at fit start; first conv/pool feature maps at fit end."""

    def __init__(self, num_images: int = 16, feature_images: int = 4, feature_layers: int = 3) -> None:
        self.num_images, self.feature_images, self.feature_layers = num_images, feature_images, feature_layers

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        writer = _tensorboard(trainer)
        if writer is None or not trainer.is_global_zero or trainer.datamodule is None:
            return
        images, labels = next(iter(trainer.datamodule.train_dataloader()))
        names = pl_module.class_names
        titles = [names[int(label)] for label in labels[: self.num_images]]
        writer.add_figure("inputs/samples", image_grid_figure(images[: self.num_images], titles, "training inputs"), 0)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        writer = _tensorboard(trainer)
        if writer is None or not trainer.is_global_zero or trainer.datamodule is None:
            return
        images = next(iter(trainer.datamodule.test_dataloader()))[0][: self.feature_images].to(pl_module.device)
        net = pl_module.net
        spatial = [i for i, spec in enumerate(net.specs) if spec.kind in SPATIAL_KINDS][: self.feature_layers]
        was_training = net.training
        net.eval()  # inference mode: BatchNormalization must not update its moving statistics here
        try:
            with torch.no_grad():
                for i in spatial:
                    maps = net[: i + 1](images)
                    name = net.layer_names[i]
                    writer.add_figure(f"features/{name}", feature_maps_figure(images, maps, f"{name} ({net.specs[i].kind})"),
                                      trainer.global_step)
        finally:
            net.train(was_training)


class History(L.Callback):
    """Keras' ``History``: ``history["loss"]``, ``["accuracy"]``, ``["val_accuracy"]`` ... one value
    per epoch, read from the module's epoch metrics (the one metrics path).  An epoch is recorded
    when its validation ends (before the checkpoint of that epoch is written, since Lightning runs
    checkpoint callbacks last) or, without validation, when its training ends."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epochs: list[int] = []

    def _record(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or (self.epochs and self.epochs[-1] == trainer.current_epoch):
            return
        for name, value in pl_module.epoch_values().items():
            self.history.setdefault(name, []).append(value)
        self.epochs.append(trainer.current_epoch)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit":
            self._record(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer, pl_module)

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "epochs": self.epochs}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = {name: list(values) for name, values in state_dict["history"].items()}
        self.epochs = list(state_dict["epochs"])


class LossProgressBar(TQDMProgressBar):
    """tqdm redrawn every ``refresh_rate`` steps, showing the latest training loss.

    The loss is read (one host sync) only when the bar is redrawn.  Logged with ``prog_bar=True``
    instead, Lightning would turn it into a Python number after every step: a host sync per step,
    which on a GPU stalls the queue of kernels each time.
    """

    def __init__(self, refresh_rate: int = 20, **kwargs: Any) -> None:
        super().__init__(refresh_rate=refresh_rate, **kwargs)
        self._loss: torch.Tensor | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        self._loss = loss.detach() if isinstance(loss, torch.Tensor) else self._loss
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def get_metrics(self, trainer, pl_module) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        if self._loss is not None and trainer.training:
            metrics["loss"] = f"{float(self._loss):.4g}"
        return metrics
