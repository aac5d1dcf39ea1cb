"""The Keras-equivalent blocks on their own: padding arithmetic, initialisation, options, errors.

Checks here need no Keras: they compare with the TF/Keras definitions written out directly
(the Keras comparisons live in test_models_keras.py).
"""

import math

import pytest
import torch

from cnnzoo.errors import ModelError
from cnnzoo.models import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    MaxPooling2D,
    build_sequential,
    create,
    param_counts,
)
from cnnzoo.interop.keras_layout import keras_weights, load_keras_weights
from cnnzoo.models.layers import keras_auto_name, padded_size


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "expected"),
    [
        (28, 3, 2, "same", (14, 0, 1)),
        (14, 3, 2, "same", (7, 0, 1)),
        (7, 3, 2, "same", (4, 1, 1)),
        (7, 2, 2, "same", (4, 0, 1)),  # pooling 7 -> 4: one extra cell at the bottom/right
        (28, 3, 1, "same", (28, 1, 1)),
        (6, 4, 1, "same", (6, 1, 2)),
        (5, 5, 3, "same", (2, 1, 2)),
        (4, 1, 2, "same", (2, 0, 0)),  # TF clamps a negative total pad at 0
        (28, 3, 1, "valid", (26, 0, 0)),
        (27, 2, 2, "valid", (13, 0, 0)),
    ],
)
def test_padded_size_follows_tf(size, kernel, stride, padding, expected):
    assert padded_size(size, kernel, stride, padding) == expected


def _tf_average_pool(x, pool, strides):
    """TF 'same' average pooling written out: the mean over each window's in-bounds cells."""
    _, _, h, w = x.shape
    rows, cols = (padded_size(n, k, s, "same") for n, k, s in zip((h, w), pool, strides))
    out = torch.empty(*x.shape[:2], rows[0], cols[0])
    for i in range(rows[0]):
        top = i * strides[0] - rows[1]
        for j in range(cols[0]):
            left = j * strides[1] - cols[1]
            window = x[:, :, max(top, 0):top + pool[0], max(left, 0):left + pool[1]]
            out[:, :, i, j] = window.mean(dim=(2, 3))
    return out


@pytest.mark.parametrize(
    ("pool", "strides", "size"),
    [((3, 3), (2, 2), (8, 9)), ((3, 2), (2, 1), (7, 6)), ((2, 2), (2, 2), (7, 7)), ((4, 4), (1, 1), (5, 6))],
)
def test_average_pooling_same_leaves_padding_out_of_the_mean(pool, strides, size):
    # Keras 3.15's torch backend pads asymmetric windows by edge replication (keras-team/keras
    # PR 23233 fixes it), so TF's definition is the reference here.
    spec = AveragePooling2D(pool, strides=strides, padding="same")
    layer = spec.build((2, *size))
    x = torch.randn(3, 2, *size, generator=torch.Generator().manual_seed(0))
    got = layer(x)
    assert got.shape[1:] == spec.output_shape((2, *size))
    assert (got - _tf_average_pool(x, pool, strides)).abs().max().item() <= 1e-6


def test_max_pooling_same_pads_with_minus_infinity():
    layer = MaxPool2D(2, strides=2, padding="same").build((1, 3, 3))
    x = -torch.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # all negative: a zero pad would win
    assert layer(x).tolist() == [[[[-1.0, -3.0], [-7.0, -9.0]]]]
    assert MaxPool2D is MaxPooling2D


@pytest.mark.parametrize("name", ["conv3_same", "asl_cnn", "mnist_mlp"])
def test_glorot_uniform_kernels_and_zero_biases(name):
    torch.manual_seed(0)
    net = create(name)
    for spec, layer in zip(net.specs, net):
        if spec.kind not in ("Conv2D", "Dense"):
            continue
        kernel = layer.weight.detach()
        receptive = kernel[0, 0].numel()  # kh * kw for Conv2D, 1 for Dense
        fan_in, fan_out = kernel.shape[1] * receptive, kernel.shape[0] * receptive
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        assert kernel.abs().max().item() <= limit
        # The mean of w**2 estimates limit**2 / 3 with relative std sqrt(0.8 / n): allow 5 sigma.
        ratio = kernel.pow(2).mean().item() / (limit**2 / 3)
        assert abs(ratio - 1) <= 5 * math.sqrt(0.8 / kernel.numel()), spec
        assert abs(kernel.mean().item()) <= 5 * limit / math.sqrt(3 * kernel.numel())
        assert torch.count_nonzero(layer.bias) == 0


def test_batchnorm_uses_keras_defaults():
    layer = BatchNormalization().build((5, 4, 4))
    assert layer.eps == 1e-3
    assert layer.momentum == pytest.approx(0.01)  # torch's weight of the new batch = 1 - 0.99
    assert torch.equal(layer.weight, torch.ones(5)) and torch.equal(layer.bias, torch.zeros(5))
    assert torch.equal(layer.running_mean, torch.zeros(5)) and torch.equal(layer.running_var, torch.ones(5))
    assert param_counts(layer) == (10, 10)
    custom = BatchNormalization(momentum=0.9, epsilon=1e-5).build((5,))
    assert (custom.momentum, custom.eps) == (pytest.approx(0.1), 1e-5)


