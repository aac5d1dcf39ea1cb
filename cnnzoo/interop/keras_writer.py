"""cnnzoo networks out, as Keras files: ``save_keras(module_or_net, path)`` writes ``.keras`` or ``.h5``.

Why this module exists: a model trained with cnnzoo should go back to the Keras users the notebooks
are for, as a file ``keras.models.load_model`` opens with the same outputs and compiled, ready to
``fit`` further.  cnnzoo's layer list already is a Keras ``Sequential`` (the specs are named and
shaped like Keras' constructors), so the file is written with json, zipfile and h5py alone: no
Keras, no TensorFlow.  The weights come from :mod:`cnnzoo.interop.keras_layout` (``layer_weights``
lists each layer's arrays as Keras' ``layer.get_weights()``), the one place that knows Keras'
layout; :mod:`cnnzoo.interop.keras_files` reads both formats back.

Formats (chosen by the path's suffix):

* ``.keras``: the Keras 3 zip as Keras 3.15 writes it (stored, not deflated): ``metadata.json``
  (``keras_version``, ``date_saved`` and a ``cnnzoo`` entry with the input contract and class
  names), ``config.json`` (the Sequential with an ``InputLayer`` of ``batch_shape``
  ``[None, H, W, C]``, ``build_config``, and ``compile_config``) and ``model.weights.h5``
  (``layers/<key>/vars/<i>``, the optimizer's two fresh variables, the model's empty ``vars``).
  Config keys newer than Keras 3.0 that would only restate their default (``quantization_config``,
  ``optional``, the renorm options, ``loss_scale_factor`` ...) are left out, so older Keras 3
  releases read the file too;
* ``.h5``: the legacy HDF5 file in the dialect Keras 3 *and* tf.keras 2 both read (Keras 3's own
  ``.h5`` has ``batch_shape`` and dtype-policy objects that tf.keras rejects): tf.keras 2.15's
  layout (bytes attributes ``model_config``/``training_config``/``keras_version``/``backend``,
  ``model_weights/<layer>/<layer>/kernel:0``, ``batch_input_shape``, dtype strings), with
  BatchNormalization's ``axis`` as ``-1`` (Keras 3 rejects tf.keras' list) and the optimizer
  options both know (tf.keras reads a config without ``is_legacy_optimizer`` as its legacy
  optimizer, which computes the same updates).  The ``cnnzoo`` attribute holds the same JSON as
  the ``.keras`` metadata entry.

The training config is the checkpoint's: its optimizer by Keras class (Adam, RMSprop, SGD) with its
settings, categorical cross-entropy (``from_logits`` false for a softmax head, true for linear
logits) with its label smoothing, and ``metrics=["accuracy"]``.  A learning-rate schedule is not
carried (Keras gets the base learning rate; the command says so).  The model takes NHWC float32
batches scaled as the checkpoint's data config says; that scaling, any resize, and the class
names are in the metadata (:mod:`cnnzoo.interop.contract`).
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from cnnzoo.atomic import atomic_output
from cnnzoo.errors import ConfigError, ModelError
from cnnzoo.interop.contract import ModelFacts, describe, keras_input, model_facts
from cnnzoo.interop.keras_layout import layer_weights
from cnnzoo.models.layers import keras_shape

KERAS_VERSION = "3.15.1"  # the Keras 3 release whose .keras layout is written
TF_KERAS_VERSION = "2.15.0"  # the tf.keras release whose .h5 layout is written
FORMATS = {".keras": "keras", ".h5": "h5"}
HEADS = ("softmax", "linear")  # what categorical cross-entropy trains

#: cnnzoo optimizer name -> (Keras class, Keras' default name, {cnnzoo option: (Keras key, default)},
#: the Keras-only options at cnnzoo's fixed value).
OPTIMIZERS: dict[str, tuple[str, str, dict[str, tuple[str, Any]], dict[str, Any]]] = {
    "adam": ("Adam", "adam", {"lr": ("learning_rate", 1e-3), "beta_1": ("beta_1", 0.9),
                              "beta_2": ("beta_2", 0.999), "epsilon": ("epsilon", 1e-7)}, {"amsgrad": False}),
    "rmsprop": ("RMSprop", "rmsprop", {"lr": ("learning_rate", 1e-3), "rho": ("rho", 0.9),
                                       "momentum": ("momentum", 0.0), "epsilon": ("epsilon", 1e-7)},
                {"centered": False}),
    "sgd": ("SGD", "SGD", {"lr": ("learning_rate", 0.01), "momentum": ("momentum", 0.0),
                           "nesterov": ("nesterov", False)}, {}),
}
#: Keras layers with a build() (their config carries build_config) and their weight names.
WEIGHT_NAMES = {"Conv2D": ("kernel", "bias"), "Dense": ("kernel", "bias"),
                "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance")}
BUILT = (*WEIGHT_NAMES, "Flatten")


def save_keras(module_or_net: Any, path: str | Path) -> Path:
    """Write a ``ClassifierModule`` (or a bare ``KerasSequential``: RMSprop, no recorded
    preprocessing) as a Keras file, ``.keras`` or ``.h5`` by the suffix of ``path``; returns it."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"{path}: a Keras file is named .keras (Keras 3 zip) or .h5 (legacy HDF5)")
    write_keras_file(model_facts(module_or_net), path, fmt)
    return path


