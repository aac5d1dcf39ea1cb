"""cnnzoo's Keras Sequential API takes what a seed notebook passes Keras' ``compile``: optimizer,
loss and metric objects, read through their ``get_config()``; what cnnzoo does not do is one line."""

from pathlib import Path

import numpy as np
import pytest

from cnnzoo.errors import ConfigError
from cnnzoo.keras_api import Dense, Flatten, Input, Sequential


def _model() -> Sequential:
    return Sequential([Input((28, 28, 1)), Flatten(), Dense(4, activation="softmax")])


def test_compile_reads_keras_optimizer_loss_and_metric_objects(keras, tmp_path: Path):
    model = _model()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3, beta_2=0.99),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["sparse_categorical_accuracy"])
    assert model.optimizer == {"name": "adam", "lr": 1e-3, "beta_1": 0.9, "beta_2": 0.99, "epsilon": 1e-7}
    assert model.loss == "sparse_categorical_crossentropy"
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 28, 28), dtype=np.float32), np.arange(16) % 4
    history = model.fit(x, y, epochs=1, verbose=0, validation_split=0.25, run_dir=tmp_path)
    assert {"sparse_categorical_accuracy", "val_sparse_categorical_accuracy", "loss", "val_loss"} <= set(history.history)
    assert set(model.evaluate(x, y, verbose=0, return_dict=True)) == {"loss", "sparse_categorical_accuracy"}
    model.compile(optimizer=keras.optimizers.SGD(momentum=0.9, nesterov=True),
                  loss=keras.losses.categorical_crossentropy, metrics=[keras.metrics.CategoricalAccuracy()])
    assert (model.optimizer, model.loss, model.metrics) == (
        {"name": "sgd", "lr": 0.01, "momentum": 0.9, "nesterov": True}, "categorical_crossentropy",
        ["categorical_accuracy"])
    model.compile(optimizer=keras.optimizers.RMSprop(), metrics=["categorical_accuracy", "acc"])
    assert model.optimizer["name"] == "rmsprop" and model.metrics == ["categorical_accuracy", "acc"]


@pytest.mark.parametrize(("arguments", "message"), [
    (lambda k: {"optimizer": k.optimizers.Adam(amsgrad=True)},
     r"compile\(optimizer=Adam\(...\)\): amsgrad=True is not supported by cnnzoo \(expected amsgrad=False\)"),
    (lambda k: {"optimizer": k.optimizers.Adamax()}, r"compile\(optimizer=Adamax\(...\)\): expected one of adam, rmsprop, sgd"),
    (lambda k: {"loss": k.losses.SparseCategoricalCrossentropy(from_logits=True)},
     r"compile\(loss=SparseCategoricalCrossentropy\(...\)\): from_logits=True is not supported"),
    (lambda k: {"loss": k.losses.MeanSquaredError()},
     r"compile\(loss=MeanSquaredError\(...\)\): expected one of categorical_crossentropy, sparse_categorical_crossentropy"),
    (lambda k: {"metrics": [k.metrics.AUC()]}, r"cnnzoo reports loss, accuracy, f1 and top5; AUC\(\) is not one of them"),
])
def test_what_cnnzoo_does_not_do_is_one_line(keras, arguments, message):
    with pytest.raises(ConfigError, match=message) as err:
        _model().compile(**arguments(keras))
    assert "\n" not in str(err.value)


def test_the_readme_s_trained_checkpoint_measurement_runs(keras, data_dir: Path, tmp_path: Path, capsys, monkeypatch):
    """``scripts/keras_trained_check.py``, which the README's real-image figures come from, on a small
    checkpoint and the test images of ``data_dir``: every difference is float32 rounding."""
    import importlib.util
    import sys

    from cnnzoo.recipes import recipe
    from tests.conftest import REPO, save_checkpoint

    ckpt = save_checkpoint(recipe("mnist_mlp").module(), tmp_path / "mlp.ckpt")
    spec = importlib.util.spec_from_file_location("keras_trained_check", REPO / "scripts" / "keras_trained_check.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(sys, "argv", ["keras_trained_check.py", str(ckpt), "--images", "8"])
    script.main()
    row = capsys.readouterr().out.strip().splitlines()[-1]
    assert row.startswith(f"| {ckpt} | mnist_mlp |")  # real images: no '*'
    assert all(float(cell) <= 1e-5 for cell in row.strip("| ").split(" | ")[2:])
