"""Every bad input in ``docs/errors.md`` gives exactly the documented one-line message.

The table in ``docs/errors.md`` is checked against the real messages here, row by row, so the
documentation cannot drift from the code.  After changing a message on purpose, regenerate it:
``CNNZOO_WRITE_ERRORS_DOC=1 python -m pytest tests/test_error_catalogue.py``.
"""

from __future__ import annotations

import gzip
import os
import re

os.environ.setdefault("KERAS_BACKEND", "torch")  # for the Keras-file case
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException
from PIL import Image

from cnnzoo.training.checkpoints import check_fits, load_classifier
from cnnzoo.data import MNISTDataModule, SignMNISTDataModule
from cnnzoo.data.augment import create_augmentation
from cnnzoo.errors import CnnzooError
from cnnzoo.data.images import load_image
from cnnzoo.training.module import ClassifierModule
from cnnzoo.interop.deploy import export_checkpoint
from cnnzoo.interop.keras_writer import save_keras
from cnnzoo.models import Dense, Flatten, build_sequential, create
from cnnzoo.models.layers import ACTIVATIONS
from cnnzoo.training.optim import create_optimizer, create_scheduler
from cnnzoo.train import train
from tests.conftest import REPO, compose_run, idx_bytes, save_checkpoint, sign_csv_text, write_idx_dataset

DOC = REPO / "docs" / "errors.md"
HEADER = ["| case | what was given | what the user sees |", "|---|---|---|"]
Trigger = Callable[[Path], object]
CASES: dict[str, tuple[str, Trigger]] = {}


def case(name: str, given: str):
    def register(trigger: Trigger) -> Trigger:
        CASES[name] = (given, trigger)
        return trigger
    return register


# ----------------------------------------------------------------------------- data files

def _mnist(tmp: Path, **changes: bytes) -> MNISTDataModule:
    """MNIST files in ``tmp/mnist`` with some replaced (``name=bytes``, or ``b""`` to delete)."""
    write_idx_dataset(tmp / "mnist", n_train=20, n_test=10)
    for name, data in changes.items():
        path = tmp / "mnist" / f"{name.replace('_', '-')}.gz"
        path.unlink() if data == b"" else path.write_bytes(data)
    return MNISTDataModule(data_dir=tmp, download=False)


def _sign(tmp: Path, train_text: str | bytes) -> SignMNISTDataModule:
    folder = tmp / "sign_mnist"
    folder.mkdir(parents=True, exist_ok=True)
    good = sign_csv_text([0, 1], np.zeros((2, 28, 28), dtype=np.uint8))
    (folder / "sign_mnist_test.csv").write_text(good)
    (folder / "sign_mnist_train.csv").write_bytes(train_text if isinstance(train_text, bytes) else train_text.encode())
    return SignMNISTDataModule(data_dir=tmp)


def _row(label: object = 0, pixels: list[str] | None = None) -> str:
    return ",".join([str(label), *(pixels or ["0"] * 784)])


CSV_HEADER = "label," + ",".join(f"pixel{i}" for i in range(1, 785))


@case("data dir missing", "`data.data_dir=<dir>/nowhere`")
def _(tmp):
    MNISTDataModule(data_dir=tmp / "nowhere", download=False).setup()


@case("IDX file missing", "no `t10k-labels-idx1-ubyte.gz`")
def _(tmp):
    _mnist(tmp, t10k_labels_idx1_ubyte=b"").setup()