def write_keras_file(facts: ModelFacts, path: Path, fmt: str) -> None:
    """Write ``facts`` as ``fmt`` (``keras`` or ``h5``) to ``path``, atomically."""
    layers = _layers(facts, fmt)  # every check before anything is written
    training = _training_config(facts, fmt)
    cnnzoo_entry = describe(facts, keras_input(facts))
    with atomic_output(path) as tmp:
        (_write_zip if fmt == "keras" else _write_h5)(tmp, facts, layers, training, cnnzoo_entry)


# ----------------------------------------------------------------------------- model config


def _dtype(fmt: str) -> Any:
    if fmt == "h5":
        return "float32"
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}


def _initializer(kind: str) -> dict:
    return {"module": "keras.initializers", "class_name": kind, "config": {"seed": None} if kind == "GlorotUniform" else {},
            "registered_name": None}


_WEIGHT_OPTIONS = {"kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
                   "kernel_constraint": None, "bias_constraint": None}


def _extras(kind: str) -> dict:
    """The options a Keras config has beyond the spec's fields, at the value cnnzoo computes."""
    if kind in ("Conv2D", "Dense"):
        conv = {"data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1} if kind == "Conv2D" else {}
        return {**conv, "kernel_initializer": _initializer("GlorotUniform"), "bias_initializer": _initializer("Zeros"),
                **_WEIGHT_OPTIONS}
    if kind in ("MaxPooling2D", "AveragePooling2D", "Flatten"):
        return {"data_format": "channels_last"}
    if kind == "BatchNormalization":
        return {"axis": -1, "center": True, "scale": True, "beta_initializer": _initializer("Zeros"),
                "gamma_initializer": _initializer("Ones"), "moving_mean_initializer": _initializer("Zeros"),
                "moving_variance_initializer": _initializer("Ones"), "beta_regularizer": None,
                "gamma_regularizer": None, "beta_constraint": None, "gamma_constraint": None}
    if kind == "Dropout":
        return {"seed": None, "noise_shape": None}
    return {}


def _batch_shape(shape) -> list:
    return [None, *keras_shape(shape)]


def _layers(facts: ModelFacts, fmt: str) -> list[dict]:
    """The Sequential's layer entries, its InputLayer first."""
    net = facts.net
    if net.output_activation not in HEADS:
        raise ModelError(f"{net.name}: its last activation is {net.output_activation}; a Keras file with a "
                         "training config (categorical cross-entropy) needs a softmax or linear head")
    shape_key = "batch_input_shape" if fmt == "h5" else "batch_shape"
    entries = [{"module": "keras.layers", "class_name": "InputLayer",
                "config": {shape_key: _batch_shape(net.input_shape), "dtype": "float32", "sparse": False,
                           "ragged": False, "name": "input_layer"}, "registered_name": None}]
    for spec, name, in_shape in zip(net.specs, net.layer_names, net.shapes):
        fields = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(spec).items()}
        config = {"name": name, "trainable": True, "dtype": _dtype(fmt), **fields, **_extras(spec.kind)}
        entry = {"module": "keras.layers", "class_name": spec.kind, "config": config, "registered_name": None}
        if spec.kind in BUILT:
            entry["build_config"] = {"input_shape": _batch_shape(in_shape)}
        entries.append(entry)
    return entries


def _model_config(facts: ModelFacts, layers: list[dict], fmt: str) -> dict:
    config = {"name": "sequential", "trainable": True, "dtype": _dtype(fmt), "layers": layers}
    if fmt == "h5":
        return {"class_name": "Sequential", "config": config}
    input_shape = _batch_shape(facts.net.input_shape)
    return {"module": "keras", "class_name": "Sequential", "config": {**config, "build_input_shape": input_shape},
            "registered_name": None, "build_config": {"input_shape": input_shape}}


# ----------------------------------------------------------------------------- training config


