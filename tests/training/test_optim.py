"""The Keras optimizers follow Keras 3's update rules step for step (KERAS_BACKEND=torch), and
take Keras' defaults; only the step-for-step comparison needs Keras installed."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from cnnzoo.errors import ConfigError
from cnnzoo.training.optim import create_optimizer

os.environ.setdefault("KERAS_BACKEND", "torch")


@pytest.mark.parametrize(
    ("name", "options", "keras_optimizer"),
    [
        ("rmsprop", {}, lambda keras: keras.optimizers.RMSprop()),
        ("rmsprop", {"momentum": 0.9, "lr": 0.01}, lambda keras: keras.optimizers.RMSprop(learning_rate=0.01, momentum=0.9)),
        ("adam", {}, lambda keras: keras.optimizers.Adam()),
        ("adam", {"lr": 3e-3, "beta_1": 0.8}, lambda keras: keras.optimizers.Adam(learning_rate=3e-3, beta_1=0.8)),
        ("sgd", {"momentum": 0.9}, lambda keras: keras.optimizers.SGD(momentum=0.9)),
        ("sgd", {"momentum": 0.9, "nesterov": True}, lambda keras: keras.optimizers.SGD(momentum=0.9, nesterov=True)),
    ],
)
def test_trajectory_matches_keras(name: str, options: dict, keras_optimizer):
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    start = rng.normal(size=(4, 3)).astype(np.float32)
    # gradients spanning tiny to large magnitudes: where epsilon placement matters
    grads = [(rng.normal(size=(4, 3)) * 10.0 ** rng.integers(-6, 1, size=(4, 3))).astype(np.float32) for _ in range(20)]

    ours = torch.nn.Parameter(torch.tensor(start))
    optimizer = create_optimizer([ours], name, **options)
    theirs = keras.Variable(start)
    reference = keras_optimizer(keras)
    for g in grads:
        ours.grad = torch.tensor(g)
        optimizer.step()
        reference.apply_gradients([(keras.ops.convert_to_tensor(g), theirs)])
    np.testing.assert_allclose(ours.detach().numpy(), keras.ops.convert_to_numpy(theirs), rtol=1e-5, atol=1e-6)


def test_keras_defaults():
    p = [torch.nn.Parameter(torch.zeros(1))]
    assert create_optimizer(p, "rmsprop").defaults == {"lr": 1e-3, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7}
    adam = create_optimizer(p, "adam").defaults
    assert (adam["lr"], adam["beta_1"], adam["beta_2"], adam["epsilon"]) == (1e-3, 0.9, 0.999, 1e-7)
    assert create_optimizer(p, "sgd").defaults["lr"] == 0.01


def test_unknown_name_and_option_are_config_errors():
    p = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ConfigError, match=r"optimizer.name='adamw': unknown optimizer, expected one of adam, rmsprop, sgd"):
        create_optimizer(p, "adamw")
    with pytest.raises(ConfigError, match=r"optimizer \(adam\): .*unexpected keyword argument 'rho'"):
        create_optimizer(p, "adam", rho=0.9)
