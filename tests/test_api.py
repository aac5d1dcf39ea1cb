"""cnnzoo from Python: ``fit`` / ``open_run`` / ``evaluate`` / ``predict`` / ``load`` on the CLI's code
path, and Keras' Sequential API on a user's arrays."""

from __future__ import annotations

import importlib
import logging
import re
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import cnnzoo
from cnnzoo.data import SignMNISTDataModule
from cnnzoo.errors import ConfigError, DataError, ModelError
from cnnzoo.interop.keras_layout import keras_weights
from cnnzoo.keras_api import BatchNormalization, Conv2D, Dense, Flatten, Input, MaxPool2D, Sequential
from cnnzoo.models import create, specs
from cnnzoo.training.loggers import event_dir
from tests.conftest import run_cli, write_sign_dataset

FIT = ("mnist_cnn_small", "data.validation=0.25", "callbacks.input_inspection=null")


def _scalars(run_dir: Path, tag: str) -> list[float]:
    events = EventAccumulator(str(event_dir(run_dir)), size_guidance={"scalars": 0})
    events.Reload()
    # by epoch (each epoch metric's step): a resumed run adds an event file, read in file-name order
    return [event.value for event in sorted(events.Scalars(tag), key=lambda event: event.step)]


def test_fit_twice_in_one_process_gives_keras_histories_equal_to_tensorboard(data_dir: Path, tmp_path: Path):
    first = cnnzoo.fit(*FIT, "trainer.max_epochs=1", run_dir=tmp_path).history
    run = cnnzoo.fit(*FIT, "trainer.max_epochs=2", "ckpt_path=last", run_dir=tmp_path)  # the same run, resumed
    assert run.status == "completed" and run.run_dir == tmp_path
    history = run.history
    assert {"loss", "accuracy", "f1", "top5", "val_loss", "val_accuracy", "learning_rate"} <= set(history)
    assert all(len(values) == 2 for values in history.values()) and all(len(v) == 1 for v in first.values())
    assert history["loss"][:1] == first["loss"]  # the resumed run's history holds every epoch
    for key, tag in (("val_accuracy", "val/accuracy"), ("val_loss", "val/loss"), ("accuracy", "train/accuracy"),
                     ("loss", "train/loss")):
        assert history[key] == pytest.approx(_scalars(run.run_dir, tag), rel=1e-6), key
    assert [e.step for e in sorted(EventAccumulator(str(event_dir(run.run_dir)), size_guidance={"scalars": 0}).Reload()
                                   .Scalars("val/accuracy"), key=lambda e: e.step)] == [0, 1]  # one point per epoch
    assert (run.run_dir / ".hydra" / "overrides.yaml").is_file()
    assert run.metrics["history"] == history == cnnzoo.open_run(run.run_dir).history
    figure = run.plot()
    assert [len(line.get_xdata()) for line in figure.axes[1].lines] == [2, 2]  # accuracy: training, validation


@pytest.mark.slow
def test_runs_started_in_one_process_get_a_run_dir_each(data_dir: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default dirs: outputs/<job>/<time>_<hex>
    limit = ("trainer.max_epochs=1", "+trainer.limit_train_batches=2", "callbacks.input_inspection=null")
    first, second = (cnnzoo.fit("mnist_mlp", f"seed={seed}", *limit) for seed in (1, 2))
    assert first.run_dir != second.run_dir
    assert (first.metrics["seed"], second.metrics["seed"]) == (1, 2)  # the first run's results are its own
    assert {path.name for path in (first.run_dir / "checkpoints").iterdir()} == {"epoch000.ckpt", "last.ckpt"}
    for _ in range(2):
        cnnzoo.evaluate(first)
    assert len([d for d in (tmp_path / "outputs" / "evaluate").iterdir() if (d / "metrics.json").is_file()]) == 2


def test_errors_are_typed_one_line_exceptions(data_dir: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="data.batch_size=0: expected a positive integer") as err:
        cnnzoo.fit("mnist_mlp", "data.batch_size=0", run_dir=tmp_path / "a")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="^logger=null: expected one of csv, mlflow, tensorboard, or ~logger to leave it out$"):
        cnnzoo.fit("mnist_mlp", "logger=null", run_dir=tmp_path / "c")
    with pytest.raises(ConfigError, match="Could not find 'model/lenet'"):
        cnnzoo.fit("lenet", run_dir=tmp_path / "b")
    with pytest.raises(ConfigError) as err:  # the command line's message, not Hydra's advice to add it with +
        cnnzoo.fit("mnist_mlp", "optimizer.lrr=1e-3", run_dir=tmp_path / "c")
    assert str(err.value) == "unknown key optimizer.lrr: did you mean optimizer.lr?"
    with pytest.raises(ConfigError, match=r"^seed='x': expected an integer in \[0, 4294967295\]$"):
        cnnzoo.fit("mnist_mlp", "seed=x", run_dir=tmp_path / "d")
    with pytest.raises(ConfigError, match="not a cnnzoo run dir"):
        cnnzoo.open_run(tmp_path / "nowhere")


