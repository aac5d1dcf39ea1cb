"""``ClassifierModule``: the one LightningModule that trains any cnnzoo network.

The network itself is a plain ``nn.Module`` built from a Keras layer list (``cnnzoo.models``)
returning logits; this module adds what Keras' ``compile``/``fit`` add: the loss (cross-entropy on
logits, equal to Keras' categorical cross-entropy on softmax outputs), the optimizer by Keras name
with Keras defaults, and one metrics path (``ClassCounts``) for training, validation and test,
aggregated per epoch so logging never syncs every step.  The layer list itself is always a
hyper-parameter (a registered architecture is a named list; a Keras file's list is read from the
file once), with the data config the network was trained on, so a checkpoint alone restores the
model and says which data and preprocessing it expects.

Training options beyond the notebooks (a per-step learning-rate schedule, label smoothing) default
to off, so a recipe without them is the Keras recipe; ``channels_last`` and ``compile`` change only
speed (``docs/performance.md`` has what each gains where).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info

from cnnzoo.errors import ConfigError, ModelError
from cnnzoo.models import build_sequential, layer_configs, specs, specs_from_configs, summary
from cnnzoo.training.metrics import ClassCounts
from cnnzoo.training.optim import DEFAULT_OPTIMIZER, create_optimizer, create_scheduler
from cnnzoo.training.optim import check_optimizer, check_scheduler

STAGES = ("train", "val", "test")
COMPILE_MODES = (False, True, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class ClassifierModule(L.LightningModule):
    """Trains a Keras layer list like Keras' ``compile(loss='categorical_crossentropy')``: the
    registered architecture ``arch``, the list ``layers`` (``layer_configs`` form), or the layers
    and weights of the Keras file ``keras_model``."""

    def __init__(
        self,
        arch: str | None,
        num_classes: int | None,  # both taken from the Keras file when keras_model is given
        input_shape: Sequence[int] | None,
        optimizer: dict[str, Any] | None = None,
        class_names: Sequence[str] | None = None,
        data_config: dict[str, Any] | None = None,
        layers: list[dict[str, Any]] | None = None,
        scheduler: dict[str, Any] | None = None,
        label_smoothing: float = 0.0,
        channels_last: bool = False,
        compile: bool | str = False,  # noqa: A002 - the config key users know from torch.compile
        keras_model: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_optimizer(optimizer or DEFAULT_OPTIMIZER)  # bad options fail here, before the trainer starts
        check_scheduler(scheduler)
        if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) or not 0 <= label_smoothing < 1:
            raise ConfigError(f"model.label_smoothing={label_smoothing!r}: expected a number in [0, 1)")
        if compile not in COMPILE_MODES:
            raise ConfigError(f"compile={compile!r}: expected false, true or a torch.compile mode "
                              "(default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs)")
        self.net = self._network(arch, num_classes, tuple(input_shape or ()), layers, keras_model)
        num_classes, input_shape = self.net.num_classes, self.net.input_shape  # a Keras file's own sizes
        # The layer list is the model's one description: checkpoints rebuild from it alone.
        self.hparams.update(arch=self.net.name, layers=layer_configs(self.net.specs), keras_model=None,
                            num_classes=num_classes, input_shape=list(input_shape))
        # NHWC activations: oneDNN's fast convolution layout on CPU (docs/performance.md).
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net = self.net.to(memory_format=self.memory_format)
        # torch.compile of the training forward (true, or a mode such as "reduce-overhead" for CUDA
        # graphs); a compiled bound method, so the checkpoint's state_dict keys stay those of self.net.
        mode = compile if isinstance(compile, str) else None
        self.compiled_forward = torch.compile(self.net.forward, mode=mode) if compile else None
        self.example_input_array = torch.zeros(1, *input_shape)  # for TensorBoard's graph
        self.optimizer_options = dict(optimizer or DEFAULT_OPTIMIZER)
        self.scheduler_options = dict(scheduler) if scheduler else None
        self.label_smoothing = float(label_smoothing)
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.train_counts, self.val_counts, self.test_counts = (ClassCounts(num_classes) for _ in STAGES)
        # The running training counts go into checkpoints, so that a run resumed in the middle of
        # an epoch reports the same epoch metrics as one that was never stopped.
        self.train_counts.persistent(True)
        self._counts_epoch: int | None = None  # the epoch the training counts belong to
        self.epoch_results: dict[str, dict[str, torch.Tensor]] = {}  # each stage's last epoch, for callbacks

    @staticmethod
    def _network(arch, num_classes, input_shape, layers, keras_model):
        """The network from its one description: a Keras file's layers and weights (the file's
        own sizes), a layer list, or the registered architecture's list."""
        if keras_model:
            from cnnzoo.interop.keras_files import load_model  # h5py only when a Keras file is used

            net = load_model(keras_model)
            if net.output_activation not in ("softmax", "linear"):
                raise ModelError(f"keras_model={keras_model}: its last activation is {net.output_activation}; cnnzoo "
                                 "trains and evaluates classifiers ending in softmax (or linear logits)")
            return net.train()  # its own sizes; checkpoints.check_fits compares them with the data
        layer_list = specs_from_configs(layers) if layers else specs(arch, num_classes)
        return build_sequential(layer_list, input_shape, name=arch or "sequential")

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
        self.counts(stage).update(logits, labels, loss)  # epoch values: one sync per epoch, under DDP too
        if stage == "train" and (self.global_step + 1) % self.trainer.log_every_n_steps == 0:  # the steps Lightning logs
            # not prog_bar: Lightning would read it back every step (a host sync); LossProgressBar shows it
            self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False)
        return {"loss": loss, "logits": logits.detach()}

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")["loss"]

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict:
        return self._step(batch, "val")  # logits feed cnnzoo.training.callbacks.PredictionReport

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict:
        return self._step(batch, "test")

    def predict_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self.probabilities(images)

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """What the Keras model returns (class probabilities for a softmax head)."""
        if images.ndim == 4:
            images = images.contiguous(memory_format=self.memory_format)
        return self.net.keras_output(images)

    def configure_optimizers(self) -> torch.optim.Optimizer | dict[str, Any]:
        options = dict(self.optimizer_options)
        optimizer = create_optimizer(self.parameters(), options.pop("name"), **options)
        if not self.scheduler_options:
            return optimizer
        options = dict(self.scheduler_options)
        scheduler = create_scheduler(optimizer, self._total_steps(), options.pop("name"), **options)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _total_steps(self) -> int:
        """The run's optimizer steps, as ``trainer.estimated_stepping_batches`` counts them, from
        the DataModule's own batches: asking the trainer would make it build its train loader
        before a checkpoint is restored, and a mid-epoch resume would then lose its place in the
        data (Lightning applies saved loader states only to a loader it builds afterwards)."""
        trainer = self.trainer
        batches = len(trainer.datamodule.train_dataloader())
        limit = trainer.limit_train_batches
        batches = min(batches, int(limit)) if isinstance(limit, int) else int(batches * limit)
        if trainer.fast_dev_run:
            return int(trainer.fast_dev_run)
        steps = math.ceil(batches / trainer.accumulate_grad_batches) * max(trainer.max_epochs, 1)
        return min(steps, trainer.max_steps) if trainer.max_steps > 0 else steps

    def counts(self, stage: str) -> ClassCounts:
        """The metrics state of ``stage`` (``train``, ``val`` or ``test``)."""
        return getattr(self, f"{stage}_counts")

    def _log_epoch(self, stage: str) -> None:
        """The stage's epoch metrics, summed across DDP ranks by ``compute``: logged as
        ``<stage>/<name>`` and kept in ``epoch_results`` (with the confusion matrix) for callbacks."""
        values = self.counts(stage).compute()
        self.epoch_results[stage] = values
        self.log_dict({f"{stage}/{name}": value for name, value in values.items() if name != "confusion_matrix"},
                      on_step=False, on_epoch=True, prog_bar=stage != "test")

    def epoch_values(self) -> dict[str, float]:
        """This epoch's metrics under Keras' ``History`` names (``loss``, ``accuracy``, ...,
        ``val_loss``, ``val_accuracy``, ..., ``learning_rate``), once its training has ended."""
        values = {name: float(v) for name, v in self.train_counts.compute().items() if name != "confusion_matrix"}
        values["learning_rate"] = float(self.optimizers().param_groups[0]["lr"])
        if self.trainer.val_dataloaders and "val" in self.epoch_results:
            values.update({f"val_{name}": float(v) for name, v in self.epoch_results["val"].items()
                           if name != "confusion_matrix"})
        return values

    def on_train_epoch_start(self) -> None:
        """A new epoch counts from zero; counts restored from a checkpoint of this same epoch (a
        mid-epoch resume) go on, those of an epoch that had finished (a checkpoint written after
        validation) are dropped."""
        if self._counts_epoch != self.current_epoch:
            self.train_counts.reset()
        self._counts_epoch = self.current_epoch

    def on_train_epoch_end(self) -> None:
        """The epoch's training metrics and its final learning rate (``train/lr``), so schedules
        show next to the loss."""
        self._log_epoch("train")
        self.log("train/lr", float(self.optimizers().param_groups[0]["lr"]), on_step=False, on_epoch=True)

    def on_validation_epoch_start(self) -> None:
        self.val_counts.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_start(self) -> None:
        self.test_counts.reset()

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Random state too, so dropout masks after a resume are those of an uninterrupted run, and
        the CPU thread count, which a resume keeps (``cnnzoo.threads.apply``): results depend on it."""
        checkpoint["train_counts_epoch"] = self._counts_epoch
        checkpoint["torch_threads"] = torch.get_num_threads()
        checkpoint["rng_states"] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            checkpoint["rng_states"]["cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._counts_epoch = checkpoint.get("train_counts_epoch")
        states = checkpoint.get("rng_states", {})
        if "torch" in states:
            torch.set_rng_state(states["torch"])
        if "cuda" in states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])

    def on_fit_start(self) -> None:
        rank_zero_info(str(summary(self.net)))


def grouped_metrics(metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Trainer ``callback_metrics`` ``{"val/accuracy": t, ...}`` -> ``{"val": {"accuracy": 0.98}, ...}``,
    epoch values only, with Lightning's ``_epoch`` suffix dropped."""
    grouped: dict[str, dict[str, float]] = {}
    for key, value in sorted(metrics.items()):
        stage, _, name = key.partition("/")
        if name and not name.endswith("_step"):
            grouped.setdefault(stage, {})[name.removesuffix("_epoch")] = float(value)
    return grouped
