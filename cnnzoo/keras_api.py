"""Keras' Sequential API on cnnzoo, so a learner can port a seed notebook cell by cell.

    from cnnzoo.keras_api import Sequential, Input, Conv2D, MaxPool2D, Flatten, Dense
    model = Sequential([Input((28, 28, 1)), Conv2D(16, 3, activation="relu"), MaxPool2D(2),
                        Flatten(), Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=5, validation_data=(x_test, y_test))
    history.history["val_accuracy"]

Why this module exists: the seeds build models layer by layer and call ``fit`` on NumPy arrays.
The layers are the project's own Keras-equivalent specs (one description, no second set), and
``fit`` trains through the same ``ClassifierModule`` and Lightning Trainer as every recipe (the
arrays wrapped as a DataModule, ``cnnzoo.train.train_model``), so checkpoints, TensorBoard,
signals and errors behave as on the command line.  Arrays are used as given, as Keras uses them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from cnnzoo.errors import ConfigError, ModelError
from cnnzoo.models import layers as specs
from cnnzoo.models.layers import LayerSpec, layer_configs

#: Keras' loss names cnnzoo computes (cross-entropy on the softmax head; labels may be either form).
LOSSES = ("categorical_crossentropy", "sparse_categorical_crossentropy")
#: Keras' loss classes (``keras.losses.SparseCategoricalCrossentropy()``) for those.
LOSS_CLASSES = {"CategoricalCrossentropy": LOSSES[0], "SparseCategoricalCrossentropy": LOSSES[1]}
#: Keras' metric names that are cnnzoo's accuracy (the argmax of the output against the label).
ACCURACY = ("accuracy", "acc", "categorical_accuracy", "sparse_categorical_accuracy")
ACCURACY_CLASSES = ("CategoricalAccuracy", "SparseCategoricalAccuracy")
#: A Keras optimizer's or loss's config entries cnnzoo leaves to Keras' defaults: (key, the value it takes).
KERAS_DEFAULTS = {"weight_decay": None, "clipnorm": None, "global_clipnorm": None, "clipvalue": None,
                  "use_ema": False, "loss_scale_factor": None, "gradient_accumulation_steps": None,
                  "amsgrad": False, "centered": False, "decay": 0.0, "from_logits": False, "label_smoothing": 0.0,
                  "ignore_class": None, "axis": -1}
#: Config entries with no effect on what cnnzoo trains.
KERAS_INERT = ("name", "ema_momentum", "ema_overwrite_frequency", "jit_compile", "is_legacy_optimizer", "reduction",
               "fn", "dtype")


@dataclasses.dataclass(frozen=True)
class Input:
    """``keras.Input(shape=(H, W, C))``: the per-sample input shape, in Keras' order."""

    shape: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class _FirstLayer:
    """A layer given Keras 2's ``input_shape=`` (the seeds' first layers are written so)."""

    spec: LayerSpec
    input_shape: tuple[int, ...]


def _keras_constructor(spec_class: type[LayerSpec]):
    """The spec class itself, also taking Keras' ``input_shape=`` on a first layer."""

    def make(*args, input_shape: tuple[int, ...] | None = None, **kwargs):
        spec = spec_class(*args, **kwargs)
        return spec if input_shape is None else _FirstLayer(spec, tuple(input_shape))

    make.__name__ = make.__qualname__ = spec_class.__name__
    make.__doc__ = f"``keras.layers.{spec_class.__name__}``: a :class:`cnnzoo.models.layers.{spec_class.__name__}`."
    return make


Conv2D = _keras_constructor(specs.Conv2D)
Dense = _keras_constructor(specs.Dense)
MaxPooling2D = MaxPool2D = _keras_constructor(specs.MaxPooling2D)
AveragePooling2D = AvgPool2D = _keras_constructor(specs.AveragePooling2D)
BatchNormalization = _keras_constructor(specs.BatchNormalization)
Dropout = _keras_constructor(specs.Dropout)
Flatten = _keras_constructor(specs.Flatten)
Activation = _keras_constructor(specs.Activation)


#: Keras' ``verbose`` values: "auto" (1 where someone watches), 0 silent, 1 a bar, 2 a line per epoch.
VERBOSE = ("auto", 0, 1, 2)


