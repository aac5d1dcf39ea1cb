"""The registry and the notebook architectures: parameter counts, shapes, training steps.

The expected totals are the ones the notebooks' ``model.summary()`` printed (or what Keras prints
for the same layer list where the notebook left the cell empty).
"""

import pytest
import torch
import torch.nn.functional as F

from cnnzoo.errors import ModelError
from cnnzoo.models import (
    Conv2D,
    Dense,
    Flatten,
    KerasSequential,
    build_sequential,
    create,
    default_input_shape,
    default_num_classes,
    list_models,
    model_info,
    register,
    specs,
    summary,
)

# name: (input (C, H, W), classes, total, trainable, non-trainable)
NOTEBOOK = {
    "asl_cnn": ((1, 28, 28), 24, 264_049, 263_749, 300),
    "mnist_cnn": ((1, 28, 28), 10, 485_514, 485_514, 0),
    "mnist_mlp": ((1, 28, 28), 10, 104_938, 104_938, 0),
    "mnist_cnn_small": ((1, 28, 28), 10, 347_690, 347_690, 0),
    "mnist_cnn_dropout": ((1, 28, 28), 10, 57_274, 57_274, 0),
    "bn_cnn": ((1, 64, 64), 10, 1_626_250, 1_626_058, 192),
    "conv3_valid": ((1, 28, 28), 10, 2_002_698, 2_002_698, 0),
    "conv3_same": ((1, 28, 28), 10, 3_231_498, 3_231_498, 0),
    "conv3_strided": ((1, 28, 28), 10, 85_770, 85_770, 0),
    "conv2_pool": ((1, 28, 28), 10, 113_386, 113_386, 0),
    "fashion_mlp": ((1, 28, 28), 10, 101_770, 101_770, 0),
    "fashion_cnn": ((1, 28, 28), 10, 243_786, 243_786, 0),
}


def test_registry_lists_every_notebook_model_sorted():
    assert list_models() == sorted(NOTEBOOK)


@pytest.mark.parametrize("name", list_models())
def test_notebook_defaults_and_param_counts(name):
    shape, classes, total, trainable, non_trainable = NOTEBOOK[name]
    assert default_input_shape(name) == shape
    assert default_num_classes(name) == classes
    net = create(name)
    assert isinstance(net, KerasSequential)
    assert (net.input_shape, net.num_classes, net.name) == (shape, classes, name)
    s = summary(net)
    assert (s.total, s.trainable, s.non_trainable) == (total, trainable, non_trainable)
    assert sum(row.params for row in s.rows) == total
    # Our own parameter/buffer bookkeeping agrees with the Keras-style count.
    assert sum(p.numel() for p in net.parameters()) == trainable
    assert sum(b.numel() for b in net.buffers()) == non_trainable
    text = str(s)
    assert f'Model: "{name}"' in text
    assert f"Total params: {total:,} (" in text
    assert f"Trainable params: {trainable:,} (" in text
    assert f"Non-trainable params: {non_trainable:,} (" in text


@pytest.mark.parametrize("name", list_models())
def test_forward_and_backward_on_a_batch_of_two(name):
    torch.manual_seed(0)
    net = create(name).train()
    x = torch.rand(2, *net.input_shape)
    logits = net(x)
    assert logits.shape == (2, net.num_classes)
    F.cross_entropy(logits, torch.tensor([0, 1])).backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), net(x))  # dropout off, BN on moving statistics


def test_notebook_asl_summary_rows():
    rows = summary(create("asl_cnn")).rows
    assert [(r.name, r.kind, r.output_shape, r.params) for r in rows] == [
        ("conv2d", "Conv2D", (28, 28, 75), 750),
        ("batch_normalization", "BatchNormalization", (28, 28, 75), 300),
        ("max_pooling2d", "MaxPooling2D", (14, 14, 75), 0),
        ("conv2d_1", "Conv2D", (14, 14, 50), 33_800),
        ("dropout", "Dropout", (14, 14, 50), 0),
        ("batch_normalization_1", "BatchNormalization", (14, 14, 50), 200),
        ("max_pooling2d_1", "MaxPooling2D", (7, 7, 50), 0),
        ("conv2d_2", "Conv2D", (7, 7, 25), 11_275),
        ("batch_normalization_2", "BatchNormalization", (7, 7, 25), 100),
        ("max_pooling2d_2", "MaxPooling2D", (4, 4, 25), 0),
        ("flatten", "Flatten", (400,), 0),
        ("dense", "Dense", (512,), 205_312),
        ("dropout_1", "Dropout", (512,), 0),
        ("dense_1", "Dense", (24,), 12_312),
    ]
    # Children carry the same names, so state_dict keys read like Keras weights.
    net = create("asl_cnn")
    assert "dense_1.weight" in net.state_dict()
    features = net[:3]  # a slice, e.g. for feature maps, is a plain nn.Sequential of the blocks
    assert type(features) is torch.nn.Sequential and features[0] is net.conv2d
    assert features(torch.rand(2, 1, 28, 28)).shape == (2, 75, 14, 14)


