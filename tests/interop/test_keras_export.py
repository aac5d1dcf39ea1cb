"""``format=keras|h5`` and ``save_keras``: cnnzoo models out as Keras files that Keras 3 itself loads
with the checkpoint's probabilities, compiled with the recipe's optimizer and ready to ``fit``.

Every zoo model goes out as its recipe trains it (sized from its data, its optimizer, its data
config), with trained-looking weights; Keras 3 (torch backend) reloads the file and must give the
probabilities ``ClassifierModule.probabilities`` gives on the checkpoint's preprocessing of the same
pixels, to 1e-5 with the same argmax, on 32 images, then take one ``fit`` step.  Keras-made files
go the other way round too: Keras writes, cnnzoo reads (``keras_model=``), exports, Keras reloads.
The fast tier takes three models (BatchNorm + RMSprop + 'same' pools, an MLP, 64x64 inputs), the
slow one all of them; one test does the same on real MNIST test images.
"""

import json
import os
import zipfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from cnnzoo.cli import user_errors  # noqa: E402
from cnnzoo.interop.deploy import export_checkpoint  # noqa: E402
from cnnzoo.interop.keras_files import load_model  # noqa: E402
from cnnzoo.interop.keras_writer import save_keras  # noqa: E402
from cnnzoo.models import list_models  # noqa: E402
from cnnzoo.recipes import recipe  # noqa: E402
from cnnzoo.training.checkpoints import datamodule_for, load_classifier  # noqa: E402
from cnnzoo.training.module import ClassifierModule  # noqa: E402
from tests.conftest import real_data_dir, save_checkpoint  # noqa: E402
from tests.interop.conftest import TOL, reference, trained_looking  # noqa: E402
from tests.interop.test_keras_import import CASES  # noqa: E402

pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation:DeprecationWarning",  # Keras' torch backend under numpy 2
    "ignore:Skipping variable loading for optimizer:UserWarning",  # a fresh optimizer, as in Keras' own files
)
FAST = ("asl_cnn", "mnist_mlp", "bn_cnn")
SUFFIXES = (".keras", ".h5")
KERAS_OPTIMIZERS = {"adam": "Adam", "rmsprop": "RMSprop", "sgd": "SGD"}


@pytest.fixture(scope="module")
def zoo_checkpoint(tmp_path_factory):
    """``zoo_checkpoint(name)``: a checkpoint of the zoo model as its recipe trains it, trained-looking."""
    cache = {}

    def get(name: str) -> Path:
        if name not in cache:
            torch.manual_seed(list_models().index(name))
            module = trained_looking(recipe(name).module(), seed=list_models().index(name))
            cache[name] = save_checkpoint(module, tmp_path_factory.mktemp(name) / "last.ckpt")
        return cache[name]

    return get


def _pixels(shape, n: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8))


def check_against_checkpoint(keras, path: Path, module: ClassifierModule, pixels: torch.Tensor) -> None:
    """Keras' model from ``path`` gives the checkpoint's (``module``'s) probabilities for ``pixels``
    (scaled as its data config says), is compiled with its optimizer and fits one step."""
    with torch.no_grad():
        x = datamodule_for(module).preprocess(pixels)
        expected = module.probabilities(x).numpy()
    keras.backend.clear_session()
    kmodel = keras.models.load_model(path)
    nhwc = x.permute(0, 2, 3, 1).numpy()
    got = kmodel.predict(nhwc, verbose=0)
    assert np.abs(got - expected).max() <= TOL
    assert np.array_equal(got.argmax(1), expected.argmax(1))
    optimizer = module.hparams.optimizer
    assert type(kmodel.optimizer).__name__ == KERAS_OPTIMIZERS[optimizer["name"]]
    assert float(kmodel.optimizer.learning_rate) == pytest.approx(optimizer["lr"], rel=1e-6)
    assert kmodel.loss.get_config()["label_smoothing"] == module.hparams.label_smoothing
    before = kmodel.layers[-1].get_weights()[0].copy()
    labels = np.eye(module.hparams.num_classes, dtype="float32")[np.arange(4) % module.hparams.num_classes]
    history = kmodel.fit(nhwc[:4], labels, batch_size=4, epochs=1, verbose=0)
    assert int(kmodel.optimizer.iterations) == 1 and np.isfinite(history.history["loss"][0])
    assert not np.array_equal(before, kmodel.layers[-1].get_weights()[0])


