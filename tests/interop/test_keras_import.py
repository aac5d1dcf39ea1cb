"""``cnnzoo.interop.keras_files``: Keras files in, Keras' outputs out.

Every file is written by Keras 3 (torch backend) in both of its formats (legacy HDF5 ``.h5`` and
the ``.keras`` zip) or, for Keras 2 / tf.keras, by hand in their exact HDF5 layout
(``keras2.py``: TensorFlow cannot be installed here).  ``load_model`` must rebuild each model from
the file alone and match Keras to 1e-5; ``load_weights`` must fill a zoo network layer by layer;
whatever cnnzoo cannot compute exactly must be refused in one line naming file, layer and option.
"""

import dataclasses
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from cnnzoo.errors import ModelError  # noqa: E402
from cnnzoo.interop.keras_layout import keras_weights  # noqa: E402
from cnnzoo.interop.keras_files import load_model, load_weights  # noqa: E402
from cnnzoo.models import (  # noqa: E402
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPooling2D,
    create,
    specs,
    summary,
)
from tests.interop.conftest import TOL, Reference, reference  # noqa: E402
from tests.interop.keras2 import FLAVOURS, write_keras2_h5  # noqa: E402

pytest.importorskip("keras")
# Keras' torch backend converts tensors with np.array(x) (numpy 2 warns on every call).
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

# name: (Keras layer list as cnnzoo specs, per-sample input (C, H, W) or (features,)).  Zoo networks,
# then ones the zoo lacks: other filter counts and input sizes, separate Activation layers,
# 25 / 4 / 3 / 5 classes, sigmoid, tanh and linear heads, average pooling, strides, BatchNorm.
CASES = {
    "asl_cnn": (specs("asl_cnn"), (1, 28, 28)),
    "mnist_cnn": (specs("mnist_cnn"), (1, 28, 28)),
    "fashion_cnn": (specs("fashion_cnn"), (1, 28, 28)),
    "bn_cnn_64x64": (specs("bn_cnn"), (1, 64, 64)),
    "rgb_54x54_25_classes": ([
        Conv2D(6, 5, strides=2, padding="same"), Activation("relu"),
        AveragePooling2D(3, strides=2, padding="same"),
        Conv2D(8, 3, activation="tanh"), BatchNormalization(), MaxPooling2D(2),
        Flatten(), Dense(16, activation="sigmoid"), Dropout(0.3), Dense(25), Activation("softmax"),
    ], (3, 54, 54)),
    "gray_64x64_4_classes": ([
        Conv2D(4, (5, 3), strides=(2, 1), activation="relu"), MaxPooling2D(3, strides=2, padding="same"),
        BatchNormalization(), Conv2D(12, 3, strides=2, padding="same", use_bias=False), Activation("tanh"),
        AveragePooling2D(2), Flatten(), BatchNormalization(), Dense(4, activation="softmax"),
    ], (1, 64, 64)),
    "sigmoid_head": ([
        Conv2D(3, 3, activation="sigmoid"), Flatten(), Dense(6, activation="relu"), Dense(3, activation="sigmoid"),
    ], (2, 20, 18)),
    "flat_linear_head": ([
        Dense(8, activation="tanh"), BatchNormalization(momentum=0.9, epsilon=1e-5), Dense(5),
    ], (12,)),
}


@pytest.fixture(scope="module")
def trained(keras_model):
    """``trained(case)``: the case's :class:`Reference`, built once per module (Keras is slow to build)."""
    cache = {}

    def get(case: str) -> Reference:
        if case not in cache:
            cache[case] = reference(keras_model(*CASES[case]), seed=list(CASES).index(case))
        return cache[case]

    return get