@pytest.fixture(scope="module")
def sign_run(tmp_path_factory):
    """One short asl_cnn run on generated Sign-MNIST files, shared by the tests that only read it."""
    root = tmp_path_factory.mktemp("sign")
    write_sign_dataset(root / "data" / "sign_mnist", seed=3)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CNNZOO_DATA_DIR", str(root / "data"))
        env.setenv("XDG_CACHE_HOME", str(root / "cache"))
        yield cnnzoo.fit("asl_cnn", "trainer.max_epochs=1", "callbacks.input_inspection=null", run_dir=root / "asl")


@pytest.mark.slow
def test_evaluate_and_predict_from_python_equal_the_cli(sign_run, tmp_path: Path):
    ckpt = sign_run.checkpoint
    cli = run_cli("evaluate", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'cli'}")
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert "Testing" not in cli.stdout + cli.stderr  # a pipe gets no progress-bar frames
    stored = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    ours = cnnzoo.evaluate(sign_run, run_dir=tmp_path / "py")
    assert {k: ours[k] for k in stored["metrics"]["test"]} == stored["metrics"]["test"]
    assert ours["confusion_matrix"] == stored["confusion_matrix"]
    predicted = run_cli("predict", f"ckpt_path={ckpt}", "index=[0,1,2]", "top_k=2", f"hydra.run.dir={tmp_path / 'p'}")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    records = json.loads((tmp_path / "p" / "predictions.json").read_text())["predictions"]
    datamodule = SignMNISTDataModule()
    datamodule.setup()
    images = datamodule.splits["test"][0][:3]
    top = cnnzoo.predict(ckpt, images, top_k=2)
    assert [[p["class"] for p in r["top_k"]] for r in records] == [[p["class"] for p in t] for t in top]
    for record, mine in zip(records, top):
        assert [p["probability"] for p in record["top_k"]] == pytest.approx([p["probability"] for p in mine], abs=1e-6)


def test_predict_takes_every_layout_dtype_and_image_files(sign_run, tmp_path: Path):
    pixels = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "x.png")
    model = cnnzoo.load(sign_run.checkpoint)
    reference = model.predict(pixels[None])
    assert reference.shape == (1, 24) and np.isclose(reference.sum(), 1, atol=1e-5)
    layouts = [pixels, pixels[None], pixels[None, :, :, None], pixels[None, None], pixels / 255.0,
               torch.from_numpy(pixels)[None, None], torch.from_numpy(pixels).float()[None, None] / 255,
               pixels.astype(np.int64), [tmp_path / "x.png"], str(tmp_path / "x.png")]
    for images in layouts:
        np.testing.assert_allclose(model.predict(images), reference, atol=1e-6)
    np.testing.assert_allclose(cnnzoo.predict(sign_run, pixels), reference, atol=1e-6)