@pytest.mark.parametrize(
    ("name", "kwargs", "flat_features"),
    [
        ("bn_cnn", {"input_shape": (1, 28, 28)}, 5 * 5 * 64),
        ("asl_cnn", {"num_classes": 10}, 4 * 4 * 25),
        ("conv3_strided", {"input_shape": (1, 27, 27)}, 4 * 4 * 32),  # 27 -> 14 -> 7 -> 4
        ("fashion_cnn", {"input_shape": (3, 32, 32), "num_classes": 7}, 6 * 6 * 64),
        ("mnist_mlp", {"input_shape": (3, 28, 28)}, 3 * 28 * 28),
    ],
)
def test_other_input_shapes_and_class_counts(name, kwargs, flat_features):
    net = create(name, **kwargs)
    shape = kwargs.get("input_shape", default_input_shape(name))
    classes = kwargs.get("num_classes", default_num_classes(name))
    assert (net.input_shape, net.num_classes) == (shape, classes)
    assert net.shapes[net.layer_names.index("flatten") + 1] == (flat_features,)
    assert net(torch.rand(2, *shape)).shape == (2, classes)
    assert specs(name, classes)[-1] == Dense(classes, activation="softmax")


def test_last_softmax_is_left_to_the_loss():
    net = create("mnist_mlp").eval()
    last = net[-1]
    assert net.specs[-1].activation == "softmax" and last.activation == "linear" and net.output_activation == "softmax"
    with torch.no_grad():
        logits = net(torch.rand(4, 1, 28, 28))
    assert not torch.allclose(logits.sum(1), torch.ones(4))  # raw scores, not probabilities


def test_unknown_model_name_lists_the_valid_names():
    with pytest.raises(ModelError) as err:
        create("resnet50")
    message = str(err.value)
    assert "'resnet50'" in message and "\n" not in message
    for name in list_models():
        assert name in message
    with pytest.raises(ModelError, match="asl_cnn"):
        model_info("nope")


def test_register_rejects_duplicates_and_records_metadata():
    info = model_info("asl_cnn")
    assert info.description.startswith("ASL alphabet CNN") and info.num_classes == 24
    with pytest.raises(ModelError, match="already registered"):
        register(input_shape=(1, 28, 28), num_classes=10, name="asl_cnn")(info.specs_fn)


def test_bad_class_count_and_input_shape_are_model_errors():
    with pytest.raises(ModelError, match="units"):
        create("mnist_cnn", num_classes=0)
    with pytest.raises(ModelError, match="input shape"):
        create("mnist_cnn", input_shape=(28, 28))
    with pytest.raises(ModelError, match="does not fit a 2x2 input"):
        create("mnist_cnn", input_shape=(1, 2, 2))


def test_builder_is_public_and_rejects_non_logit_heads():
    net = build_sequential([Conv2D(2, 3), Flatten(), Dense(3)], (1, 5, 5))
    assert net.num_classes == 3 and net.name == "sequential"
    with pytest.raises(ModelError, match="must end in flat class scores"):
        build_sequential([Flatten(), Dense(3, activation="relu")], (1, 5, 5))
    with pytest.raises(ModelError, match="must end in flat class scores"):
        build_sequential([Conv2D(2, 3)], (1, 5, 5))
    with pytest.raises(ModelError, match="add Flatten"):
        build_sequential([Dense(3)], (1, 5, 5))
    with pytest.raises(ModelError, match="no layers"):
        build_sequential([], (1, 5, 5))


def test_summary_input_shape_must_match_the_built_one():
    net = create("bn_cnn")
    assert summary(net, (1, 64, 64)).total == NOTEBOOK["bn_cnn"][2]
    with pytest.raises(ModelError, match="built for input shape"):
        summary(net, (1, 28, 28))
    holder = torch.nn.Module()
    holder.net = net  # e.g. a LightningModule holding the network
    assert summary(holder).rows == summary(net).rows
    with pytest.raises(ModelError, match="holds no cnnzoo network"):
        summary(torch.nn.Linear(2, 2))