def _softmax_of(net):
    return lambda x: torch.softmax(net.eval()(x), dim=1)


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
@pytest.mark.parametrize("case", CASES)
def test_load_model_rebuilds_the_file_and_gives_keras_outputs(trained, tmp_path, case, suffix):
    ref = trained(case)
    ref.kmodel.save(tmp_path / f"{case}{suffix}")
    net = load_model(tmp_path / f"{case}{suffix}")
    layer_specs, input_shape = CASES[case]
    assert (net.specs, net.input_shape, net.training) == (tuple(layer_specs), input_shape, False)
    assert net.output_activation == layer_specs[-1].activation
    assert summary(net).total == ref.kmodel.count_params()
    assert ref.max_difference(net.keras_output) <= TOL


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("case", ["asl_cnn", "rgb_54x54_25_classes"])
def test_keras2_h5_files_load(trained, tmp_path, case, flavour):
    ref = trained(case)
    write_keras2_h5(tmp_path / "m.h5", ref.kmodel, CASES[case][0], flavour)
    net = load_model(tmp_path / "m.h5")
    assert net.specs == tuple(CASES[case][0])
    assert ref.max_difference(net.keras_output) <= TOL


def test_height_width_input_followed_by_flatten_is_a_one_channel_image(keras, tmp_path):
    """``Flatten(input_shape=(28, 28))``, as the feed-forward notebooks write it."""
    layers = [getattr(keras.layers, s.kind)(**dataclasses.asdict(s)) for s in specs("mnist_mlp")]
    ref = reference(keras.Sequential([keras.Input((28, 28)), *layers]))
    ref.kmodel.save(tmp_path / "mlp.keras")
    net = load_model(tmp_path / "mlp.keras")
    assert net.input_shape == (1, 28, 28)
    assert ref.max_difference(net.keras_output) <= TOL
    assert ref.max_difference(_softmax_of(load_weights(create("mnist_mlp"), tmp_path / "mlp.keras"))) <= TOL


def _keras2(flavour: str, **options):
    return lambda kmodel, path: write_keras2_h5(path, kmodel, CASES["asl_cnn"][0], flavour, **options)


# A Keras-trained asl_cnn as each Keras version saves it: (file name, writer).
ASL_FILES = {
    "keras3.h5": ("asl.h5", lambda kmodel, path: kmodel.save(path)),
    "keras3.keras": ("asl.keras", lambda kmodel, path: kmodel.save(path)),
    "keras3.weights.h5": ("asl.weights.h5", lambda kmodel, path: kmodel.save_weights(path)),
    "tf.keras-2.15.0.h5": ("asl.h5", _keras2("tf.keras-2.15.0")),
    "keras-2.2.4.weights.h5": ("asl.h5", _keras2("keras-2.2.4", weights_only=True)),
}


def _asl_file(ref: Reference, tmp_path, how: str):
    name, write = ASL_FILES[how]
    write(ref.kmodel, tmp_path / name)
    return tmp_path / name


@pytest.mark.parametrize("how", ASL_FILES)
def test_load_weights_fills_a_zoo_network(trained, tmp_path, how):
    ref = trained("asl_cnn")
    net = create("asl_cnn")
    assert load_weights(net, _asl_file(ref, tmp_path, how)) is net
    assert ref.max_difference(_softmax_of(net)) <= TOL


def test_load_weights_names_the_layer_that_does_not_fit(trained, tmp_path):
    path = _asl_file(trained("asl_cnn"), tmp_path, "keras3.keras")
    net = create("asl_cnn", num_classes=10)
    before = keras_weights(net)
    with pytest.raises(ModelError) as error:
        load_weights(net, path)
    assert str(error.value) == (
        f"{path}: layer 'dense_1' (Dense) has weights of shapes [(512, 24), (24,)], "
        "but asl_cnn's layer dense_1 (Dense) takes [(512, 10), (10,)]"
    )
    assert all(np.array_equal(a, b) for a, b in zip(before, keras_weights(net)))  # nothing loaded
    with pytest.raises(ModelError, match=r"asl.keras: 8 layers with weights \(conv2d, batch_normalization, .*\), "
                                         r"but mnist_cnn has 4 \(conv2d, conv2d_1, dense, dense_1\)$"):
        load_weights(create("mnist_cnn"), path)


