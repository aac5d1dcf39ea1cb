"""Keras 2 legacy HDF5 files written by hand, laid out as tf.keras 2.15, Keras 2.2.4 and 2.1.6 wrote them.

Why this file exists: most users' ``.h5`` files come from Keras 2 / tf.keras, but TensorFlow is
not installable in this project's test environment.  This module reproduces what those versions'
``model.save("m.h5")`` (``hdf5_format.save_model_to_hdf5``) writes: bytes attributes
``keras_version``/``backend``/``model_config``/``training_config``; a ``model_weights`` group whose
``layer_names`` attribute gives the model order, one group per layer (created in name order)
whose ``weight_names`` attribute lists ``conv2d_5/kernel:0``-style names, each array stored at
``model_weights/conv2d_5/conv2d_5/kernel:0``; and each version's config dialect (an InputLayer
with ``batch_input_shape`` and BatchNorm ``axis`` as a list in tf.keras; ``batch_input_shape`` on
the first layer, no ``groups``, layer names from ``_1`` in Keras 2.2; the bare layer list as the
Sequential's config in Keras 2.1).  Weights and architecture come from a Keras 3 model and its
cnnzoo spec list, so the file's expected outputs are that Keras 3 model's.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import h5py
import numpy as np

from cnnzoo.models.layers import keras_auto_name

FLAVOURS = ("tf.keras-2.15.0", "keras-2.2.4", "keras-2.1.6")

_GLOROT = {"class_name": "GlorotUniform", "config": {"seed": None}}
_ZEROS = {"class_name": "Zeros", "config": {}}
_ONES = {"class_name": "Ones", "config": {}}
_KERNEL_OPTIONS = {"kernel_initializer": _GLOROT, "bias_initializer": _ZEROS, "kernel_regularizer": None,
                   "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None,
                   "bias_constraint": None}


def _extras(kind: str, flavour: str, rank: int) -> dict:
    """The options a Keras 2 config has beyond the spec's fields."""
    tf_keras = flavour.startswith("tf.keras")
    if kind == "Conv2D":
        return {"data_format": "channels_last", "dilation_rate": [1, 1], **({"groups": 1} if tf_keras else {}),
                **_KERNEL_OPTIONS}
    if kind == "Dense":
        return _KERNEL_OPTIONS
    if kind in ("MaxPooling2D", "AveragePooling2D", "Flatten"):
        return {"data_format": "channels_last"}
    if kind == "BatchNormalization":
        return {"axis": [rank] if tf_keras else -1, "center": True, "scale": True,
                "beta_initializer": _ZEROS, "gamma_initializer": _ONES, "moving_mean_initializer": _ZEROS,
                "moving_variance_initializer": _ONES, "beta_regularizer": None, "gamma_regularizer": None,
                "beta_constraint": None, "gamma_constraint": None}
    if kind == "Dropout":
        return {"noise_shape": None, "seed": None}
    return {}


def _layer_names(specs, flavour: str) -> list[str]:
    """Session-numbered names, as a notebook that built models before gets (never the saving keys)."""
    first = 1 if flavour.startswith("keras-") else 5
    seen, names = Counter(), []
    for spec in specs:
        base = keras_auto_name(spec.kind)
        names.append(f"{base}_{seen[base] + first}")
        seen[base] += 1
    return names


def _entry(spec, name: str, klayer, flavour: str) -> dict:
    fields = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(spec).items()}
    rank = len(klayer.input.shape) - 1
    config = {"name": name, "trainable": True, "dtype": "float32", **fields, **_extras(spec.kind, flavour, rank)}
    if flavour.startswith("tf.keras"):
        return {"module": "keras.layers", "class_name": spec.kind, "config": config, "registered_name": None,
                "build_config": {"input_shape": list(klayer.input.shape)}}
    return {"class_name": spec.kind, "config": config}


def _model_config(kmodel, specs, names, flavour: str) -> dict:
    layers = [_entry(s, n, k, flavour) for s, n, k in zip(specs, names, kmodel.layers)]
    batch_input_shape = [None, *kmodel.inputs[0].shape[1:]]
    layers[0]["config"]["batch_input_shape"] = batch_input_shape
    if flavour.startswith("tf.keras"):
        input_config = {"batch_input_shape": batch_input_shape, "dtype": "float32", "sparse": False,
                        "ragged": False, "name": f"{names[0]}_input"}
        layers.insert(0, {"module": "keras.layers", "class_name": "InputLayer", "config": input_config,
                          "registered_name": None})
    config = layers if flavour == "keras-2.1.6" else {"name": "sequential_3", "layers": layers}
    return {"class_name": "Sequential", "config": config}


def write_keras2_h5(path, kmodel, specs, flavour: str, weights_only: bool = False) -> None:
    """Save ``kmodel`` (a Keras 3 Sequential built from cnnzoo ``specs``) as ``flavour``'s
    ``model.save("m.h5")`` would have, or as its ``model.save_weights("w.h5")`` (the weights
    layout at the root, no config)."""
    version = flavour.rsplit("-", 1)[1].encode()
    names = _layer_names(specs, flavour)
    with h5py.File(path, "w") as f:
        if weights_only:
            _write_weights(f, kmodel, names, version)
            return
        f.attrs["keras_version"] = version
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(_model_config(kmodel, specs, names, flavour)).encode()
        f.attrs["training_config"] = json.dumps({"loss": "categorical_crossentropy", "metrics": ["accuracy"]}).encode()
        _write_weights(f.create_group("model_weights"), kmodel, names, version)


def _write_weights(weights: h5py.Group, kmodel, names: list[str], version: bytes) -> None:
    weights.attrs["layer_names"] = [name.encode() for name in names]
    weights.attrs["backend"] = b"tensorflow"
    weights.attrs["keras_version"] = version
    for name, klayer in sorted(zip(names, kmodel.layers), key=lambda pair: pair[0]):
        group = weights.create_group(name)
        weight_names = [f"{name}/{v.name}:0" for v in klayer.weights]
        group.attrs["weight_names"] = [w.encode() for w in weight_names] or np.array([], dtype=np.float64)
        for weight_name, value in zip(weight_names, klayer.get_weights()):
            group.create_dataset(weight_name, data=value)