def _round_trip(keras, zoo_checkpoint, tmp_path, name: str, suffix: str) -> None:
    ckpt = zoo_checkpoint(name)
    exported = export_checkpoint(ckpt, suffix.lstrip("."), tmp_path / f"{name}{suffix}")
    assert list(tmp_path.iterdir()) == [exported.path]
    module = load_classifier(ckpt)
    check_against_checkpoint(keras, exported.path, module, _pixels(module.net.input_shape))
    assert load_model(exported.path).specs == module.net.specs  # cnnzoo's reader takes it back too


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("name", FAST)
def test_zoo_model_goes_to_keras_with_the_checkpoints_outputs(keras, zoo_checkpoint, tmp_path, name, suffix):
    _round_trip(keras, zoo_checkpoint, tmp_path, name, suffix)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("name", list_models())
def test_every_zoo_model_goes_to_keras(keras, zoo_checkpoint, tmp_path, name, suffix):
    _round_trip(keras, zoo_checkpoint, tmp_path, name, suffix)


@pytest.mark.realdata
def test_real_test_images_get_the_checkpoints_answer_from_keras(keras, zoo_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_DATA_DIR", str(real_data_dir()))
    ckpt = zoo_checkpoint("mnist_cnn")
    module = load_classifier(ckpt)
    datamodule = datamodule_for(module)
    datamodule.setup("test")
    pixels = datamodule.splits["test"][0][:48]
    for suffix in SUFFIXES:
        path = export_checkpoint(ckpt, suffix.lstrip("."), tmp_path / f"mnist_cnn{suffix}").path
        check_against_checkpoint(keras, path, module, pixels)


# Keras-made files: (case of test_keras_import, suffix Keras saves it as, suffix cnnzoo writes).
KERAS_MADE = [("rgb_54x54_25_classes", ".keras", ".h5"), ("gray_64x64_4_classes", ".h5", ".keras"),
              ("flat_linear_head", ".keras", ".keras")]


@pytest.mark.parametrize(("case", "saved", "written"), KERAS_MADE)
def test_keras_made_file_goes_through_cnnzoo_and_back(keras_model, keras, tmp_path, case, saved, written):
    ref = reference(keras_model(*CASES[case]), seed=7)
    ref.kmodel.save(tmp_path / f"keras{saved}")
    module = ClassifierModule(None, 0, [], keras_model=str(tmp_path / f"keras{saved}"))
    ckpt = save_checkpoint(module, tmp_path / "tuned.ckpt")
    path = export_checkpoint(ckpt, written.lstrip("."), tmp_path / f"cnnzoo{written}").path
    keras.backend.clear_session()
    again = keras.models.load_model(path)
    assert np.abs(again.predict(ref.x, verbose=0) - ref.y).max() <= TOL
    assert again.loss.get_config()["from_logits"] == (CASES[case][0][-1].activation == "linear")
    assert type(again.optimizer).__name__ == "RMSprop"  # no optimizer recorded: Keras' compile() default
    bare = save_keras(load_model(tmp_path / f"keras{saved}"), tmp_path / f"bare{written}")  # a network, no module
    assert np.abs(keras.models.load_model(bare).predict(ref.x, verbose=0) - ref.y).max() <= TOL


def test_files_state_their_input_and_classes(zoo_checkpoint, tmp_path):
    ckpt = zoo_checkpoint("bn_cnn")
    module = load_classifier(ckpt)
    keras_file = export_checkpoint(ckpt, "keras", tmp_path / "m.keras")
    h5_file = export_checkpoint(ckpt, "h5", tmp_path / "m.h5")
    assert keras_file.lines == [
        "input: float32 NHWC [batch, 64, 64, 1], give it x / 255 of the uint8 pixels x; resize images to 64x64 first "
        '(bilinear); 24 class names in metadata.json ("cnnzoo")']
    with zipfile.ZipFile(keras_file.path) as z:
        assert z.namelist() == ["metadata.json", "config.json", "model.weights.h5"]
        metadata, config = json.loads(z.read("metadata.json")), json.loads(z.read("config.json"))
    with h5py.File(h5_file.path) as f:
        attribute = json.loads(f.attrs["cnnzoo"])
        assert json.loads(f.attrs["training_config"])["optimizer_config"]["class_name"] == "Adam"
    assert set(metadata) == {"keras_version", "date_saved", "cnnzoo"} and metadata["cnnzoo"] == attribute
    assert attribute["class_names"] == module.class_names
    assert attribute["input"] == {"layout": "NHWC", "shape": [None, 64, 64, 1], "dtype": "float32",
                                  "scaling": "x / 255", "normalize": None, "resize_before": [64, 64],
                                  "applied": "by the caller, before the model"}
    assert config["config"]["layers"][0]["config"]["batch_shape"] == [None, 64, 64, 1]
    assert config["compile_config"]["metrics"] == ["accuracy"]


def test_what_keras_files_cannot_hold_is_one_line_and_writes_nothing(keras_model, tmp_path, capsys):
    ref = reference(keras_model(*CASES["sigmoid_head"]))
    ref.kmodel.save(tmp_path / "sigmoid.keras")
    net = load_model(tmp_path / "sigmoid.keras")
    for target, message in [
        (tmp_path / "out" / "m.keras", "error: sequential: its last activation is sigmoid; a Keras file with a "
                                       "training config (categorical cross-entropy) needs a softmax or linear head"),
        (tmp_path / "out" / "m.onnx", f"error: {tmp_path / 'out' / 'm.onnx'}: a Keras file is named .keras (Keras 3 "
                                      "zip) or .h5 (legacy HDF5)"),
    ]:
        with pytest.raises(SystemExit) as exited, user_errors():
            save_keras(net, target)
        assert exited.value.code == 2
        assert capsys.readouterr().err == message + "\n"
    assert not (tmp_path / "out").exists()


# A non-default setting of every option, each optimizer in one format: (cnnzoo options, suffix, Keras config).
OPTIMIZER_CASES = {
    "adam": ({"name": "adam", "lr": 3e-4, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6}, ".h5",
             {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6}),
    "rmsprop": ({"name": "rmsprop", "lr": 2e-3, "rho": 0.8, "momentum": 0.5, "epsilon": 1e-5}, ".keras",
                {"rho": 0.8, "momentum": 0.5, "epsilon": 1e-5}),
    "sgd": ({"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True}, ".h5", {"momentum": 0.9, "nesterov": True}),
}


@pytest.mark.parametrize("name", OPTIMIZER_CASES)
def test_optimizer_settings_and_label_smoothing_reach_keras(keras, tmp_path, name):
    options, suffix, expected = OPTIMIZER_CASES[name]
    module = ClassifierModule("mnist_mlp", 10, [1, 28, 28], optimizer=options, label_smoothing=0.1,
                              scheduler={"name": "cosine", "warmup": 0.1})
    keras.backend.clear_session()
    kmodel = keras.models.load_model(save_keras(module, tmp_path / f"m{suffix}"))
    config = kmodel.optimizer.get_config()
    assert type(kmodel.optimizer).__name__ == KERAS_OPTIMIZERS[name]
    assert config["learning_rate"] == pytest.approx(options["lr"], rel=1e-6)
    assert {key: config[key] for key in expected} == pytest.approx(expected)
    assert kmodel.loss.get_config()["label_smoothing"] == 0.1


def test_a_schedule_is_not_carried_and_the_command_says_so(tmp_path):
    module = ClassifierModule("mnist_mlp", 10, [1, 28, 28], data_config={"batch_size": 32},
                              scheduler={"name": "onecycle", "max_lr": 0.003})
    exported = export_checkpoint(save_checkpoint(module, tmp_path / "m.ckpt"), "h5")
    assert exported.lines[1] == ("note: the learning-rate schedule 'onecycle' is not carried; Keras' optimizer gets "
                                 "the constant optimizer.lr")
