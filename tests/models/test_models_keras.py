"""cnnzoo networks against Keras 3 itself (torch backend): shapes, counts, numbers.

Every architecture is rebuilt in Keras from the same spec list; layer names, output shapes and
parameter counts must agree row for row, and with the same weights the two must give the same
probabilities (our logits through softmax vs Keras' softmax output) to 1e-5.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from cnnzoo.interop.keras_layout import block_layout, keras_weights, load_keras_weights, to_arrays  # noqa: E402
from cnnzoo.models import (  # noqa: E402
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPooling2D,
    build_sequential,
    create,
    list_models,
    specs,
    summary,
)

pytest.importorskip("keras")
# Keras' torch backend converts tensors with np.array(x) (numpy 2 warns on every call).
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

TOL = 1e-5

# (name, input (C, H, W) or None for the notebook's, classes or None for the notebook's)
CASES = [(name, None, None) for name in list_models()] + [
    ("bn_cnn", (1, 28, 28), None),
    ("asl_cnn", None, 10),
    ("asl_cnn", (3, 29, 31), 5),
    ("conv3_strided", (1, 27, 27), None),
    ("fashion_cnn", (3, 32, 32), 7),
    ("mnist_mlp", (3, 28, 28), None),
]
IDS = [f"{n}-{s}-{c}" if s or c else n for n, s, c in CASES]

# Not in the zoo; covers Activation, AveragePooling2D, tanh/sigmoid, BatchNormalization and
# Dropout on flattened features (the flatten order reaching BN's per-feature vectors).
CUSTOM = [
    Conv2D(3, 3, padding="same", activation="tanh"),
    AveragePooling2D(3, strides=2, padding="same"),
    Flatten(),
    BatchNormalization(),
    Dropout(0.5),
    Dense(6, activation="sigmoid"),
    Dense(4),
    Activation("softmax"),
]


def _ours_and_keras(keras_model, name, input_shape, num_classes):
    net = create(name, num_classes=num_classes, input_shape=input_shape)
    return net, keras_model(specs(name, net.num_classes), net.input_shape)


def _nontrivial_batchnorm(net, generator):
    """Give every BatchNorm gamma/beta/moving statistics away from 1/0/0/1."""
    for spec, layer in zip(net.specs, net):
        if spec.kind == "BatchNormalization":
            with torch.no_grad():
                features = layer.weight.shape[0]
                layer.weight.copy_(torch.rand(features, generator=generator) + 0.5)
                layer.bias.copy_(torch.randn(features, generator=generator) * 0.3)
                layer.running_mean.copy_(torch.randn(features, generator=generator) * 0.3)
                layer.running_var.copy_(torch.rand(features, generator=generator) + 0.5)


def _max_prob_difference(keras, net, kmodel, generator):
    x = torch.rand(4, *net.input_shape, generator=generator)
    with torch.no_grad():
        ours = torch.softmax(net.eval()(x), dim=1).numpy()
    nhwc = x.permute(0, 2, 3, 1) if x.ndim == 4 else x
    theirs = keras.ops.convert_to_numpy(kmodel(nhwc, training=False))
    assert ours.shape == theirs.shape
    return float(np.abs(ours - theirs).max())


@pytest.mark.parametrize(("name", "input_shape", "num_classes"), CASES, ids=IDS)
def test_layers_shapes_and_counts_match_keras(keras_model, name, input_shape, num_classes):
    net, kmodel = _ours_and_keras(keras_model, name, input_shape, num_classes)
    s = summary(net)
    assert [(r.name, r.kind, r.output_shape, r.params) for r in s.rows] == [
        (k.name, type(k).__name__, tuple(k.output.shape)[1:], k.count_params()) for k in kmodel.layers
    ]
    trainable = sum(int(np.prod(w.shape)) for w in kmodel.trainable_weights)
    assert (s.total, s.trainable, s.non_trainable) == (kmodel.count_params(), trainable,
                                                       kmodel.count_params() - trainable)
    printed = []
    kmodel.summary(print_fn=lambda line, **_: printed.append(line))
    for ours in str(s).splitlines()[-4:-1]:  # Total / Trainable / Non-trainable lines
        assert ours in "\n".join(printed)


@pytest.mark.parametrize(("name", "input_shape", "num_classes"), CASES, ids=IDS)
def test_same_probabilities_as_keras_with_our_weights(keras, keras_model, name, input_shape, num_classes):
    generator = torch.Generator().manual_seed(1)
    net, kmodel = _ours_and_keras(keras_model, name, input_shape, num_classes)
    _nontrivial_batchnorm(net, generator)
    kmodel.set_weights(keras_weights(net))
    assert _max_prob_difference(keras, net, kmodel, generator) <= TOL


@pytest.mark.parametrize("name", ["asl_cnn", "bn_cnn", "fashion_cnn", "mnist_mlp"])
def test_same_probabilities_as_keras_with_keras_weights(keras, keras_model, name):
    generator = torch.Generator().manual_seed(2)
    net, kmodel = _ours_and_keras(keras_model, name, None, None)
    donor = create(name)
    _nontrivial_batchnorm(donor, generator)
    kmodel.set_weights(keras_weights(donor))  # BN stats that Keras' own init leaves at 0/1
    kmodel.set_weights([w + 0.01 for w in kmodel.get_weights()])  # and not our values any more
    load_keras_weights(net, kmodel.get_weights())
    for ours, theirs in zip(keras_weights(net), kmodel.get_weights()):
        np.testing.assert_array_equal(ours, theirs)  # the round trip is exact
    assert _max_prob_difference(keras, net, kmodel, generator) <= TOL


def test_custom_spec_list_matches_keras(keras, keras_model):
    generator = torch.Generator().manual_seed(3)
    net = build_sequential(CUSTOM, (2, 9, 7))
    kmodel = keras_model(CUSTOM, (2, 9, 7))
    assert [r.output_shape for r in summary(net).rows] == [tuple(k.output.shape)[1:] for k in kmodel.layers]
    _nontrivial_batchnorm(net, generator)
    kmodel.set_weights(keras_weights(net))
    assert _max_prob_difference(keras, net, kmodel, generator) <= TOL
    load_keras_weights(net, kmodel.get_weights())
    for ours, theirs in zip(keras_weights(net), kmodel.get_weights()):
        np.testing.assert_array_equal(ours, theirs)


# ------------------------------------------------------------------ single layers


def _layer_pair(keras, spec, in_shape):
    """Our block and the Keras layer for ``spec``, built for ``in_shape`` with the same weights."""
    ours = spec.build(in_shape)
    theirs = getattr(keras.layers, spec.kind)(**spec.__dict__)
    c, *spatial = in_shape
    theirs.build((None, *spatial, c))
    if block_layout(spec.kind, ours):
        theirs.set_weights(to_arrays(block_layout(spec.kind, ours)))
    return ours, theirs


def _nhwc(keras, layer, x, **kwargs):
    """Run a Keras layer on our NCHW batch, returning NCHW."""
    out = keras.ops.convert_to_numpy(layer(x.permute(0, 2, 3, 1), **kwargs))
    return torch.from_numpy(out).permute(0, 3, 1, 2)


@pytest.mark.parametrize(
    ("spec", "size", "expected"),
    [
        (Conv2D(4, 3, strides=2, padding="same"), (7, 7), (4, 4)),
        (Conv2D(4, 3, strides=2, padding="same"), (27, 27), (14, 14)),
        (Conv2D(4, 3, strides=2, padding="same"), (14, 14), (7, 7)),  # even: pad 0 top, 1 bottom
        (Conv2D(4, (4, 2), strides=(2, 3), padding="same"), (9, 8), (5, 3)),
        (Conv2D(4, 4, strides=1, padding="same"), (6, 5), (6, 5)),  # even kernel: asymmetric
        (Conv2D(4, 5, strides=1, padding="same"), (5, 5), (5, 5)),  # symmetric: no F.pad
        (Conv2D(4, 3, strides=2, padding="valid"), (9, 8), (4, 3)),
        (MaxPooling2D(2, strides=2, padding="same"), (7, 7), (4, 4)),
        (MaxPooling2D(3, strides=2, padding="same"), (8, 9), (4, 5)),
        (MaxPooling2D(3, strides=1, padding="same"), (5, 4), (5, 4)),
        (AveragePooling2D(2, strides=2, padding="same"), (7, 7), (4, 4)),
        (AveragePooling2D(3, strides=1, padding="same"), (5, 5), (5, 5)),
        (AveragePooling2D((2, 3), strides=(1, 2), padding="valid"), (5, 7), (4, 3)),
    ],
    ids=str,
)
def test_padding_matches_keras_numerically(keras, spec, size, expected):
    ours, theirs = _layer_pair(keras, spec, (3, *size))
    assert spec.output_shape((3, *size))[1:] == expected
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(4))  # negatives: -inf pads matter
    with torch.no_grad():
        got = ours(x)
    want = _nhwc(keras, theirs, x)
    assert got.shape == want.shape
    assert (got - want).abs().max().item() <= 1e-6


def test_batchnorm_training_step_updates_moving_stats_like_keras(keras):
    generator = torch.Generator().manual_seed(5)
    for in_shape, x in [
        ((6, 5, 4), torch.randn(3, 6, 5, 4, generator=generator) * 2 + 1),
        ((7,), torch.randn(5, 7, generator=generator) * 3 - 1),
    ]:
        ours, theirs = _layer_pair(keras, BatchNormalization(), in_shape)
        with torch.no_grad():
            ours.running_mean.uniform_(-1, 1, generator=generator)
            ours.running_var.uniform_(0.5, 2, generator=generator)
        theirs.set_weights(to_arrays(block_layout("BatchNormalization", ours)))
        y = ours.train()(x)
        if x.ndim == 4:
            want = _nhwc(keras, theirs, x, training=True)
        else:
            want = torch.from_numpy(keras.ops.convert_to_numpy(theirs(x, training=True)))
        assert (y.detach() - want).abs().max().item() <= TOL
        gamma, beta, moving_mean, moving_variance = theirs.get_weights()
        np.testing.assert_allclose(ours.running_mean.numpy(), moving_mean, rtol=0, atol=TOL)
        np.testing.assert_allclose(ours.running_var.numpy(), moving_variance, rtol=0, atol=TOL)


def test_cross_entropy_on_logits_equals_keras_categorical_crossentropy(keras):
    generator = torch.Generator().manual_seed(6)
    logits = torch.randn(16, 10, generator=generator) * 3
    labels = torch.randint(0, 10, (16,), generator=generator)
    ours = F.cross_entropy(logits, labels).item()
    one_hot = F.one_hot(labels, 10).float()
    theirs = keras.losses.categorical_crossentropy(one_hot, torch.softmax(logits, dim=1))
    assert abs(ours - float(keras.ops.convert_to_numpy(theirs).mean())) <= TOL