@case("truncated gzip", "`train-images-idx3-ubyte.gz` cut in half")
def _(tmp):
    data = gzip.compress(idx_bytes(np.zeros((20, 28, 28), np.uint8)))
    _mnist(tmp, train_images_idx3_ubyte=data[: len(data) // 2]).setup()


@case("wrong IDX magic", "a labels file where the images file should be")
def _(tmp):
    _mnist(tmp, train_images_idx3_ubyte=gzip.compress(idx_bytes(np.zeros(20, np.uint8)))).setup()


@case("image/label count mismatch", "19 labels for 20 images")
def _(tmp):
    _mnist(tmp, train_labels_idx1_ubyte=gzip.compress(idx_bytes(np.zeros(19, np.uint8)))).setup()


@case("CSV without header", "first line is a data row")
def _(tmp):
    _sign(tmp, f"{_row()}\n{_row()}\n").setup()


@case("CSV wrong column count", "rows of 700 pixels")
def _(tmp):
    _sign(tmp, f"{CSV_HEADER}\n{_row(0, ['0'] * 700)}\n").setup()


@case("CSV non-numeric pixel", "`pixel3` is `x`")
def _(tmp):
    _sign(tmp, f"{CSV_HEADER}\n{_row(0, ['0', '0', 'x'] + ['0'] * 781)}\n").setup()


@case("CSV pixel 300", "`pixel1` is 300")
def _(tmp):
    _sign(tmp, f"{CSV_HEADER}\n{_row(0, ['300'] + ['0'] * 783)}\n").setup()


@case("CSV pixel -1", "`pixel784` is -1")
def _(tmp):
    _sign(tmp, f"{CSV_HEADER}\n{_row(0, ['0'] * 783 + ['-1'])}\n").setup()


for _label in (9, 25, -1):
    case(f"CSV label {_label}", f"a row labelled {_label}")(
        lambda tmp, label=_label: _sign(tmp, f"{CSV_HEADER}\n{_row(label)}\n").setup()
    )


@case("CSV empty file", "a 0-byte `sign_mnist_train.csv`")
def _(tmp):
    _sign(tmp, b"").setup()


@case("CSV ragged line", "line 3 has 100 fields")
def _(tmp):
    _sign(tmp, f"{CSV_HEADER}\n{_row()}\n{_row(0, ['0'] * 99)}\n").setup()


# ----------------------------------------------------------------------------- names and config

def _compose(tmp: Path, *overrides: str):
    return compose_run("train", tmp, *overrides)


@case("unknown model", "`model=lenet` (Hydra's message)")
def _(tmp):
    _compose(tmp, "model=lenet")


@case("unknown dataset", "`data=cifar10` (Hydra's message)")
def _(tmp):
    _compose(tmp, "data=cifar10")


@case("unknown optimizer", "`optimizer.name=adagrad`")
def _(tmp):
    create_optimizer(torch.nn.Linear(1, 1).parameters(), "adagrad")


@case("unknown architecture", "`model.arch=lenet`")
def _(tmp):
    create("lenet")


@case("data/model class mismatch", "`model=asl_cnn +model.num_classes=10`")
def _(tmp):
    train(_compose(tmp, "model=asl_cnn", "+model.num_classes=10", f"data.data_dir={tmp}"))


@case("invalid Hydra override", "`trainer.max_epochs=[1` (Hydra's message)")
def _(tmp):
    _compose(tmp, "trainer.max_epochs=[1")


@case("bad augmentation", "`data.augment='{rotation: 200}'`")
def _(tmp):
    create_augmentation({"rotation": 200})


@case("unknown schedule", "`+model.scheduler='{name: step}'`")
def _(tmp):
    create_scheduler(create_optimizer(torch.nn.Linear(1, 1).parameters(), "adam"), 10, "step")


@case("bad label smoothing", "`+model.label_smoothing=1`")
def _(tmp):
    ClassifierModule("mnist_mlp", 10, [1, 28, 28], label_smoothing=1)


# ----------------------------------------------------------------------------- predict inputs

@case("predict: a directory", "`inputs=[<dir>]`")
def _(tmp):
    load_image(tmp, (1, 28, 28))


@case("predict: a text file", "`inputs=[notes.txt]`")
def _(tmp):
    (tmp / "notes.txt").write_text("hello")
    load_image(tmp / "notes.txt", (1, 28, 28))


@case("predict: a corrupt PNG", "a PNG cut in half")
def _(tmp):
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp / "cut.png")
    data = (tmp / "cut.png").read_bytes()
    (tmp / "cut.png").write_bytes(data[: len(data) // 2])
    load_image(tmp / "cut.png", (1, 28, 28))


@case("predict: a 200x200 colour image", "an RGB PNG (converted, not an error: the note in the table)")
def _(tmp):
    Image.fromarray(np.zeros((200, 200, 3), np.uint8)).save(tmp / "photo.png")
    return "note: " + "; ".join(load_image(tmp / "photo.png", (1, 28, 28))[1])


# ----------------------------------------------------------------------------- checkpoints, Keras files

@case("evaluate: missing checkpoint", "`ckpt_path=<dir>/missing.ckpt`")
def _(tmp):
    load_classifier(tmp / "missing.ckpt")


@case("evaluate: corrupt checkpoint", "a file of text named `.ckpt`")
def _(tmp):
    (tmp / "bad.ckpt").write_text("not a checkpoint")
    load_classifier(tmp / "bad.ckpt")


@case("evaluate: weights of another model", "an asl_cnn checkpoint whose weights are mnist_mlp's")
def _(tmp):
    path = save_checkpoint(ClassifierModule("asl_cnn", 24, [1, 28, 28]), tmp / "asl.ckpt")
    checkpoint = torch.load(path, weights_only=False)
    checkpoint["state_dict"] = ClassifierModule("mnist_mlp", 24, [1, 28, 28]).state_dict()
    torch.save(checkpoint, path)
    load_classifier(path)


@case("evaluate: data with other classes", "an MNIST checkpoint with `data=sign_mnist`")
def _(tmp):
    check_fits(ClassifierModule("mnist_mlp", 10, [1, 28, 28]), SignMNISTDataModule(data_dir=tmp))


@case("Keras file with an unsupported layer", "a `.keras` model with `LSTM`")
def _(tmp):
    keras = pytest.importorskip("keras")
    from cnnzoo.interop.keras_files import load_model

    keras.backend.clear_session()
    keras.Sequential([keras.Input((28, 28)), keras.layers.LSTM(4), keras.layers.Dense(10)]).save(tmp / "rnn.keras")
    load_model(tmp / "rnn.keras")


# ----------------------------------------------------------------------------- export

def _export_checkpoint(tmp: Path, **options) -> Path:
    module = ClassifierModule("mnist_mlp", 10, [1, 28, 28], **options)
    return save_checkpoint(module, tmp / "mlp.ckpt")


@case("export: unknown format", "`format=tflite`")
def _(tmp):
    export_checkpoint(tmp / "mlp.ckpt", "tflite")


@case("export: not a cnnzoo checkpoint", "a torch checkpoint without cnnzoo's hyper-parameters")
def _(tmp):
    torch.save({"state_dict": {}, "epoch": 3}, tmp / "other.ckpt")
    export_checkpoint(tmp / "other.ckpt", "keras")


@case("export: unwritable output", "`output=<dir>/notes.txt/m.keras` (a file where a folder should be)")
def _(tmp):
    (tmp / "notes.txt").write_text("hello")
    export_checkpoint(_export_checkpoint(tmp), "keras", tmp / "notes.txt" / "m.keras")


@case("export: suffix of another format", "`format=keras output=m.h5`")
def _(tmp):
    export_checkpoint(tmp / "mlp.ckpt", "keras", tmp / "m.h5")


@case("export: no recorded scaling", "`format=onnx` for a checkpoint saved without a data config")
def _(tmp):
    export_checkpoint(_export_checkpoint(tmp), "onnx")


@case("export: a head Keras' loss cannot train", "`save_keras(net, 'm.keras')` for a network ending in sigmoid")
def _(tmp):
    net = build_sequential([Flatten(), Dense(3, activation="sigmoid")], (1, 4, 4), "sigmoid_net", tuple(ACTIVATIONS))
    save_keras(net, tmp / "m.keras")


# ----------------------------------------------------------------------------- the check

def message(name: str, tmp: Path) -> str:
    """What the user sees for case ``name``: ``error: <message>`` (one line) or Hydra's message."""
    try:
        note = CASES[name][1](tmp)
    except CnnzooError as e:
        text = f"error: {e}"
    except (HydraException, OmegaConfBaseException) as e:
        text = " ".join(str(e).split())  # Hydra prints it over several lines; one here
    else:
        assert isinstance(note, str), f"{name}: no error raised"
        text = note
    assert "\n" not in text
    return text.replace(str(tmp), "<dir>").replace(str(REPO), "<repo>")


def _documented() -> dict[str, tuple[str, str]]:
    text = DOC.read_text()
    table = text[text.index(HEADER[0]):text.index("<!-- end of table -->")]
    rows = [line for line in table.splitlines() if line.startswith("| ") and line not in HEADER]
    cells = [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]
    return {name: (given, shown.strip("`").replace("\\|", "|")) for name, given, shown in cells}


def test_every_case_is_documented_and_every_row_is_tested():
    if os.environ.get("CNNZOO_WRITE_ERRORS_DOC") == "1":
        pytest.skip("rewriting docs/errors.md")
    assert list(_documented()) == list(CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_documented_message(name: str, tmp_path: Path):
    shown = message(name, tmp_path)
    if os.environ.get("CNNZOO_WRITE_ERRORS_DOC") == "1":
        _rewrite_row(name, shown)
        return
    assert shown == _documented()[name][1]


def _rewrite_row(name: str, shown: str) -> None:
    """Put ``name``'s row into the table of docs/errors.md (in catalogue order)."""
    text = DOC.read_text()
    documented = _documented()
    documented[name] = (CASES[name][0], shown)
    rows = [f"| {n} | {CASES[n][0]} | `{documented[n][1].replace('|', chr(92) + '|')}` |" for n in CASES if n in documented]
    start, end = text.index(HEADER[0]), text.index("<!-- end of table -->")
    DOC.write_text(text[:start] + "\n".join(HEADER + rows) + "\n" + text[end:])
