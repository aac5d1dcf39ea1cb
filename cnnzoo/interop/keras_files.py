"""Keras model files in, as cnnzoo networks: ``load_model(path)`` and ``load_weights(net, path)``.

Why this module exists: users of the notebooks have Keras-trained files.  cnnzoo reads them with
h5py and json alone (no Keras, no TensorFlow), rebuilds the network from the file's own model
config with the zoo's layer specs and builder (so the layer math exists once), and loads the
weights through :mod:`cnnzoo.interop.keras_layout` (kernel layouts, the NHWC flatten order).

Files are told apart by content, not by name:

* legacy HDF5 (``.h5``/``.hdf5``) from ``model.save`` in Keras 2.x, tf.keras or Keras 3: the JSON
  ``model_config`` attribute and the ``model_weights`` group, in which each layer's group, named
  after the layer, lists its arrays in its ``weight_names`` attribute (``conv2d/kernel:0`` in
  Keras 2, ``sequential/conv2d/kernel`` in Keras 3).  Keras 2 ``save_weights("w.h5")`` files have
  the same layout at the root and no config (``load_weights`` only);
* Keras 3 ``.keras`` zips (``config.json`` + ``model.weights.h5``) and Keras 3 ``.weights.h5``
  files (no config: ``load_weights`` only).  Their arrays are ``layers/<key>/vars/0..n``, where the
  key is the layer's class name in snake case, numbered in order (``conv2d``, ``conv2d_1``)
  whatever the layer is called: cnnzoo's builder names its blocks the same way.

Config layouts: the input shape is ``batch_input_shape`` on an ``InputLayer`` or on the first layer
in Keras 2, ``batch_shape`` on an ``InputLayer`` or the Sequential's ``build_input_shape`` in
Keras 3; Keras <= 2.1 stored the layer list itself as the Sequential's config; tf.keras stores
BatchNormalization's ``axis`` as a list; dtype policies are strings in Keras 2, dicts in Keras 3.

What ``load_model`` returns: a :class:`~cnnzoo.models.KerasSequential` in eval mode taking NCHW
batches and, like every cnnzoo network, returning the scores *before* the model's last activation
(logits for a softmax head), so it fine-tunes with cross-entropy unchanged.  That activation is
``net.output_activation`` (any of relu/softmax/linear/sigmoid/tanh here), and
``net.keras_output(x)`` applies it: that equals Keras' ``model(x)`` on the same (NHWC) input.

Nothing is approximated: an option that changes the forward pass is reproduced or rejected with a
:class:`ModelError` naming the file, the layer and the option (other layer types, dilation,
groups, ``channels_first``, BatchNormalization without centre/scale, renorm, a non-float32 dtype
policy ...); an option cnnzoo does not know is accepted only when it is null.  Initializers do not
matter once weights are loaded; regularizers, constraints and ``trainable=False`` only change
training, so they are dropped with a warning (cnnzoo's fine-tuning does not reproduce them).
"""

from __future__ import annotations

import dataclasses
import io
import json
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from cnnzoo.errors import ModelError
from cnnzoo.interop.keras_layout import layer_weights, load_layer_weights
from cnnzoo.models.layers import ACTIVATIONS, SPECS, LayerSpec, Shape, keras_names
from cnnzoo.models.sequential import KerasSequential, build_sequential

#: Options cnnzoo computes only with these values (a null option is always off).
FIXED: dict[str, tuple] = {
    "data_format": ("channels_last",),
    "dilation_rate": (1, [1, 1]),
    "groups": (1,),
    "center": (True,),
    "scale": (True,),
    "renorm": (False,),
    "sparse": (False,),
    "ragged": (False,),
    "optional": (False,),
}
KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")
#: Options that leave the forward pass alone (``axis`` and the input shape are checked elsewhere).
INERT = {"name", "dtype", "axis", "batch_input_shape", "batch_shape", "seed", "fused", "synchronized",
         "renorm_momentum", "lora_alpha"}


@dataclasses.dataclass(frozen=True)
class FileLayer:
    """One layer of a Keras file, in model order: its name, Keras class (None when the file has
    no config) and arrays as ``layer.get_weights()`` lists them."""

    name: str
    kind: str | None
    arrays: list[np.ndarray]


