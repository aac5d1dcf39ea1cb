"""Keras 3 (torch backend) reference fixtures for the model tests.

Why this file exists: the model tests check cnnzoo against Keras itself, so they share one way to
turn a cnnzoo spec list into the equivalent ``keras.Sequential``; the spec classes are named and
shaped like Keras' constructors, so the translation is ``getattr(keras.layers, kind)(**fields)``.
"""

import dataclasses
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def keras():
    keras = pytest.importorskip("keras")
    assert keras.backend.backend() == "torch", "set KERAS_BACKEND=torch before keras is imported"
    return keras


@pytest.fixture(scope="session")
def keras_model(keras):
    """``keras_model(specs, input_shape)``: the Keras Sequential for cnnzoo specs and a per-sample
    ``(C, H, W)`` input, with fresh layer names (conv2d, conv2d_1, ...) as in a new session."""

    def build(specs, input_shape):
        keras.backend.clear_session()
        c, *spatial = input_shape
        layers = [getattr(keras.layers, s.kind)(**dataclasses.asdict(s)) for s in specs]
        return keras.Sequential([keras.Input((*spatial, c)), *layers])

    return build