def test_batchnorm_moving_variance_uses_the_biased_batch_variance():
    layer = BatchNormalization().build((2, 3, 3)).train()
    x = torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(1)) * 2 + 1
    layer(x)
    var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
    torch.testing.assert_close(layer.running_mean, 0.01 * mean, rtol=0, atol=1e-6)
    torch.testing.assert_close(layer.running_var, 0.99 + 0.01 * var, rtol=0, atol=1e-6)


def test_dropout_has_torch_semantics():
    layer = Dropout(0.5).build((1000,))
    x = torch.ones(4, 1000)
    assert torch.equal(layer.eval()(x), x)
    kept = layer.train()(x)
    assert set(kept.unique().tolist()) <= {0.0, 2.0}  # inverted dropout, as Keras


def test_activations_are_fused_and_applied():
    net = build_sequential([Flatten(), Dense(4, activation="tanh"), Activation("sigmoid"), Dense(2)], (3,))
    hidden = net[2](net[1](net[0](torch.randn(5, 3))))
    assert ((hidden > 0.26) & (hidden < 0.74)).all()  # sigmoid(tanh(.)) lies in (0.268, 0.732)
    assert Conv2D(1, 1).activation == "linear" and Dense(1, activation="ReLU").activation == "relu"


def test_flatten_order_maps_our_nchw_positions_to_keras_nhwc_positions():
    net = build_sequential([Flatten(), Dense(2)], (2, 1, 3))
    # Keras flattens (H=1, W=3, C=2) as [c0w0, c1w0, c0w1, c1w1, c0w2, c1w2]; we as [c0w0..c0w2, c1w0..].
    keras_kernel = torch.arange(12.0).reshape(6, 2)  # Keras Dense kernel: (inputs, units)
    load_keras_weights(net, [keras_kernel.numpy(), torch.zeros(2).numpy()])
    x_nchw = torch.randn(1, 2, 1, 3)
    x_keras_flat = x_nchw.permute(0, 2, 3, 1).flatten(1)
    torch.testing.assert_close(net(x_nchw), x_keras_flat @ keras_kernel)


def test_keras_auto_names():
    assert [keras_auto_name(k) for k in ("Conv2D", "MaxPooling2D", "BatchNormalization", "AveragePooling2D",
                                          "Dense", "Dropout", "Flatten", "Activation")] == [
        "conv2d", "max_pooling2d", "batch_normalization", "average_pooling2d",
        "dense", "dropout", "flatten", "activation",
    ]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Conv2D(8, 3, padding="full"), "unsupported Conv2D padding 'full'; valid choices: valid, same"),
        (lambda: Dense(8, activation="gelu"), "unsupported activation 'gelu'; valid choices: linear, relu"),
        (lambda: MaxPooling2D(2, padding="causal"), "valid choices: valid, same"),
        (lambda: Conv2D(0, 3), "Conv2D filters must be a positive integer, got 0"),
        (lambda: Conv2D(8, (3, 3, 3)), "Conv2D kernel_size must be an integer or a pair"),
        (lambda: Dense(2.5), "Dense units must be a positive integer, got 2.5"),
        (lambda: Dropout(1.0), r"Dropout rate must be in \[0, 1\), got 1.0"),
        (lambda: BatchNormalization(momentum=1.5), r"BatchNormalization momentum must be in \[0, 1\], got 1.5"),
        (lambda: BatchNormalization(epsilon="tiny"), "BatchNormalization epsilon must be positive, got 'tiny'"),
        (lambda: Conv2D(8, 3.0), "Conv2D kernel_size must be an integer or a pair of integers, got 3.0"),
        (lambda: Conv2D(8, 3).build((28,)), r"Conv2D needs a \(C, H, W\) input, got \(28,\)"),
        (lambda: MaxPooling2D(3).build((1, 2, 2)), "does not fit a 2x2 input"),
    ],
)
def test_bad_options_raise_one_line_model_errors(make, message):
    with pytest.raises(ModelError, match=message) as err:
        make()
    assert "\n" not in str(err.value)


def test_loading_wrong_keras_weights_names_the_layer():
    net = create("fashion_mlp")
    with pytest.raises(ModelError, match="takes 4 Keras weight arrays, got 3"):
        load_keras_weights(net, keras_weights(net)[:3])
    weights = keras_weights(net)
    weights[0] = weights[0].T
    expected = r"layer dense \(Dense\) takes Keras weights of shapes \[\(784, 128\), \(128,\)\]"
    with pytest.raises(ModelError, match=expected):
        load_keras_weights(net, weights)