@dataclasses.dataclass(frozen=True)
class KerasFile:
    """A Keras file read into memory: the model config (None for weights-only files) and each
    layer's arrays, by layer name (legacy HDF5, ``order`` = its ``layer_names``) or by Keras 3
    saving key (``by_key``)."""

    path: Path
    model: dict | None
    arrays: dict[str, list[np.ndarray]]
    by_key: bool
    order: tuple[str, ...] = ()

    def layers(self, kinds: Sequence[str]) -> list[FileLayer]:
        """The file's layers in model order; ``kinds`` (the target network's Keras classes)
        orders a Keras 3 weights file, which has no config and keys but no order."""
        if self.model is not None:
            layers = _entries(_sequential_config(self), self.path)[1]
            entries = [(e["config"].get("name"), e["class_name"]) for e in layers]
        elif self.by_key:
            entries = [(None, kind) for kind in kinds]
        else:
            entries = [(name, None) for name in self.order]
        keys = keras_names([kind for _, kind in entries]) if self.by_key else [name for name, _ in entries]
        return [FileLayer(name or key, kind, self.arrays.get(key, [])) for (name, kind), key in zip(entries, keys)]


# ----------------------------------------------------------------------------- public API


def load_model(path: str | Path) -> KerasSequential:
    """The Keras Sequential model in ``path`` (.h5/.hdf5 or .keras) as a cnnzoo network in eval
    mode: ``net(x)`` gives the scores before the last activation, ``net.keras_output(x)`` what
    Keras gives (see the module docstring)."""
    keras_file = read(path)
    if keras_file.model is None:
        raise ModelError(f"{keras_file.path}: holds weights only, no model config; build the network "
                         "and use cnnzoo.interop.keras_files.load_weights(net, path)")
    config = _sequential_config(keras_file)
    _check_dtype(config.get("dtype"), f"{keras_file.path}: model {config.get('name')!r}")
    input_entry, entries = _entries(config, keras_file.path)
    specs, dropped = [], []
    for entry in filter(None, [input_entry, *entries]):
        spec, training_only = _spec(entry, keras_file.path)
        specs += [spec] if spec else []
        dropped += training_only
    try:
        net = build_sequential(specs, _input_shape(config, input_entry, entries, keras_file.path),
                               name=config.get("name", "sequential"), output_activations=tuple(ACTIVATIONS))
    except ModelError as e:
        raise ModelError(f"{keras_file.path}: {e}") from None
    _check_batchnorm_axes(net, entries, keras_file.path)
    _assign(net, keras_file.layers([]), keras_file.path)
    if dropped:
        warnings.warn(f"{keras_file.path}: training-only settings not carried over: {', '.join(dropped)}",
                      stacklevel=2)
    return net.eval()


def load_weights(net: KerasSequential, path: str | Path) -> KerasSequential:
    """Load the weights of the Keras file ``path`` (any format above, weights-only files too) into
    ``net``, a cnnzoo network of the same architecture, e.g. ``create("asl_cnn")``.  Layers with
    weights are matched in order and must agree in Keras class and array shapes; on a mismatch
    nothing is loaded and the error names the layer.  Returns ``net``."""
    keras_file = read(path)
    _assign(net, keras_file.layers([spec.kind for spec in net.specs]), keras_file.path)
    return net


# ----------------------------------------------------------------------------- reading files


def is_keras_file(path: str | Path) -> bool:
    """A ``.keras`` zip (it holds ``config.json``; a torch checkpoint is a zip too, holding
    ``data.pkl``) or an HDF5 file; a missing file, or one that is neither by its content (empty,
    cut short, another zip), goes by its suffix, so the error calls a bad ``.keras``/``.h5`` file
    a Keras file, not a PyTorch checkpoint."""
    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
        if "config.json" in names:
            return True
        if any(name.endswith("data.pkl") for name in names):
            return False  # a torch checkpoint, whatever its name
    elif path.is_file() and h5py.is_hdf5(path):
        return True
    return path.suffix in KERAS_SUFFIXES