# Each needs an option cnnzoo does not compute: the layer (named "odd") after Input((8, 8, 2)), and the message.
UNSUPPORTED = {
    "dilation": (lambda L: L.Conv2D(2, 3, dilation_rate=2, name="odd"),
                 "layer 'odd' (Conv2D): dilation_rate=[2, 2] is not supported; expected 1"),
    "groups": (lambda L: L.Conv2D(4, 3, groups=2, name="odd"),
               "layer 'odd' (Conv2D): groups=2 is not supported; expected 1"),
    "channels_first": (lambda L: L.MaxPooling2D(1, data_format="channels_first", name="odd"),
                       "layer 'odd' (MaxPooling2D): data_format='channels_first' is not supported; "
                       "expected 'channels_last'"),
    "activation": (lambda L: L.Conv2D(2, 3, activation="elu", name="odd"),
                   "layer 'odd' (Conv2D): unsupported activation 'elu'; valid choices: linear, relu, sigmoid, "
                   "tanh, softmax"),
    "layer type": (lambda L: L.LeakyReLU(name="odd"),
                   "layer 'odd' (LeakyReLU): layer type not supported; expected one of InputLayer, Conv2D, Dense, "),
    "bn center": (lambda L: L.BatchNormalization(center=False, name="odd"),
                  "layer 'odd' (BatchNormalization): center=False is not supported; expected True"),
    "bn axis": (lambda L: L.BatchNormalization(axis=1, name="odd"),
                "layer 'odd' (BatchNormalization): axis=1 is not supported; expected the channel axis -1 (= 3)"),
    "noise shape": (lambda L: L.Dropout(0.5, noise_shape=(None, 1, 1, 2), name="odd"),
                    "layer 'odd' (Dropout): option noise_shape=[None, 1, 1, 2] is not supported (only null is)"),
    "mixed precision": (lambda L: L.Conv2D(2, 1, dtype="mixed_float16", name="odd"),
                        "layer 'odd' (Conv2D): dtype policy 'mixed_float16' is not supported; expected 'float32'"),
}


@pytest.mark.parametrize("case", UNSUPPORTED)
def test_math_cnnzoo_does_not_reproduce_is_refused_in_one_line(keras, tmp_path, case):
    layer, message = UNSUPPORTED[case]
    L = keras.layers
    kmodel = keras.Sequential([keras.Input((8, 8, 2)), layer(L), L.Flatten(), L.Dense(3, activation="softmax")])
    kmodel.save(tmp_path / "m.keras")
    with pytest.raises(ModelError) as error:
        load_model(tmp_path / "m.keras")
    assert str(error.value).startswith(f"{tmp_path / 'm.keras'}: {message}")
    assert "\n" not in str(error.value)


def test_what_is_not_a_sequential_model_file_is_refused(keras, tmp_path):
    inputs = keras.Input((4,))
    branches = keras.layers.Add()([keras.layers.Dense(3)(inputs), keras.layers.Dense(3)(inputs)])
    keras.Model(inputs, branches).save(tmp_path / "functional.keras")
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]).save_weights(tmp_path / "only.weights.h5")
    (tmp_path / "notes.h5").write_text("not HDF5")
    for name, message in [
        ("functional.keras", "the model is a Keras Functional model; only Sequential models (one chain of layers)"),
        ("only.weights.h5", "holds weights only, no model config; build the network and use "
                            "cnnzoo.interop.keras_files.load_weights(net, path)"),
        ("notes.h5", "not a Keras file; expected a .keras zip or an HDF5 .h5/.hdf5 file"),
    ]:
        with pytest.raises(ModelError) as error:
            load_model(tmp_path / name)
        assert str(error.value).startswith(f"{tmp_path / name}: {message}")
    with pytest.raises(ModelError, match="^Keras file not found: .*missing.h5$"):
        load_model(tmp_path / "missing.h5")


def test_training_only_settings_are_dropped_with_a_warning(keras, tmp_path):
    dense = keras.layers.Dense(3, kernel_regularizer="l2", kernel_constraint="non_neg", activation="softmax",
                               name="dense")
    dense.trainable = False
    keras.Sequential([keras.Input((4,)), dense]).save(tmp_path / "m.h5")
    with pytest.warns(UserWarning, match="training-only settings not carried over: dense.trainable, "
                                         "dense.kernel_regularizer, dense.kernel_constraint$"):
        net = load_model(tmp_path / "m.h5")
    assert net.output_activation == "softmax"