def _optimizer(facts: ModelFacts, fmt: str) -> dict:
    options = dict(facts.optimizer)
    name = options.pop("name", "rmsprop")
    if name not in OPTIMIZERS:
        raise ConfigError(f"optimizer.name={name!r}: Keras has no optimizer for it here; expected one of "
                          f"{', '.join(OPTIMIZERS)}")
    class_name, keras_name, keys, fixed = OPTIMIZERS[name]
    unknown = sorted(set(options) - set(keys))
    if unknown:
        raise ConfigError(f"optimizer ({name}): option {unknown[0]}={options[unknown[0]]!r} has no Keras "
                          f"{class_name} equivalent; expected {', '.join(keys)}")
    settings = {key: options.get(ours, default) for ours, (key, default) in keys.items()}
    settings["learning_rate"] = float(np.float32(settings["learning_rate"]))  # as Keras writes its variable
    common = {"weight_decay": None, "clipnorm": None, "global_clipnorm": None, "clipvalue": None}
    if fmt == "keras":
        common.update(use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None)
    else:  # what tf.keras' legacy optimizers take as well
        del common["weight_decay"]
    config = {"name": keras_name, "learning_rate": settings.pop("learning_rate"), **common, **settings, **fixed}
    if fmt == "h5":
        return {"class_name": class_name, "config": config}
    return {"module": "keras.optimizers", "class_name": class_name, "config": config, "registered_name": None}


def _training_config(facts: ModelFacts, fmt: str) -> dict:
    loss = {"class_name": "CategoricalCrossentropy",
            "config": {"name": "categorical_crossentropy", "reduction": "sum_over_batch_size",
                       "from_logits": facts.net.output_activation == "linear",
                       "label_smoothing": facts.label_smoothing, "axis": -1}}
    if fmt == "h5":
        return {"loss": loss, "metrics": ["accuracy"], "weighted_metrics": None, "loss_weights": None,
                "optimizer_config": _optimizer(facts, fmt)}
    return {"optimizer": _optimizer(facts, fmt), "loss": {"module": "keras.losses", **loss, "registered_name": None},
            "loss_weights": None, "metrics": ["accuracy"], "weighted_metrics": None, "run_eagerly": False,
            "steps_per_execution": 1, "jit_compile": False}


# ----------------------------------------------------------------------------- files


def _write_zip(tmp: Path, facts: ModelFacts, layers: list[dict], training: dict, cnnzoo_entry: dict) -> None:
    metadata = {"keras_version": KERAS_VERSION, "date_saved": time.strftime("%Y-%m-%d@%H:%M:%S"),
                "cnnzoo": cnnzoo_entry}
    config = {**_model_config(facts, layers, "keras"), "compile_config": training}
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("metadata.json", json.dumps(metadata))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", _weights_h5(facts, training["optimizer"]["config"]))


def _weights_h5(facts: ModelFacts, optimizer: dict) -> bytes:
    """Keras 3's ``model.weights.h5``: ``layers/<key>/vars/<i>``, the fresh optimizer's
    ``iteration`` and ``learning_rate``, and the Sequential's own (empty) ``vars``."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        layers = f.create_group("layers")
        for key, arrays in zip(facts.net.layer_names, layer_weights(facts.net)):
            variables = layers.create_group(key).create_group("vars")
            variables.attrs["name"] = key
            for i, array in enumerate(arrays):
                variables.create_dataset(str(i), data=array.astype(np.float32))
        variables = f.create_group("optimizer").create_group("vars")
        variables.attrs["name"] = optimizer["name"]
        variables.create_dataset("0", data=np.int32(0))
        variables.create_dataset("1", data=np.float32(optimizer["learning_rate"]))
        f.create_group("vars").attrs["name"] = "sequential"
    return buffer.getvalue()


def _write_h5(tmp: Path, facts: ModelFacts, layers: list[dict], training: dict, cnnzoo_entry: dict) -> None:
    net = facts.net
    with h5py.File(tmp, "w") as f:
        f.attrs["keras_version"] = TF_KERAS_VERSION.encode()
        f.attrs["backend"] = b"tensorflow"  # the layout of the arrays (HWIO kernels), not what wrote them
        f.attrs["model_config"] = json.dumps(_model_config(facts, layers, "h5")).encode()
        f.attrs["training_config"] = json.dumps(training).encode()
        f.attrs["cnnzoo"] = json.dumps(cnnzoo_entry).encode()
        weights = f.create_group("model_weights")
        weights.attrs["layer_names"] = [name.encode() for name in net.layer_names]
        weights.attrs["backend"] = b"tensorflow"
        weights.attrs["keras_version"] = TF_KERAS_VERSION.encode()
        for name, spec, arrays in zip(net.layer_names, net.specs, layer_weights(net)):
            group = weights.create_group(name)
            names = [f"{name}/{w}:0" for w in WEIGHT_NAMES.get(spec.kind, ())
                     if w != "bias" or getattr(spec, "use_bias", True)]
            group.attrs["weight_names"] = [w.encode() for w in names] or np.array([], dtype=np.float64)
            for weight_name, array in zip(names, arrays):
                group.create_dataset(weight_name, data=array.astype(np.float32))