def read(path: str | Path) -> KerasFile:
    """Read a ``.keras`` zip or an HDF5 Keras file (model or weights); anything else is a
    :class:`ModelError`."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Keras file not found: {path}")
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path)
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                return _read_h5(path, f, _json_attr(f, "model_config"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:  # ValueError: bad JSON too
        raise ModelError(f"{path}: not a readable Keras file ({type(e).__name__}: {e})") from e
    raise ModelError(f"{path}: not a Keras file; expected a .keras zip or an HDF5 .h5/.hdf5 file")


def _read_zip(path: Path) -> KerasFile:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        if "config.json" not in names or "model.weights.h5" not in names:
            raise ModelError(f"{path}: a .keras file holds config.json and model.weights.h5, this one {names}")
        model = json.loads(z.read("config.json"))
        with h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
            return _read_h5(path, f, model)


def _read_h5(path: Path, f: h5py.File, model: dict | None) -> KerasFile:
    if "layers" in f:  # Keras 3 saving format: layers/<key>/vars/<i>
        arrays = {key: _vars(group) for key, group in f["layers"].items()}
        return KerasFile(path, model, arrays, by_key=True)
    weights = f["model_weights"] if "model_weights" in f else f
    if "layer_names" not in weights.attrs:
        raise ModelError(f"{path}: no Keras weights in this HDF5 file (no layer_names attribute, no layers/ group)")
    order = tuple(_strings(weights.attrs["layer_names"]))
    arrays = {name: [np.asarray(weights[name][w]) for w in _strings(weights[name].attrs["weight_names"])]
              for name in order}
    return KerasFile(path, model, arrays, by_key=False, order=order)


def _vars(group: h5py.Group) -> list[np.ndarray]:
    variables = group.get("vars", {})
    return [np.asarray(variables[key]) for key in sorted(variables, key=int)]


def _strings(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(values)]


def _json_attr(f: h5py.File, name: str) -> dict | None:
    value = f.attrs.get(name)
    return None if value is None else json.loads(value.decode() if isinstance(value, bytes) else value)


# ----------------------------------------------------------------------------- model config


def _sequential_config(keras_file: KerasFile) -> dict:
    model = keras_file.model
    kind = model.get("class_name")
    if kind != "Sequential":
        raise ModelError(f"{keras_file.path}: the model is a Keras {kind} model; only Sequential models "
                         "(one chain of layers) can be imported")
    config = model.get("config")
    return {"layers": config} if isinstance(config, list) else config  # Keras <= 2.1: the list itself


def _entries(config: dict, path: Path) -> tuple[dict | None, list[dict]]:
    """The Sequential's ``InputLayer`` entry (None if it has none) and its other layers' entries."""
    entries = list(config.get("layers") or [])
    input_entry = entries.pop(0) if entries and entries[0].get("class_name") == "InputLayer" else None
    for entry in entries:
        if entry.get("class_name") == "InputLayer":
            raise ModelError(f"{path}: {_describe(entry)} is not the first layer")
    return input_entry, entries


def _describe(entry: dict) -> str:
    return f"layer {entry.get('config', {}).get('name')!r} ({entry.get('class_name')})"


def _check_dtype(dtype: Any, where: str) -> None:
    name = dtype.get("config", {}).get("name") if isinstance(dtype, dict) else dtype
    if name not in (None, "float32"):
        raise ModelError(f"{where}: dtype policy {name!r} is not supported; expected 'float32'")


def _input_shape(config: dict, input_entry: dict | None, entries: list[dict], path: Path) -> Shape:
    """Per-sample ``(C, H, W)`` or ``(features,)`` from Keras' ``(None, H, W, C)``-style shape."""
    first = (input_entry or (entries[0] if entries else {})).get("config", {})
    shape = first.get("batch_shape") or first.get("batch_input_shape") or config.get("build_input_shape")
    if not shape:
        raise ModelError(f"{path}: the model config gives no input shape "
                         "(no InputLayer, batch_input_shape or build_input_shape)")
    dims = tuple(shape[1:])
    if not all(isinstance(d, int) and d > 0 for d in dims):
        raise ModelError(f"{path}: input shape {list(shape)} must be fully known (no None but the batch)")
    if len(dims) == 3:
        return (dims[2], dims[0], dims[1])
    if len(dims) == 1:
        return dims
    if len(dims) == 2 and entries and entries[0].get("class_name") == "Flatten":
        return (1, *dims)  # Keras flattens an (H, W) input as cnnzoo flattens a (1, H, W) image
    raise ModelError(f"{path}: input shape {list(shape)} is not supported; expected "
                     "(None, H, W, C), (None, features) or (None, H, W) followed by Flatten")