@pytest.mark.parametrize(("images", "message"), [
    (np.zeros((2, 3, 28, 29)), r"images of shape \(2, 3, 28, 29\): cannot tell the layout; the model takes \(H, W\)"),
    (np.zeros((2, 28, 28, 3)), r"images of shape \(2, 28, 28, 3\): cannot tell the layout"),
    (np.full((1, 28, 28), 2.5), r"float images must lie in \[0, 1\], these span 2.5..2.5"),
    (np.full((1, 28, 28), 300), r"integer images must lie in 0..255, these span 300..300"),
    (np.array([None]), r"images of dtype object: expected uint8 0..255 or floats in \[0, 1\], or PNG/JPEG file paths"),
    ([[0, 1], [0]], r"images: nested lists of different lengths; expected uint8 0..255 or floats in \[0, 1\]"),
])
def test_a_wrong_image_layout_is_a_one_line_data_error(sign_run, images, message):
    with pytest.raises(DataError, match=message) as err:
        sign_run.predict(images)
    assert "\n" not in str(err.value)


def test_a_model_saves_and_loads_back(sign_run, tmp_path: Path):
    model = sign_run.model
    saved = cnnzoo.load(model.save(tmp_path / "copy.ckpt"))
    images = np.random.default_rng(1).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(saved.predict(images), model.predict(images))
    assert saved.class_names == model.class_names and saved.count_params() == 264049
    with pytest.raises(ConfigError, match=r"unknown format .txt; expected \.ckpt, \.keras or \.h5"):
        model.save(tmp_path / "copy.txt")


def test_files_load_cannot_read_are_one_line_model_errors(tmp_path: Path):
    (tmp_path / "empty.keras").write_bytes(b"")
    (tmp_path / "garbage.h5").write_bytes(b"not HDF5")
    for name in ("empty.keras", "garbage.h5"):
        with pytest.raises(ModelError, match=rf"^{tmp_path}/{name}: not a Keras file; expected a \.keras zip or an HDF5"):
            cnnzoo.load(tmp_path / name, data="mnist")
    (tmp_path / "user_model.py").write_text("import torch\nclass Net(torch.nn.Linear):\n    pass\n")
    sys.path.insert(0, str(tmp_path))  # torch.save(model) of a class from the user's own module
    try:
        torch.save(importlib.import_module("user_model").Net(2, 2), tmp_path / "net.pt")
    finally:
        sys.path.remove(str(tmp_path))
        del sys.modules["user_model"]
    with pytest.raises(ModelError, match=rf"^ckpt_path={tmp_path}/net.pt: a pickled object from module 'user_model' "
                                         "that cnnzoo cannot rebuild"):
        cnnzoo.load(tmp_path / "net.pt")


# ---------------------------------------------------------------------------------------- Sequential


def test_sequential_with_a_zoo_architecture_is_the_zoo_model():
    model = Sequential([Input((28, 28, 1)), *specs("asl_cnn", 24)])
    assert model.count_params() == 264049
    zoo = create("asl_cnn").eval()
    model.set_weights(keras_weights(zoo))
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = zoo.keras_output(x).numpy()
    assert np.abs(model.predict(x.permute(0, 2, 3, 1).numpy()) - expected).max() <= 1e-6


def _stripes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class (0..3) is the band of rows that is bright: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    images = rng.random((n, 28, 28), dtype=np.float32) * 0.3
    for image, label in zip(images, labels):
        image[7 * label:7 * label + 7] += 0.7
    return images, labels


def test_sequential_fit_on_arrays_learns_and_returns_keras_history(tmp_path: Path):
    x, y = _stripes(320, 0)
    model = Sequential(name="stripes")
    for layer in (Conv2D(8, 3, activation="relu"), MaxPool2D(2), Flatten(), Dense(4, activation="softmax")):
        model.add(layer)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x[:256], np.eye(4)[y[:256]], epochs=3, batch_size=32, validation_split=0.25, verbose=0,
                        run_dir=tmp_path)
    assert history is model.history and history.epoch == [0, 1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.history)
    assert all(len(v) == 3 for v in history.history.values())
    loss, accuracy = model.evaluate(x[256:], y[256:])
    assert accuracy >= 0.9 > 0.25  # chance is 0.25
    assert model.predict(x[256:260]).argmax(axis=1).tolist() == y[256:260].tolist()
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()  # the same run dir layout as a recipe
    assert [p.name for p in (tmp_path / "tensorboard").iterdir()] == ["stripes"]  # TensorBoard's run: the model's name
    reloaded = cnnzoo.load(model.save(tmp_path / "stripes.ckpt"))
    np.testing.assert_allclose(reloaded.predict(x[256:260]), model.predict(x[256:260]), atol=1e-6)