def _check_verbose(method: str, verbose: object) -> None:
    if isinstance(verbose, bool) or verbose not in VERBOSE:
        raise ConfigError(f"{method}(verbose={verbose!r}): expected 'auto', 0, 1 or 2")


def _optimizer_options(optimizer: object) -> dict[str, Any]:
    """``compile(optimizer=...)`` as cnnzoo's ``model.optimizer`` options (Keras' ``learning_rate``
    is cnnzoo's ``lr``), checked: a wrong name, option or value is one line naming the argument."""
    from cnnzoo.training.optim import OPTIMIZERS, check_optimizer

    given = f"compile(optimizer={optimizer!r})"
    if _is_keras_object(optimizer):
        given = f"compile(optimizer={_keras_name(optimizer)}(...))"
        options: dict[str, Any] = {"name": type(optimizer).__name__, **_keras_config(optimizer, given, skip=KERAS_INERT)}
    elif isinstance(optimizer, str):
        options = {"name": optimizer}
    elif isinstance(optimizer, dict):
        options = dict(optimizer)
    else:
        raise ConfigError(f"{given}: expected an optimizer name ({', '.join(sorted(OPTIMIZERS))}) "
                          "or a dict such as {'name': 'adam', 'learning_rate': 0.001}")
    name = options.get("name")
    if not isinstance(name, str) or name.lower() not in OPTIMIZERS:
        raise ConfigError(f"{given}: expected one of {', '.join(sorted(OPTIMIZERS))}")
    options["name"] = name.lower()
    if "learning_rate" in options:
        if "lr" in options:
            raise ConfigError(f"{given}: give learning_rate or lr, not both")
        options["lr"] = options.pop("learning_rate")
    try:
        check_optimizer(options)
    except ConfigError as e:  # its message names config fields (optimizer.lr): here they are Keras' arguments
        message = str(e).replace("optimizer.lr", "learning_rate").replace(" lr,", " learning_rate,")
        raise ConfigError(f"{given}: {message.replace('optimizer.', '')}") from None
    return options


def _is_keras_object(value: object) -> bool:
    """A Keras (3 or 2 / tf.keras) optimizer, loss or metric object."""
    return hasattr(value, "get_config") and type(value).__module__.split(".")[0] in ("keras", "tf_keras", "tensorflow")


def _keras_name(value: object) -> str:
    return type(value).__name__


def _keras_config(value: object, given: str, skip: tuple[str, ...]) -> dict[str, Any]:
    """A Keras object's ``get_config()`` less the entries at Keras' defaults; another value of one
    of those (``amsgrad=True``, ``from_logits=True`` ...) is one line: cnnzoo does not do it."""
    config = {}
    for key, item in value.get_config().items():
        if key in skip:
            continue
        if key in KERAS_DEFAULTS:
            if item != KERAS_DEFAULTS[key]:
                raise ConfigError(f"{given}: {key}={item!r} is not supported by cnnzoo "
                                  f"(expected {key}={KERAS_DEFAULTS[key]!r})")
            continue
        if isinstance(item, (float, np.floating)):
            item = float(str(np.float32(item)))  # Keras keeps float32: 1e-3, not 0.0010000000474974513
        config[key] = item
    return config


def _loss_name(loss: object) -> str:
    """``compile(loss=...)``: a Keras loss name, class name, function or object, as one of :data:`LOSSES`."""
    expected = f"expected one of {', '.join(LOSSES)} (a name, a keras.losses function or object)"
    if _is_keras_object(loss):
        given = f"compile(loss={_keras_name(loss)}(...))"
        if type(loss).__name__ not in LOSS_CLASSES:
            raise ConfigError(f"{given}: {expected}")
        _keras_config(loss, given, skip=KERAS_INERT)
        return LOSS_CLASSES[type(loss).__name__]
    name = getattr(loss, "__name__", None) if callable(loss) else loss
    name = LOSS_CLASSES.get(name, name) if isinstance(name, str) else name
    if name not in LOSSES:
        raise ConfigError(f"compile(loss={loss!r}): {expected}")
    return name