def _spec(entry: dict, path: Path) -> tuple[LayerSpec | None, list[str]]:
    """The spec of one config entry (None for the InputLayer) and its dropped training-only
    settings; any option that would change the math raises."""
    kind, config = entry.get("class_name"), entry.get("config", {})
    where = f"{path}: {_describe(entry)}"
    spec_class = SPECS.get(kind)
    if (spec_class is None and kind != "InputLayer") or entry.get("registered_name") not in (None, kind):
        raise ModelError(f"{where}: layer type not supported; expected one of InputLayer, {', '.join(SPECS)}")
    _check_dtype(config.get("dtype"), where)
    fields = {f.name for f in dataclasses.fields(spec_class)} if spec_class else set()
    dropped = _check_options(config, fields, where)
    if spec_class is None:
        return None, dropped
    try:
        return spec_class(**{k: config[k] for k in fields if k in config}), dropped
    except TypeError as e:  # a required option (filters, units, rate ...) is missing
        raise ModelError(f"{where}: incomplete config ({e})") from None
    except ModelError as e:
        raise ModelError(f"{where}: {e}") from None


def _check_options(config: dict, fields: set[str], where: str) -> list[str]:
    """Raise for an option the spec (``fields``) does not take that would change the math; return
    the training-only ones that are set (``dense.kernel_regularizer``)."""
    dropped = []
    for key, value in config.items():
        if key in fields or key in INERT or key.endswith("_initializer"):
            continue
        if key == "trainable" or key.endswith(("_regularizer", "_constraint")):
            if value not in (None, True):
                dropped.append(f"{config.get('name')}.{key}")
        elif key in FIXED:
            if value is not None and value not in FIXED[key]:
                raise ModelError(f"{where}: {key}={value!r} is not supported; expected {FIXED[key][0]!r}")
        elif value is not None:
            raise ModelError(f"{where}: option {key}={value!r} is not supported (only null is)")
    return dropped


def _check_batchnorm_axes(net: KerasSequential, entries: list[dict], path: Path) -> None:
    """BatchNormalization must normalise the channel (last Keras) axis, as cnnzoo's does."""
    for spec, in_shape, entry in zip(net.specs, net.shapes, entries):
        if spec.kind != "BatchNormalization":
            continue
        axis = entry["config"].get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        if axis not in (-1, len(in_shape)):
            raise ModelError(f"{path}: {_describe(entry)}: axis={entry['config']['axis']!r} is not supported; "
                             f"expected the channel axis -1 (= {len(in_shape)})")


# ----------------------------------------------------------------------------- weights


def _assign(net: KerasSequential, layers: list[FileLayer], path: Path) -> None:
    """Load the file's layers with weights into ``net``'s, in order, after checking them all."""
    arrays = layer_weights(net)
    ours = [i for i, layer in enumerate(arrays) if layer]
    theirs = [layer for layer in layers if layer.arrays]
    names, kinds = net.layer_names, [spec.kind for spec in net.specs]
    if len(ours) != len(theirs):
        raise ModelError(
            f"{path}: {len(theirs)} layers with weights ({', '.join(t.name for t in theirs)}), but "
            f"{net.name} has {len(ours)} ({', '.join(names[i] for i in ours)})"
        )
    for i, their in zip(ours, theirs):
        expected = [a.shape for a in arrays[i]]
        got = [a.shape for a in their.arrays]
        if their.kind not in (None, kinds[i]) or got != expected:
            raise ModelError(
                f"{path}: layer {their.name!r} ({their.kind or 'Keras layer'}) has weights of shapes {got}, "
                f"but {net.name}'s layer {names[i]} ({kinds[i]}) takes {expected}"
            )
    for i, their in zip(ours, theirs):
        arrays[i] = their.arrays
    load_layer_weights(net, arrays)
