"""The notebook architectures, written as the notebooks write them.

Why this module exists: each classic network is a Keras ``Sequential`` in its notebook; here it
is the same layer list, in the same order with the same arguments, registered by name with the
input shape (cnnzoo order: channels, height, width) and class count the notebook's code gives
it.  Only the class count (the last Dense) is a parameter; the input shape is chosen when
building.  What a recipe trains (its data, and so its sizes) is the recipe's business:
``conf/model/<name>.yaml``, read by ``cnnzoo.recipes``.
"""

from __future__ import annotations

from cnnzoo.models.layers import (
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    MaxPooling2D,
)
from cnnzoo.models.registry import register

GRAY_28 = (1, 28, 28)


@register(input_shape=GRAY_28, num_classes=24)
def asl_cnn(num_classes: int):
    """ASL alphabet CNN: three 'same' conv + BatchNorm + 2x2 pool stages, Dense 512."""
    return [
        Conv2D(75, (3, 3), strides=1, padding="same", activation="relu"),
        BatchNormalization(),
        MaxPool2D((2, 2), strides=2, padding="same"),
        Conv2D(50, (3, 3), strides=1, padding="same", activation="relu"),
        Dropout(0.2),
        BatchNormalization(),
        MaxPool2D((2, 2), strides=2, padding="same"),
        Conv2D(25, (3, 3), strides=1, padding="same", activation="relu"),
        BatchNormalization(),
        MaxPool2D((2, 2), strides=2, padding="same"),
        Flatten(),
        Dense(512, activation="relu"),
        Dropout(0.3),
        Dense(num_classes, activation="softmax"),
    ]


@register(input_shape=GRAY_28, num_classes=10)
def mnist_cnn(num_classes: int):
    """Deitel's MNIST CNN: Conv 64 + pool, Conv 128 + pool, Dense 128."""
    return [
        Conv2D(filters=64, kernel_size=(3, 3), activation="relu"),
        MaxPooling2D(pool_size=(2, 2)),
        Conv2D(filters=128, kernel_size=(3, 3), activation="relu"),
        MaxPooling2D(pool_size=(2, 2)),
        Flatten(),
        Dense(units=128, activation="relu"),
        Dense(units=num_classes, activation="softmax"),
    ]


@register(input_shape=GRAY_28, num_classes=10)
def mnist_mlp(num_classes: int):
    """GA's feed-forward MNIST network: Dense 128, Dense 32."""
    return [
        Flatten(),
        Dense(128, activation="relu"),
        Dense(32, activation="relu"),
        Dense(num_classes, activation="softmax"),
    ]


@register(input_shape=GRAY_28, num_classes=10)
def mnist_cnn_small(num_classes: int):
    """GA's first CNN: Conv 16 + pool, Dense 128."""
    return [
        Conv2D(16, kernel_size=3, activation="relu"),
        MaxPooling2D(pool_size=(2, 2)),
        Flatten(),
        Dense(128, activation="relu"),
        Dense(num_classes, activation="softmax"),
    ]


@register(input_shape=GRAY_28, num_classes=10)
def mnist_cnn_dropout(num_classes: int):
    """GA's second CNN: Conv 16 + pool, Conv 32 + pool, Dense 64 and 16 with Dropout 0.5."""
    return [
        Conv2D(filters=16, kernel_size=3, activation="relu"),
        MaxPooling2D(pool_size=(2, 2)),
        Conv2D(32, kernel_size=3, activation="relu"),
        MaxPooling2D(pool_size=(2, 2)),
        Flatten(),
        Dense(64, activation="relu"),
        Dropout(0.5),
        Dense(16, activation="relu"),
        Dropout(0.5),
        Dense(num_classes, activation="softmax"),
    ]


@register(input_shape=(1, 64, 64), num_classes=10)
def bn_cnn(num_classes: int):
    """Two 'valid' conv + BatchNorm + pool + Dropout 0.25 stages, Dense 128 + Dropout 0.5."""
    return [
        Conv2D(32, (3, 3), activation="relu"),
        BatchNormalization(),
        MaxPooling2D((2, 2)),
        Dropout(0.25),
        Conv2D(64, (3, 3), activation="relu"),
        BatchNormalization(),
        MaxPooling2D((2, 2)),
        Dropout(0.25),
        Flatten(),
        Dense(128, activation="relu"),
        Dropout(0.5),
        Dense(num_classes, activation="softmax"),
    ]


def _three_convs(num_classes: int, padding: str, strides: int = 1):
    return [
        *[Conv2D(32, kernel_size=(3, 3), padding=padding, strides=strides, activation="relu")] * 3,
        Flatten(),
        Dense(128, activation="relu"),
        Dense(num_classes, activation="softmax"),
    ]


@register(input_shape=GRAY_28, num_classes=10)
def conv3_valid(num_classes: int):
    """Three 3x3 Conv 32 with 'valid' padding (28 -> 26 -> 24 -> 22), Dense 128."""
    return _three_convs(num_classes, "valid")


@register(input_shape=GRAY_28, num_classes=10)
def conv3_same(num_classes: int):
    """Three 3x3 Conv 32 with 'same' padding (28 stays 28), Dense 128."""
    return _three_convs(num_classes, "same")


@register(input_shape=GRAY_28, num_classes=10)
def conv3_strided(num_classes: int):
    """Three 3x3 Conv 32, 'same' padding, stride 2 (28 -> 14 -> 7 -> 4), Dense 128."""
    return _three_convs(num_classes, "same", strides=2)


@register(input_shape=GRAY_28, num_classes=10)
def conv2_pool(num_classes: int):
    """Two 'valid' Conv 32 + 2x2 max pool (stride 2, 'valid'), Dense 128."""
    return [
        Conv2D(32, kernel_size=(3, 3), padding="valid", activation="relu"),
        MaxPooling2D(pool_size=(2, 2), strides=2, padding="valid"),
        Conv2D(32, kernel_size=(3, 3), padding="valid", activation="relu"),
        MaxPooling2D(pool_size=(2, 2), strides=2, padding="valid"),
        Flatten(),
        Dense(128, activation="relu"),
        Dense(num_classes, activation="softmax"),
    ]


@register(input_shape=GRAY_28, num_classes=10)
def fashion_mlp(num_classes: int):
    """Fashion-MNIST's first network: Flatten, Dense 128."""
    return [
        Flatten(),
        Dense(128, activation="relu"),
        Dense(num_classes, activation="softmax"),
    ]


@register(input_shape=GRAY_28, num_classes=10)
def fashion_cnn(num_classes: int):
    """Fashion-MNIST CNN: two Conv 64 + pool stages, Dense 128."""
    return [
        Conv2D(64, (3, 3), activation="relu"),
        MaxPooling2D(2, 2),
        Conv2D(64, (3, 3), activation="relu"),
        MaxPooling2D(2, 2),
        Flatten(),
        Dense(128, activation="relu"),
        Dense(num_classes, activation="softmax"),
    ]