def _metric_names(metrics: object) -> list[str]:
    """``compile(metrics=...)``: Keras' names (or objects) of accuracy, as Keras names them."""
    if metrics is None:
        return []
    if not isinstance(metrics, (list, tuple)):
        raise ConfigError(f"compile(metrics={metrics!r}): expected a list, such as ['accuracy']")
    names = []
    for metric in metrics:
        if _is_keras_object(metric) and type(metric).__name__ in ACCURACY_CLASSES:
            names.append(metric.name)
        elif isinstance(metric, str) and metric in ACCURACY:
            names.append(metric)
        else:
            shown = f"{_keras_name(metric)}()" if _is_keras_object(metric) else repr(metric)
            raise ConfigError(f"compile(metrics={metrics!r}): cnnzoo reports loss, accuracy, f1 and top5; "
                              f"{shown} is not one of them (accuracy: {', '.join(ACCURACY)})")
    return list(dict.fromkeys(names))


#: Keras' ``fit`` arguments cnnzoo does not take, and what it takes instead.
FIT_INSTEAD = {
    "initial_epoch": "each fit() counts epochs from 0 and goes on from the weights the last one left",
    "steps_per_epoch": "use overrides=['+trainer.limit_train_batches=N']",
    "validation_steps": "use overrides=['+trainer.limit_val_batches=N']",
    "validation_freq": "use overrides=['+trainer.check_val_every_n_epoch=N']",
    "validation_batch_size": "validation batches are batch_size",
    "class_weight": "cnnzoo weighs every sample alike",
    "sample_weight": "cnnzoo weighs every sample alike",
}


def _check_fit_options(options: dict[str, Any]) -> None:
    for key, value in options.items():
        if key in FIT_INSTEAD:
            raise ConfigError(f"fit({key}={value!r}): not supported by cnnzoo; {FIT_INSTEAD[key]}")
        raise ConfigError(f"fit({key}={value!r}): not an argument of fit; expected x, y, epochs, batch_size, "
                          "validation_data, validation_split, shuffle, verbose, callbacks, run_dir or overrides")


def _lightning_callbacks(callbacks: object) -> list:
    """``fit(callbacks=...)``: Lightning callbacks (Keras' do not run on a Lightning Trainer)."""
    from lightning.pytorch.callbacks import Callback

    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)):
        raise ConfigError(f"fit(callbacks={type(callbacks).__name__}): expected a list of Lightning callbacks")
    wrong = next((c for c in callbacks if not isinstance(c, Callback)), None)
    if wrong is not None:
        raise ConfigError(f"fit(callbacks=...): {type(wrong).__module__}.{type(wrong).__name__} is not a Lightning "
                          "callback; expected lightning.pytorch.callbacks objects (Keras callbacks do not run on "
                          "cnnzoo; Lightning has EarlyStopping(monitor='val/loss') too)")
    return list(callbacks)


def _keras_history(history: dict[str, list[float]], metrics: list[str]) -> dict[str, list[float]]:
    """The run's history under the metric names compile() was given, as Keras keys it
    (``sparse_categorical_accuracy``, ``val_sparse_categorical_accuracy``); ``accuracy`` without any."""
    named = {}
    for key, values in history.items():
        base = key.removeprefix("val_")
        for name in ((metrics or ["accuracy"]) if base == "accuracy" else [base]):  # kept, as f1 and top5
            named[key[: len(key) - len(base)] + name] = values
    return named


@contextmanager
def _silent(verbose: object) -> Iterator[None]:
    """Keras' ``verbose=0``: none of the run's info lines (cnnzoo's set-up notes, the summary
    table, the run dir and metrics table, Lightning's); warnings and errors still show."""
    from cnnzoo.training.console import LIGHTNING_LOGGERS

    if verbose not in (0, False):
        yield
        return
    loggers = [logging.getLogger(name) for name in (*LIGHTNING_LOGGERS, "cnnzoo")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logging.WARNING, logger.getEffectiveLevel()))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _batch_size(method: str, batch_size: object) -> int:
    """Keras' ``batch_size``: None is 32."""
    if batch_size is None:
        return 32
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"{method}(batch_size={batch_size!r}): expected a positive integer or None")
    return int(batch_size)