def test_sequential_fit_after_predict_trains_in_training_mode(tmp_path: Path):
    """Keras' fit always trains (Dropout on, BatchNormalization's moving statistics updated), also
    after a predict or evaluate put the network in inference mode."""
    x, y = _stripes(64, 1)
    model = Sequential([Input((28, 28, 1)), Conv2D(4, 3), BatchNormalization(), Flatten(), Dense(4, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0, run_dir=tmp_path / "first")
    model.predict(x[:4])
    model.evaluate(x, y)
    moving_mean = model.get_weights()[4].copy()  # BatchNormalization: gamma, beta, moving mean, moving variance
    model.fit(x, y, epochs=1, verbose=0, run_dir=tmp_path / "second")
    assert np.abs(model.get_weights()[4] - moving_mean).max() > 1e-4


def test_sequential_errors_name_what_was_wrong():
    with pytest.raises(ConfigError, match="compile\\(optimizer='adamax'\\): expected one of adam, rmsprop, sgd"):
        Sequential([Dense(2)]).compile(optimizer="adamax")
    with pytest.raises(ConfigError, match="compile\\(loss='mse'\\)"):
        Sequential([Dense(2)]).compile(loss="mse")
    with pytest.raises(Exception, match="is not built: add Input"):
        Sequential([Flatten(), Dense(2)]).summary()
    model = Sequential([Input((28, 28)), Flatten(), Dense(3, activation="softmax")])
    for call in (lambda: model.fit(np.zeros((8, 28, 28)), np.zeros(8), verbose=0),
                 lambda: model.evaluate(np.zeros((8, 28, 28)), np.zeros(8))):
        with pytest.raises(ConfigError, match=r"^You must call `compile\(\)` before calling `(fit|evaluate)\(\)`\.$"):
            call()  # as Keras: no loss to train or evaluate with
    model.compile(loss="sparse_categorical_crossentropy")
    with pytest.raises(DataError, match="labels 0..7 do not fit a 3-class model"):
        model.fit(np.zeros((8, 28, 28)), np.arange(8), verbose=0)
    with pytest.raises(DataError, match=r"^x of dtype object: expected images \(N, H, W, C\) or \(N, H, W\) of numbers$"):
        model.fit([None], [0], verbose=0)


def test_sequential_evaluate_and_predict_take_keras_verbose_and_return_dict():
    x, y = _stripes(8, 2)
    model = Sequential([Input((28, 28, 1)), Flatten(), Dense(4, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    loss, accuracy = model.evaluate(x, y, verbose=0)  # the seeds' call
    assert model.metrics_names == ["loss", "accuracy"]
    assert model.evaluate(x, y, verbose=0, return_dict=True) == {"loss": loss, "accuracy": accuracy}
    assert model.predict(x, verbose=0, batch_size=None).shape == (8, 4)
    with pytest.raises(ConfigError, match=r"^predict\(verbose='loud'\): expected 'auto', 0, 1 or 2$"):
        model.predict(x, verbose="loud")


def test_sequential_fit_with_verbose_0_prints_nothing(tmp_path: Path, capfd, caplog):
    x, y = _stripes(16, 3)
    model = Sequential([Input((28, 28, 1)), Flatten(), Dense(4, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    capfd.readouterr()
    with caplog.at_level(logging.INFO):
        model.fit(x, y, epochs=1, verbose=0, run_dir=tmp_path / "quiet")
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert [r.getMessage() for r in caplog.records if r.levelno < logging.WARNING] == []
    with caplog.at_level(logging.INFO):  # the loggers' levels are back: verbose=2 shows the run's lines
        model.fit(x, y, epochs=1, verbose=2, run_dir=tmp_path / "lines")
    assert "Epoch 1/1" in capfd.readouterr().out and any("Run dir:" in r.getMessage() for r in caplog.records)
    with pytest.raises(ConfigError, match=r"^fit\(verbose=3\): expected 'auto', 0, 1 or 2$"):
        model.fit(x, y, verbose=3)


def test_sequential_compile_takes_keras_learning_rate_and_checks_the_options(tmp_path: Path):
    x, y = _stripes(16, 4)
    model = Sequential([Input((28, 28, 1)), Flatten(), Dense(4, activation="softmax")])
    model.compile(optimizer={"name": "adam", "learning_rate": 3e-4}, loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=1, verbose=0, run_dir=tmp_path)
    assert history.history["learning_rate"] == [pytest.approx(3e-4)]
    assert {"loss", "accuracy"} <= set(history.history)  # compiled without metrics: cnnzoo's own still there
    for optimizer, message in (({"name": "adam", "learning_rate": -1}, "learning_rate=-1: expected a finite number > 0"),
                               ({"name": "adam", "betas": 0.9}, "unknown key betas: adam takes learning_rate, beta_1"),
                               ({"name": "sgd", "momentum": "x"}, "momentum='x': expected a finite number >= 0")):
        with pytest.raises(ConfigError, match=rf"^compile\(optimizer={re.escape(repr(optimizer))}\): {message}") as err:
            model.compile(optimizer=optimizer)
        assert "\n" not in str(err.value)


def test_input_and_output_shapes_are_keras_with_the_batch_first(sign_run):
    model = Sequential([Conv2D(4, 3, input_shape=(28, 28, 1)), MaxPool2D(2), Flatten(), Dense(3, activation="softmax")])
    assert (model.input_shape, model.output_shape) == ((None, 28, 28, 1), (None, 3))
    with pytest.raises(ModelError, match="has no input shape yet"):
        Sequential([Flatten(), Dense(2)]).input_shape
    loaded = cnnzoo.load(sign_run.checkpoint)
    assert (loaded.input_shape, loaded.output_shape) == ((None, 28, 28, 1), (None, 24))


def test_sequential_fit_takes_lightning_callbacks_and_says_what_to_use_for_keras_other_arguments(tmp_path: Path):
    from lightning.pytorch.callbacks import Callback

    class Epochs(Callback):
        def __init__(self):
            self.ended = 0

        def on_train_epoch_end(self, trainer, pl_module):
            self.ended += 1

    x, y = _stripes(16, 5)
    model = Sequential([Input((28, 28, 1)), Flatten(), Dense(4, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    counter = Epochs()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[counter], run_dir=tmp_path / "a")
    assert counter.ended == 2
    model.fit(x, y, epochs=1, verbose=0, run_dir=tmp_path / "b")  # the callbacks were this fit's only
    assert counter.ended == 2
    for options, message in (({"initial_epoch": 3}, r"fit\(initial_epoch=3\): not supported by cnnzoo; each fit\(\)"),
                             ({"steps_per_epoch": 2}, r"use overrides=\['\+trainer.limit_train_batches=N'\]"),
                             ({"callbacks": [object()]}, r"fit\(callbacks=...\): builtins.object is not a Lightning callback"),
                             ({"epoch": 3}, r"fit\(epoch=3\): not an argument of fit; expected x, y, epochs")):
        with pytest.raises(ConfigError, match=message) as err:
            model.fit(x, y, verbose=0, **options)
        assert "\n" not in str(err.value)


def test_a_loaded_model_predicts_with_keras_verbose(sign_run):
    model = cnnzoo.load(sign_run.checkpoint)
    pixels = np.zeros((2, 28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(model.predict(pixels, verbose=0, batch_size=None), model.predict(pixels))
    with pytest.raises(ConfigError, match=r"^predict\(verbose=5\): expected 'auto', 0, 1 or 2$"):
        model.predict(pixels, verbose=5)


def test_sequential_fit_takes_keras_positional_order(tmp_path: Path):
    x, y = _stripes(16, 6)
    model = Sequential([Input((28, 28, 1)), Flatten(), Dense(4, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, 8, 2, 0, run_dir=tmp_path)  # Keras: x, y, batch_size, epochs, verbose
    assert history.epoch == [0, 1]
    assert "data.batch_size=8" in (tmp_path / ".hydra" / "overrides.yaml").read_text()
