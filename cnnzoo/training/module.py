"""``ClassifierModule``: the one LightningModule that trains any registered cnnzoo network.

The network itself is a plain ``nn.Module`` from ``cnnzoo.models.create`` returning logits; this
module adds what Keras' ``compile``/``fit`` add: the loss (cross-entropy on logits, equal to Keras'
categorical cross-entropy on softmax outputs), the optimizer by Keras name with Keras defaults, and
metrics aggregated per epoch so logging never syncs every step (training: ``cnnzoo.training.metrics``, one
confusion-matrix update per step; validation and test: torchmetrics).  Everything needed to
rebuild the network, and the data config it was trained with, is saved as hyperparameters, so a
checkpoint alone restores the model and says which data and preprocessing it expects.

Training options beyond the notebooks (a per-step learning-rate schedule, label smoothing) default
to off, so a recipe without them is the Keras recipe; ``channels_last`` and ``compile`` change only
speed (``docs/performance.md`` has what each gains where).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from cnnzoo.errors import ConfigError, ModelError
from cnnzoo.training.metrics import ClassCounts
from cnnzoo.models import build_sequential, create, summary
from cnnzoo.models.layers import SPECS
from cnnzoo.training.optim import create_optimizer, create_scheduler
from cnnzoo.training.optim import check_optimizer, check_scheduler

DEFAULT_OPTIMIZER = {"name": "rmsprop"}  # Keras' compile() default


def _metrics(num_classes: int, prefix: str) -> MetricCollection:
    metrics: dict[str, Any] = {
        "acc": MulticlassAccuracy(num_classes, average="micro"),
        "f1": MulticlassF1Score(num_classes, average="macro"),
    }
    if num_classes > 5:
        metrics["top5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro")
    # No compute groups: torchmetrics merges metrics whose states are equal after the first batch
    # (acc and top-5 are, when that batch is all correct), and would then report top-5 as acc.
    return MetricCollection(metrics, prefix=prefix, compute_groups=False)


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
        layers: list[dict[str, Any]] | None = None,
        scheduler: dict[str, Any] | None = None,
        label_smoothing: float = 0.0,
        channels_last: bool = False,
        compile: bool | str = False,  # noqa: A002 - the config key users know from torch.compile
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_optimizer(optimizer or DEFAULT_OPTIMIZER)  # bad options fail here, before the trainer starts
        check_scheduler(scheduler)
        if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) or not 0 <= label_smoothing < 1:
            raise ConfigError(f"model.label_smoothing={label_smoothing!r}: expected a number in [0, 1)")
        if layers is None:  # a registered architecture
            self.net = create(arch, num_classes=num_classes, input_shape=tuple(input_shape))
        else:  # an architecture given layer by layer (an imported Keras model)
            specs = [SPECS[layer["class_name"]](**layer["config"]) for layer in layers]
            self.net = build_sequential(specs, tuple(input_shape), name=arch)
        # NHWC activations: oneDNN's fast convolution layout on CPU (docs/performance.md).
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net = self.net.to(memory_format=self.memory_format)
        # torch.compile of the training forward (true, or a mode such as "reduce-overhead" for CUDA
        # graphs); a compiled bound method, so the checkpoint's state_dict keys stay those of self.net.
        if compile not in (False, True, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"):
            raise ConfigError(f"compile={compile!r}: expected false, true or a torch.compile mode "
                              "(default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs)")
        mode = compile if isinstance(compile, str) else None
        self.compiled_forward = torch.compile(self.net.forward, mode=mode) if compile else None
        self.example_input_array = torch.zeros(1, *input_shape)  # for TensorBoard's graph
        self.optimizer_options = dict(optimizer or DEFAULT_OPTIMIZER)
        self.scheduler_options = dict(scheduler) if scheduler else None
        self.label_smoothing = float(label_smoothing)
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.train_counts = ClassCounts(num_classes)  # train/acc, f1, top5 at each epoch's end
        self.val_metrics = _metrics(num_classes, "val/")
        self.test_metrics = _metrics(num_classes, "test/")
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        # The running epoch aggregates of training go into checkpoints, so that a run resumed in
        # the middle of an epoch reports the same epoch metrics as one that was never stopped.
        self.train_counts.persistent(True)
        self._counts_epoch: int | None = None  # the epoch train_counts belong to

    @classmethod
    def from_keras(cls, path: str, optimizer: dict[str, Any] | None = None, class_names: Sequence[str] | None = None,
                   data_config: dict[str, Any] | None = None, **speed: Any) -> ClassifierModule:
        """A Keras Sequential file (``.h5``/``.keras``) as a module to evaluate or fine-tune: its
        architecture goes into the hyper-parameters (checkpoints do not need the file again)."""
        from cnnzoo.interop.keras_files import load_model  # h5py only when a Keras file is used

        net = load_model(path)
        if net.output_activation not in ("softmax", "linear"):
            raise ModelError(f"keras_model={path}: its last activation is {net.output_activation}; cnnzoo trains "
                             "and evaluates classifiers ending in softmax (or linear logits)")
        layers = [{"class_name": spec.kind, "config": dataclasses.asdict(spec)} for spec in net.specs]
        module = cls(net.name, net.num_classes, list(net.input_shape), optimizer, class_names, data_config, layers,
                     **speed)
        module.net.load_state_dict(net.state_dict())
        return module

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim == 4:
            images = images.contiguous(memory_format=self.memory_format)
        if self.compiled_forward is not None and self.training:
            return self.compiled_forward(images)
        return self.net(images)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Keras' categorical cross-entropy (on logits), with the configured label smoothing."""
        return F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> dict:
        images, labels = batch
        logits = self(images)
        loss = self.loss(logits, labels)
        # Epoch values come from metric states, synchronised across DDP ranks once per epoch.
        if stage == "train":
            self.train_counts.update(logits, labels, loss)
            if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:  # the steps Lightning logs
                self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False, prog_bar=True)
        else:
            metrics, mean_loss = getattr(self, f"{stage}_metrics"), getattr(self, f"{stage}_loss")
            metrics.update(logits, labels)
            mean_loss.update(loss.detach(), weight=len(labels))
            self.log(f"{stage}/loss", mean_loss, on_step=False, on_epoch=True, prog_bar=True)
            self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=stage != "test")
        return {"loss": loss, "logits": logits.detach()}

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")["loss"]

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict:
        return self._step(batch, "val")  # logits feed cnnzoo.training.callbacks.PredictionReport

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict:
        return self._step(batch, "test")

    def predict_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(images).softmax(dim=-1)

    def configure_optimizers(self) -> torch.optim.Optimizer | dict[str, Any]:
        options = dict(self.optimizer_options)
        optimizer = create_optimizer(self.parameters(), options.pop("name"), **options)
        if not self.scheduler_options:
            return optimizer
        options = dict(self.scheduler_options)
        scheduler = create_scheduler(optimizer, self.trainer.estimated_stepping_batches, options.pop("name"), **options)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_train_epoch_end(self) -> None:
        """The epoch's training metrics (already summed across DDP ranks by ``compute``) and its
        final learning rate (``train/lr``), so schedules show next to the loss."""
        values = {f"train/{'loss_epoch' if name == 'loss' else name}": value
                  for name, value in self.train_counts.compute().items()}
        self.log_dict(values, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/lr", float(self.optimizers().param_groups[0]["lr"]), on_step=False, on_epoch=True)

    def on_train_epoch_start(self) -> None:
        """A new epoch counts from zero; counts restored from a checkpoint of this same epoch (a
        mid-epoch resume) go on, those of an epoch that had finished (a checkpoint written after
        validation) are dropped."""
        if self._counts_epoch != self.current_epoch:
            self.train_counts.reset()
        self._counts_epoch = self.current_epoch

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Random state too, so dropout masks after a resume are those of an uninterrupted run."""
        checkpoint["train_counts_epoch"] = self._counts_epoch
        checkpoint["rng_states"] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            checkpoint["rng_states"]["cuda"] = torch.cuda.get_rng_state_all()

    def upgrade_state_dict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Checkpoints of cnnzoo before ``ClassCounts`` kept the running training metrics as
        torchmetrics states (``train_metrics.*``, ``train_loss.*``); those are dropped and empty
        counts put in their place, so the checkpoints still load (a mid-epoch resume of one
        restarts that epoch's training metrics)."""
        for key in [k for k in state_dict if k.startswith(("train_metrics.", "train_loss."))]:
            del state_dict[key]
        for key, value in self.train_counts.state_dict(prefix="train_counts.").items():
            state_dict.setdefault(key, torch.zeros_like(value))
        return state_dict

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.upgrade_state_dict(checkpoint["state_dict"])
        self._counts_epoch = checkpoint.get("train_counts_epoch")
        states = checkpoint.get("rng_states", {})
        if "torch" in states:
            torch.set_rng_state(states["torch"])
        if "cuda" in states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])

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