@dataclasses.dataclass
class History:
    """Keras' ``History``: ``history`` maps each metric (``loss``, ``accuracy``, ``val_loss`` ...)
    to its value per epoch; ``epoch`` lists the epochs."""

    history: dict[str, list[float]]
    run_dir: Path | None = None

    @property
    def epoch(self) -> list[int]:
        return list(range(len(next(iter(self.history.values()), []))))


def _name_logged_run(cfg, name: str) -> None:
    """The logger's run name (TensorBoard's ``version``, MLflow's ``run_name``), unless the user set it."""
    from omegaconf import open_dict

    logger = cfg.get("logger")
    for key in ("version", "run_name"):
        if logger is not None and key in logger and logger[key] is None:
            with open_dict(logger):
                logger[key] = name


class Sequential:
    """A Keras ``Sequential`` model of cnnzoo layer specs: ``add``, ``compile``, ``fit``,
    ``evaluate``, ``predict``, ``summary``, ``save``, ``get_weights``/``set_weights``."""

    def __init__(self, layers: list | None = None, name: str = "sequential") -> None:
        self.name = name
        self.layers: list[LayerSpec] = []
        self._input_shape: tuple[int, ...] | None = None  # per sample, Keras order (H, W, C) or (H, W)
        self.module = None  # the ClassifierModule, once the input shape is known
        self.optimizer: dict[str, Any] = {"name": "rmsprop"}  # Keras' compile() default
        self.loss: str | None = None  # compile()'s, one of LOSSES; None: not compiled
        self.metrics: list[str] = []
        self.history: History | None = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer: LayerSpec | Input) -> None:
        if self.module is not None:
            raise ModelError(f"{self.name}: layers cannot be added once the model is built")
        if isinstance(layer, _FirstLayer):
            self._input_shape, layer = layer.input_shape, layer.spec
        if isinstance(layer, Input):
            self._input_shape = tuple(layer.shape)
        elif isinstance(layer, LayerSpec):
            self.layers.append(layer)
        else:
            raise ModelError(f"{self.name}.add({layer!r}): expected a cnnzoo.keras_api layer or Input(shape)")

    def compile(self, optimizer: Any = "rmsprop", loss: Any = "categorical_crossentropy",
                metrics: list | None = None) -> None:
        """Keras' arguments and defaults: ``optimizer`` ``"adam"``/``"rmsprop"``/``"sgd"``,
        ``{"name": "adam", "learning_rate": 3e-4}`` or a Keras optimizer object
        (``keras.optimizers.Adam(learning_rate=1e-3)``, read through its ``get_config()``); ``loss``
        one of :data:`LOSSES` by name, function or Keras object; ``metrics`` Keras' accuracy names
        (:data:`ACCURACY`) or objects.  Everything is checked here, not at ``fit``."""
        options, loss_name, names = _optimizer_options(optimizer), _loss_name(loss), _metric_names(metrics)
        self.optimizer, self.loss, self.metrics = options, loss_name, names  # metrics: Keras' names, evaluate's keys
        if self.module is not None:
            self.module.optimizer_options = dict(self.optimizer)

    # ------------------------------------------------------------------ building

    def build(self, input_shape: tuple[int, ...] | None = None) -> None:
        """Build the network for a per-sample ``(H, W, C)`` (or ``(H, W)``) input."""
        from cnnzoo.training.module import ClassifierModule

        if self.module is not None:
            return
        shape = tuple(input_shape or self._input_shape or ())
        if len(shape) not in (2, 3):
            raise ModelError(f"{self.name} is not built: add Input(shape=(H, W, C)) first, or call fit()")
        self._input_shape = shape
        chw = (shape[2], shape[0], shape[1]) if len(shape) == 3 else (1, *shape)
        if not self.layers:
            raise ModelError(f"{self.name} has no layers")
        self.module = ClassifierModule(self.name, None, list(chw), optimizer=dict(self.optimizer),
                                       layers=layer_configs(self.layers))  # classes: the last layer's

    def _compiled(self, method: str) -> None:
        """Keras' check: ``fit`` and ``evaluate`` need a loss, so ``compile()`` first."""
        if self.loss is None:
            raise ConfigError(f"You must call `compile()` before calling `{method}()`.")

    def _built(self):
        self.build()
        return self.module

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """Keras' ``input_shape``: ``(None, H, W, C)`` (batch first), once the input is known."""
        if self._input_shape is None:
            raise ModelError(f"{self.name} has no input shape yet: add Input(shape=(H, W, C)) first, or call fit()")
        return (None, *self._input_shape)

    @property
    def output_shape(self) -> tuple[int | None, ...]:
        """Keras' ``output_shape``: ``(None, classes)`` for a classifier."""
        from cnnzoo.models.layers import keras_shape

        return (None, *keras_shape(self.net.shapes[-1]))

    @property
    def num_classes(self) -> int:
        return self.net.num_classes

    @property
    def net(self):
        """The built PyTorch network (``(N, C, H, W)`` -> logits): ``cnnzoo.models.summary(model.net)``."""
        return self._built().net

    # ------------------------------------------------------------------ training

    def fit(self, x, y, batch_size: int | None = None, epochs: int = 1, verbose: int | str = "auto",
            callbacks: list | None = None, validation_split: float = 0.0, validation_data: tuple | None = None,
            shuffle: bool = True, *, run_dir: str | Path | None = None, overrides: tuple[str, ...] = (),
            **keras_options: Any) -> History:
        """Keras' ``fit``, its arguments in Keras' order (``batch_size`` None is 32): ``validation_split`` takes the last fraction of ``x``/``y`` before
        shuffling; ``verbose`` is Keras' (``"auto"``/1: a live bar in a terminal or Jupyter and a
        line per epoch, 2: the lines only, 0: silent); ``callbacks`` are Lightning callbacks
        (``lightning.pytorch.callbacks.EarlyStopping(monitor="val/loss")``), not Keras ones; ``run_dir`` is where
        checkpoints and TensorBoard go (default: a new ``outputs/train/<time>``); ``overrides`` are
        further ``cnnzoo.train`` overrides.  Keras' other arguments (:data:`FIT_INSTEAD`) are one line
        saying what cnnzoo takes instead."""
        from cnnzoo.api import _typed_errors, compose_run
        from cnnzoo.data.arrays import ArrayDataModule, as_images, as_labels
        from cnnzoo.train import train_model
        from cnnzoo.training.loggers import run_name

        _check_verbose("fit", verbose)
        batch_size = _batch_size("fit", batch_size)
        _check_fit_options(keras_options)
        callbacks = _lightning_callbacks(callbacks)
        self._compiled("fit")
        with _typed_errors():
            images = as_images(x)
            self.build((images.shape[2], images.shape[3], images.shape[1]))  # Keras' (H, W, C)
            labels = as_labels(y, self.num_classes)
            if validation_data is not None:
                val = (as_images(validation_data[0], "validation_data x"),
                       as_labels(validation_data[1], self.num_classes, "validation_data y"))
            elif validation_split:
                if not 0 < validation_split < 1:
                    raise ConfigError(f"validation_split={validation_split!r}: expected a fraction in (0, 1)")
                cut = int(len(images) * (1 - validation_split))
                images, labels, val = images[:cut], labels[:cut], (images[cut:], labels[cut:])
            else:
                val = None
            datamodule = ArrayDataModule((images, labels), val, self.num_classes, batch_size, shuffle)
        # Keras' verbose: "auto"/1 a live bar where someone watches, 2 one line per epoch, 0 silent.
        bar = [] if verbose in ("auto", 1) else ["~callbacks.progress_bar", "+trainer.enable_progress_bar=false"]
        bar += ["~callbacks.epoch_lines"] if verbose in (0, False) else []
        cfg = compose_run("train", [f"model.arch={self.name}", f"trainer.max_epochs={epochs}",
                                    f"data.batch_size={batch_size}", "test=false", "callbacks.input_inspection=null",
                                    *bar, *overrides], run_dir)
        _name_logged_run(cfg, run_name(overrides, model=self.name))  # not fit's own overrides
        module = self.module
        # Lightning adds a module's own callbacks to the run's (one of a type the run has replaces it)
        module.configure_callbacks = lambda: callbacks
        try:
            with _typed_errors(), _silent(verbose):
                result, self.module = train_model(cfg, datamodule=datamodule, model=module)
        finally:
            vars(module).pop("configure_callbacks", None)
        self.history = History(_keras_history(result["history"], self.metrics), Path(result["run_dir"]))
        return self.history

    @property
    def metrics_names(self) -> list[str]:
        """Keras' ``metrics_names``: what :meth:`evaluate` returns, in order (``["loss", "accuracy"]``)."""
        return ["loss", *self.metrics]

    def evaluate(self, x, y, batch_size: int | None = None, verbose: int | str = "auto", *,
                 return_dict: bool = False) -> float | list[float] | dict[str, float]:
        """Keras' ``evaluate``: the loss, or ``[loss, accuracy]`` when compiled with ``metrics``;
        ``return_dict=True``: ``{"loss": ..., "accuracy": ...}``.  ``verbose`` is taken as Keras takes
        it; nothing is printed either way."""
        import torch

        from cnnzoo.data.arrays import as_images, as_labels
        from cnnzoo.training.metrics import ClassCounts

        _check_verbose("evaluate", verbose)
        self._compiled("evaluate")
        batch_size = _batch_size("evaluate", batch_size)
        if not isinstance(return_dict, bool):
            raise ConfigError(f"evaluate(return_dict={return_dict!r}): expected True or False")
        module = self._built().eval()
        images, labels = as_images(x), as_labels(y, self.num_classes)
        counts = ClassCounts(self.num_classes)
        with torch.no_grad():
            for part, target in zip(images.split(batch_size), labels.split(batch_size)):
                logits = module(part)
                counts.update(logits, target, module.loss(logits, target))
        values = counts.compute()
        results = {"loss": values["loss"].item(), **{name: values["accuracy"].item() for name in self.metrics}}
        if return_dict:
            return results
        return list(results.values()) if self.metrics else results["loss"]

    def predict(self, x, batch_size: int | None = None, verbose: int | str = "auto") -> np.ndarray:
        """Keras' ``predict``: what the model outputs (probabilities for a softmax head), as NumPy;
        ``verbose`` is taken as Keras takes it; nothing is printed either way."""
        import torch

        from cnnzoo.data.arrays import as_images

        _check_verbose("predict", verbose)
        batch_size = _batch_size("predict", batch_size)
        module = self._built().eval()
        images = as_images(x)
        with torch.no_grad():
            return torch.cat([module.probabilities(part) for part in images.split(batch_size)]).numpy()

    # ------------------------------------------------------------------ inspection and files

    def feature_maps(self, x, layer: int | str) -> np.ndarray:
        """What layer ``layer`` (index or name, ``conv2d_1``) outputs for ``x``, in Keras' NHWC
        layout: Keras' ``Model(model.inputs, model.layers[i].output)`` in one call."""
        import torch

        from cnnzoo.data.arrays import as_images

        net = self._built().eval().net
        names = net.layer_names
        index = names.index(layer) if isinstance(layer, str) and layer in names else layer
        if not isinstance(index, int) or not -len(names) <= index < len(names):
            raise ModelError(f"feature_maps(layer={layer!r}): expected an index or one of {', '.join(names)}")
        with torch.no_grad():
            maps = net[: index % len(names) + 1](as_images(x))
        return (maps.permute(0, 2, 3, 1) if maps.ndim == 4 else maps).numpy()

    def summary(self) -> None:
        """Print Keras' ``model.summary()`` table."""
        from cnnzoo.models import summary

        print(summary(self._built().net))

    def count_params(self) -> int:
        from cnnzoo.models import summary

        return summary(self._built().net).total

    def get_weights(self) -> list[np.ndarray]:
        """Keras' ``get_weights()``: the arrays in Keras' order and layout."""
        from cnnzoo.interop.keras_layout import keras_weights

        return keras_weights(self._built().net)

    def set_weights(self, arrays: list) -> None:
        from cnnzoo.interop.keras_layout import load_keras_weights

        load_keras_weights(self._built().net, arrays)

    def save(self, path: str | Path) -> Path:
        """``.ckpt`` (a checkpoint ``cnnzoo.load`` and ``python -m cnnzoo.*`` read), or ``.keras`` /
        ``.h5`` (Keras' own formats: ``keras.models.load_model`` gives the same outputs)."""
        from cnnzoo.api import Model

        return Model(self._built()).save(path)
