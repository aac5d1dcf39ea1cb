"""Every bad input in ``docs/errors.md`` gives exactly the documented one-line message.

Each row runs a real entry point: ``train``/``evaluate``/``predict``/``export`` in-process under
``cnnzoo.cli.user_errors`` (stderr captured, exit status checked), or the ``@hydra.main`` function
through ``cnnzoo.cli.run`` with ``sys.argv`` set, for mistakes Hydra catches while composing.  Some
rows are also checked through a real ``python -m cnnzoo.*`` subprocess (marked slow).  After
changing a message on purpose, regenerate the table:
``CNNZOO_WRITE_ERRORS_DOC=1 python -m pytest tests/test_error_catalogue.py``.
"""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
import zipfile

os.environ.setdefault("KERAS_BACKEND", "torch")  # for the Keras-file case
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from torch import nn

import cnnzoo
import cnnzoo.evaluate
import cnnzoo.export
import cnnzoo.predict
import cnnzoo.summary
import cnnzoo.train
from cnnzoo.cli import user_errors
from cnnzoo.training.module import ClassifierModule
from cnnzoo.interop.deploy import export_checkpoint
from cnnzoo.interop.keras_writer import save_keras
from cnnzoo.models import Dense, Flatten, build_sequential
from cnnzoo.models.layers import ACTIVATIONS
from tests.conftest import (REPO, compose_run, idx_bytes, run_cli, run_main, save_checkpoint, sign_csv_text,
                            write_idx_dataset)

DOC = REPO / "docs" / "errors.md"
HEADER = ["| case | what was given | what the user sees |", "|---|---|---|"]
Trigger = Callable[[Path], object]
CASES: dict[str, tuple[str, Trigger]] = {}
SUBPROCESS: dict[str, list[str]] = {}  # rows also checked as `python -m cnnzoo.<args>` (slow)
PLACEHOLDERS: dict[str, str] = {}  # text that differs from run to run (a PID) -> its placeholder


def case(name: str, given: str, cli: list[str] | None = None):
    def register(trigger: Trigger) -> Trigger:
        CASES[name] = (given, trigger)
        if cli:
            SUBPROCESS[name] = cli
        return trigger
    return register


# ----------------------------------------------------------------------------- the entry points

def _train(tmp: Path, *overrides: str) -> dict:
    """``python -m cnnzoo.train`` (in-process) on data in ``tmp``, small and without figures."""
    return cnnzoo.train.train(compose_run("train", tmp / "run", "model=mnist_mlp", f"data.data_dir={tmp}",
                                          "data.download=false", "~logger", "callbacks.input_inspection=null",
                                          *overrides))


def _checkpoint(tmp: Path, arch: str = "mnist_mlp", classes: int = 10) -> Path:
    """An untrained ``arch`` checkpoint whose data is the generated MNIST in ``tmp/mnist``."""
    write_idx_dataset(tmp / "mnist", n_train=20, n_test=10)
    data = compose_run("train", tmp / "compose", f"data.data_dir={tmp}").data
    module = ClassifierModule(arch, classes, [1, 28, 28], data_config=OmegaConf.to_container(data, resolve=True))
    return save_checkpoint(module, tmp / f"{arch}.ckpt")


def _evaluate(tmp: Path, *overrides: str) -> dict:
    return cnnzoo.evaluate.evaluate(compose_run("evaluate", tmp / "run", "~logger", *overrides))


def _predict(tmp: Path, *overrides: str) -> list:
    return cnnzoo.predict.predict(compose_run("predict", tmp / "run", *overrides))


# ----------------------------------------------------------------------------- data files

def _mnist(tmp: Path, **changes: bytes) -> None:
    """Train on MNIST files in ``tmp/mnist`` with some replaced (``name=bytes``, or ``b""`` to delete)."""
    write_idx_dataset(tmp / "mnist", n_train=20, n_test=10)
    for name, data in changes.items():
        path = tmp / "mnist" / f"{name.replace('_', '-')}.gz"
        path.unlink() if data == b"" else path.write_bytes(data)
    _train(tmp)


def _sign(tmp: Path, train_text: str | bytes) -> None:
    """Train on Sign-MNIST CSVs in ``tmp/sign_mnist`` whose training file is ``train_text``."""
    folder = tmp / "sign_mnist"
    folder.mkdir(parents=True, exist_ok=True)
    good = sign_csv_text([0, 1], np.zeros((2, 28, 28), dtype=np.uint8))
    (folder / "sign_mnist_test.csv").write_text(good)
    (folder / "sign_mnist_train.csv").write_bytes(train_text if isinstance(train_text, bytes) else train_text.encode())
    _train(tmp, "data=sign_mnist")


def _row(label: object = 0, pixels: list[str] | None = None) -> str:
    return ",".join([str(label), *(pixels or ["0"] * 784)])


CSV_HEADER = "label," + ",".join(f"pixel{i}" for i in range(1, 785))


@case("data dir missing", "`data.data_dir=<dir>/nowhere`")
def _(tmp):
    _train(tmp, f"data.data_dir={tmp}/nowhere")


@case("IDX file missing", "no `t10k-labels-idx1-ubyte.gz`")
def _(tmp):
    _mnist(tmp, t10k_labels_idx1_ubyte=b"")


@case("truncated gzip", "`train-images-idx3-ubyte.gz` cut in half")
def _(tmp):
    data = gzip.compress(idx_bytes(np.zeros((20, 28, 28), np.uint8)))
    _mnist(tmp, train_images_idx3_ubyte=data[: len(data) // 2])


@case("wrong IDX magic", "a labels file where the images file should be")
def _(tmp):
    _mnist(tmp, train_images_idx3_ubyte=gzip.compress(idx_bytes(np.zeros(20, np.uint8))))


@case("image/label count mismatch", "19 labels for 20 images")
def _(tmp):
    _mnist(tmp, train_labels_idx1_ubyte=gzip.compress(idx_bytes(np.zeros(19, np.uint8))))


@case("CSV without header", "first line is a data row")
def _(tmp):
    _sign(tmp, f"{_row()}\n{_row()}\n")


@case("CSV wrong column count", "rows of 700 pixels")
def _(tmp):
    _sign(tmp, f"{CSV_HEADER}\n{_row(0, ['0'] * 700)}\n")


@case("CSV non-numeric pixel", "`pixel3` is `x`")
def _(tmp):
    _sign(tmp, f"{CSV_HEADER}\n{_row(0, ['0', '0', 'x'] + ['0'] * 781)}\n")


@case("CSV pixel 300", "`pixel1` is 300")
def _(tmp):
    _sign(tmp, f"{CSV_HEADER}\n{_row(0, ['300'] + ['0'] * 783)}\n")


@case("CSV pixel -1", "`pixel784` is -1")
def _(tmp):
    _sign(tmp, f"{CSV_HEADER}\n{_row(0, ['0'] * 783 + ['-1'])}\n")


for _label in (9, 25, -1):
    case(f"CSV label {_label}", f"a row labelled {_label}")(
        lambda tmp, label=_label: _sign(tmp, f"{CSV_HEADER}\n{_row(label)}\n")
    )


@case("CSV empty file", "a 0-byte `sign_mnist_train.csv`")
def _(tmp):
    _sign(tmp, b"")


@case("CSV ragged line", "line 3 has 100 fields")
def _(tmp):
    _sign(tmp, f"{CSV_HEADER}\n{_row()}\n{_row(0, ['0'] * 99)}\n")


# ----------------------------------------------------------------------------- names and config

@case("unknown model", "`model=lenet` (Hydra's message)")
def _(tmp):
    run_main(cnnzoo.train, "model=lenet")


@case("unknown dataset", "`data=cifar10` (Hydra's message)")
def _(tmp):
    run_main(cnnzoo.train, "data=cifar10")


@case("unknown key", "`optimizer.lrr=1e-3`", cli=["train", "optimizer.lrr=1e-3"])
def _(tmp):
    run_main(cnnzoo.train, "optimizer.lrr=1e-3")


@case("unknown trainer key", "`trainer.max_epoch=1`")
def _(tmp):
    run_main(cnnzoo.train, "trainer.max_epoch=1")


@case("unknown key (evaluate)", "`evaluate ckpt=<file>`")
def _(tmp):
    run_main(cnnzoo.evaluate, "ckpt=x.ckpt")


@case("unknown key (summary)", "`summary model.arc=mnist_mlp`")
def _(tmp):
    run_main(cnnzoo.summary, "model.arc=mnist_mlp")


@case("unknown optimizer", "`optimizer.name=adagrad`")
def _(tmp):
    _train(tmp, "optimizer.name=adagrad")


def _shell(override: str) -> str:
    """``key={a: 1}`` as typed in a shell: ``key='{a: 1}'``."""
    key, value = override.split("=", 1)
    return f"{key}='{value}'" if " " in value else override


# Optimizer and schedule values: each checked when the model is built, before the trainer starts.
OPTIMIZER_CASES = {
    "learning rate not a number": ("optimizer.lr=abc",),
    "negative learning rate": ("optimizer.lr=-1",),
    "zero learning rate": ("optimizer.lr=0",),
    "infinite learning rate": ("optimizer.lr=inf",),
    "Adam beta_1 of 1": ("optimizer.beta_1=1",),
    "Adam beta_2 below 0": ("optimizer.beta_2=-0.1",),
    "zero epsilon": ("optimizer.epsilon=0",),
    "RMSprop rho of 1": ("optimizer=rmsprop", "optimizer.rho=1"),
    "negative momentum": ("optimizer=sgd", "optimizer.momentum=-0.5"),
    "Nesterov without momentum": ("optimizer=sgd", "optimizer.nesterov=true"),
    "option the optimizer lacks": ("+optimizer.momentum=0.9",),
    "misspelt optimizer option": ("+optimizer.lrr=0.01",),
    "onecycle max_lr of 0": ("+model.scheduler={name: onecycle, max_lr: 0}",),
    "onecycle pct_start of 1": ("+model.scheduler={name: onecycle, pct_start: 1}",),
    "cosine warmup of 1": ("+model.scheduler={name: cosine, warmup: 1}",),
    "option the schedule lacks": ("+model.scheduler={name: cosine, warmpu: 0.1}",),
    "unknown schedule": ("+model.scheduler={name: step}",),
    "zero epochs": ("trainer.max_epochs=0",),
    "epochs not a number": ("trainer.max_epochs=five",),
    "zero devices": ("trainer.devices=0",),
    "unknown precision": ("trainer.precision=fp8",),
    "bad label smoothing": ("+model.label_smoothing=1",),
    "negative figure interval": ("callbacks.prediction_report.every_n_epochs=-1",),
}
for _name, _overrides in OPTIMIZER_CASES.items():
    case(_name, " ".join(f"`{_shell(o)}`" for o in _overrides),
         cli=None)(
        lambda tmp, overrides=_overrides: _train(tmp, *overrides)
    )


@case("unknown architecture", "`model.arch=lenet`")
def _(tmp):
    _train(tmp, "model.arch=lenet")


@case("data/model class mismatch", "`model=asl_cnn +model.num_classes=10`")
def _(tmp):
    _train(tmp, "model=asl_cnn", "+model.num_classes=10")


@case("invalid Hydra override", "`trainer.max_epochs=[1` (Hydra's message)")
def _(tmp):
    run_main(cnnzoo.train, "trainer.max_epochs=[1")


@case("bad augmentation", f"`{_shell('data.augment={rotation: 200}')}`")
def _(tmp):
    write_idx_dataset(tmp / "mnist", n_train=20, n_test=10)
    _train(tmp, "data.augment={rotation: 200}")


@case("bad thread count", "`evaluate ckpt_path=<file> threads=0`")
def _(tmp):
    _evaluate(tmp, f"ckpt_path={_checkpoint(tmp)}", "threads=0")


# Run values: each checked when training starts, before the data is read.
RUN_CASES = {
    "seed not a number": ("seed=x",),
    "negative seed": ("seed=-1",),
    "seed too large": ("seed=99999999999",),
    "seed not whole": ("seed=1.5",),
    "negative thread count (train)": ("threads=-3",),
    "thread count not a number (train)": ("threads=abc",),
    "zero threads (train)": ("threads=0",),
    "zero logging interval": ("trainer.log_every_n_steps=0",),
    "zero gradient accumulation": ("+trainer.accumulate_grad_batches=0",),
    "negative batch limit": ("+trainer.limit_train_batches=-1",),
    "unknown accelerator": ("trainer.accelerator=banana",),
    "accelerator not here": ("trainer.accelerator=tpu",),
    "option the model lacks": ("+model.dropout=5",),
    "misspelt model option": ("+model.label_smoothin=0.1",),
    "switch not true/false": ("channels_last=abc",),
    "data switch not true/false": ("data.drop_last=abc",),
    "download not true/false": ("data.download=maybe",),
    "resize too large (train)": ("data.resize=100000",),
}
for _name, _overrides in RUN_CASES.items():
    case(_name, " ".join(f"`{o}`" for o in _overrides))(lambda tmp, overrides=_overrides: _train(tmp, *overrides))


@case("GPU asked for, none here", "`trainer.accelerator=gpu` on a machine without CUDA")
def _(tmp):
    from lightning.pytorch.accelerators import CUDAAccelerator

    with pytest.MonkeyPatch.context() as patch:  # this machine may have a GPU: the check asks Lightning
        patch.setattr(CUDAAccelerator, "is_available", staticmethod(lambda: False))
        _train(tmp, "trainer.accelerator=gpu")


@case("resize too large (summary)", "`summary model=mnist_mlp data.resize=100000`",
      cli=["summary", "model=mnist_mlp", "data.resize=100000"])
def _(tmp):
    run_main(cnnzoo.summary, "model=mnist_mlp", "data.resize=100000")


@case("config group set to null", "`logger=null`", cli=["train", "logger=null"])
def _(tmp):
    run_main(cnnzoo.train, "logger=null")


@case("run dir under a file", "`summary hydra.run.dir=<dir>/notes.txt/run`")
def _(tmp):  # summary logs nothing: train's Hydra logging would replace pytest's handlers (train: tests/test_run_dir.py)
    (tmp / "notes.txt").write_text("hello")
    run_main(cnnzoo.summary, f"hydra.run.dir={tmp}/notes.txt/run")


@case("predict: index not a number", "`index=abc`")
def _(tmp):
    _predict(tmp, f"ckpt_path={_checkpoint(tmp)}", "index=abc")


@case("predict: inputs not a path", "`inputs=3`")
def _(tmp):
    _predict(tmp, f"ckpt_path={_checkpoint(tmp)}", "inputs=3")


# ----------------------------------------------------------------------------- concurrent runs

@case("run dir in use", "a second run with the same `hydra.run.dir` while the first is running")
def _(tmp):
    (tmp / "run").mkdir()
    holder = subprocess.Popen(  # a run holding the lock the way cnnzoo.run_dir takes it
        [sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
         "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, str(os.getpid()).encode()); print(flush=True); time.sleep(60)",
         str(tmp / "run" / ".cnnzoo.lock")], stdout=subprocess.PIPE, text=True)
    try:
        holder.stdout.readline()
        PLACEHOLDERS[str(holder.pid)] = "<pid>"
        _train(tmp)
    finally:
        holder.kill()
        holder.wait()


@case("run dir of an earlier run", "`hydra.run.dir=<dir>` of a finished run, without `ckpt_path=last`")
def _(tmp):
    (tmp / "run").mkdir()
    (tmp / "run" / "metrics.json").write_text('{"status": "completed"}')
    cnnzoo.fit("mnist_mlp", run_dir=tmp / "run")  # the command line's refusal: tests/test_run_dir.py (a Hydra callback)


def _one_epoch_run(tmp: Path, *overrides: str) -> None:
    write_idx_dataset(tmp / "mnist", n_train=20, n_test=10)
    _train(tmp, "trainer.max_epochs=1", "+trainer.limit_train_batches=1", "+trainer.limit_test_batches=1",
           "threads=1", *overrides)


@case("ckpt_path=last with another config", "`ckpt_path=last optimizer.lr=0.1` in the dir of a run trained with lr 0.001")
def _(tmp):
    _one_epoch_run(tmp)
    _one_epoch_run(tmp, "ckpt_path=last", "optimizer.lr=0.1")


@case("resume with another thread count", "`trainer.max_epochs=2 ckpt_path=last threads=2` for a run trained with `threads=1`")
def _(tmp):
    _one_epoch_run(tmp)
    _one_epoch_run(tmp, "trainer.max_epochs=2", "ckpt_path=last", "threads=2")


@case("evaluate into a run's dir", "`evaluate ckpt_path=<file> hydra.run.dir=<dir>` of a training run")
def _(tmp):
    (tmp / "run").mkdir()
    (tmp / "run" / "metrics.json").write_text('{"status": "completed"}')
    cnnzoo.evaluate(_checkpoint(tmp), run_dir=tmp / "run")


# ----------------------------------------------------------------------------- predict inputs

@case("predict: no checkpoint", "`predict inputs=[x.png]` (no `ckpt_path`)", cli=["predict", "inputs=[x.png]"])
def _(tmp):
    _predict(tmp, "inputs=[x.png]")


@case("export: no checkpoint", "`export` (no `ckpt_path`)")
def _(tmp):
    cnnzoo.export.main.__wrapped__(compose_run("export", tmp))


@case("predict: a directory", "`inputs=[<dir>]`")
def _(tmp):
    _predict(tmp, f"ckpt_path={_checkpoint(tmp)}", f"inputs=[{tmp}]")


@case("predict: a text file", "`inputs=[notes.txt]`")
def _(tmp):
    (tmp / "notes.txt").write_text("hello")
    _predict(tmp, f"ckpt_path={_checkpoint(tmp)}", f"inputs=[{tmp}/notes.txt]")


@case("predict: a corrupt PNG", "a PNG cut in half")
def _(tmp):
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp / "cut.png")
    data = (tmp / "cut.png").read_bytes()
    (tmp / "cut.png").write_bytes(data[: len(data) // 2])
    _predict(tmp, f"ckpt_path={_checkpoint(tmp)}", f"inputs=[{tmp}/cut.png]")


@case("predict: a 200x200 colour image", "an RGB PNG (converted, not an error: the notes column of the table)")
def _(tmp):
    Image.fromarray(np.zeros((200, 200, 3), np.uint8)).save(tmp / "photo.png")
    _predict(tmp, f"ckpt_path={_checkpoint(tmp)}", f"inputs=[{tmp}/photo.png]")


# ----------------------------------------------------------------------------- checkpoints, Keras files

@case("evaluate: missing checkpoint", "`ckpt_path=<dir>/missing.ckpt`")
def _(tmp):
    _evaluate(tmp, f"ckpt_path={tmp}/missing.ckpt")


@case("evaluate: corrupt checkpoint", "a file of text named `.ckpt`")
def _(tmp):
    (tmp / "bad.ckpt").write_text("not a checkpoint")
    _evaluate(tmp, f"ckpt_path={tmp}/bad.ckpt")


@case("evaluate: weights of another model", "an asl_cnn checkpoint whose weights are mnist_mlp's")
def _(tmp):
    path = save_checkpoint(ClassifierModule("asl_cnn", 24, [1, 28, 28]), tmp / "asl.ckpt")
    checkpoint = torch.load(path, weights_only=False)
    checkpoint["state_dict"] = ClassifierModule("mnist_mlp", 24, [1, 28, 28]).state_dict()
    torch.save(checkpoint, path)
    _evaluate(tmp, f"ckpt_path={path}")


@case("evaluate: data with other classes", "an MNIST checkpoint with `data=sign_mnist`")
def _(tmp):
    _evaluate(tmp, f"ckpt_path={_checkpoint(tmp)}", "data=sign_mnist", f"data.data_dir={tmp}")


@case("predict: a pickled nn.Module", "`torch.save(model)` of a script's own `class Net(nn.Module)`")
def _(tmp):
    main = sys.modules["__main__"]  # where the class of a model saved by `python my_script.py` lives
    main.Net = type("Net", (nn.Module,), {"__module__": "__main__"})
    try:
        torch.save(main.Net(), tmp / "net.pt")
    finally:
        del main.Net
    _predict(tmp, f"ckpt_path={tmp}/net.pt", "inputs=[x.png]")


@case("train: resume from weights only", "`ckpt_path=` a file written by `Model.save('weights.ckpt')`")
def _(tmp):
    cnnzoo.load(_checkpoint(tmp)).save(tmp / "weights.ckpt")
    _train(tmp, f"ckpt_path={tmp}/weights.ckpt")


@case("evaluate: an empty Keras file", "`keras_model=<dir>/empty.keras data=mnist` (a 0-byte file)")
def _(tmp):
    (tmp / "empty.keras").write_bytes(b"")
    _evaluate(tmp, f"keras_model={tmp}/empty.keras", "data=mnist", f"data.data_dir={tmp}")


@case("evaluate: a zip named .keras", "`keras_model=<dir>/notes.keras data=mnist` (a zip of a text file)")
def _(tmp):
    with zipfile.ZipFile(tmp / "notes.keras", "w") as z:
        z.writestr("notes.txt", "hello")
    _evaluate(tmp, f"keras_model={tmp}/notes.keras", "data=mnist", f"data.data_dir={tmp}")


@case("evaluate: a checkpoint with a bad input shape", "hyper-parameters with `input_shape: [1, 2]`")
def _(tmp):
    checkpoint = torch.load(_checkpoint(tmp), weights_only=False)
    checkpoint["hyper_parameters"]["input_shape"] = [1, 2]
    torch.save(checkpoint, tmp / "shape.ckpt")
    _evaluate(tmp, f"ckpt_path={tmp}/shape.ckpt")


@case("predict: weights not finite", "a checkpoint whose weights are NaN (refused: `predictions.json` would not be JSON)")
def _(tmp):
    checkpoint = torch.load(_checkpoint(tmp), weights_only=False)
    for weights in checkpoint["state_dict"].values():
        if weights.is_floating_point():
            weights.fill_(float("nan"))
    torch.save(checkpoint, tmp / "nan.ckpt")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp / "x.png")
    _predict(tmp, f"ckpt_path={tmp}/nan.ckpt", f"inputs=[{tmp}/x.png]")


@case("Keras file with an unsupported layer", "a `.keras` model with `LSTM`")
def _(tmp):
    keras = pytest.importorskip("keras")

    keras.backend.clear_session()
    keras.Sequential([keras.Input((28, 28)), keras.layers.LSTM(4), keras.layers.Dense(10)]).save(tmp / "rnn.keras")
    _evaluate(tmp, f"keras_model={tmp}/rnn.keras", "data=mnist", f"data.data_dir={tmp}")


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


@case("export: output exists", "`output=<dir>/m.keras`, a file already there (replaced only with `overwrite=true`)")
def _(tmp):
    (tmp / "m.keras").write_text("an earlier export")
    export_checkpoint(_export_checkpoint(tmp), "keras", tmp / "m.keras")


@case("export: no recorded scaling", "`format=onnx` for a checkpoint saved without a data config")
def _(tmp):
    export_checkpoint(_export_checkpoint(tmp), "onnx")


@case("export: a head Keras' loss cannot train", "`save_keras(net, 'm.keras')` for a network ending in sigmoid")
def _(tmp):
    net = build_sequential([Flatten(), Dense(3, activation="sigmoid")], (1, 4, 4), "sigmoid_net", tuple(ACTIVATIONS))
    save_keras(net, tmp / "m.keras")


# ----------------------------------------------------------------------------- the check

def _shown(stdout: str, stderr: str, status: object, tmp: Path) -> str:
    """What the user sees: the ``error:`` line (exit status 2), Hydra's message (status 1, its lines
    joined into one), or, for a run that succeeds, the notes column of predict's table."""
    if status == 2:
        lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
        assert len(lines) == 1, stderr[-2000:]
        text = lines[0]
    elif status == 1:
        text = " ".join(stderr.split())
    else:
        assert status in (0, None), f"exit status {status}: {stderr[-2000:]}"
        rows = [line for line in stdout.splitlines() if "photo.png" in line and "(" in line]
        assert len(rows) == 1, f"no error and no table row: {stdout[-2000:]}"
        text = re.split(r"\s{2,}", rows[0].strip())[-1]
    for raw, placeholder in PLACEHOLDERS.items():
        text = text.replace(raw, placeholder)
    return text.replace(str(tmp), "<dir>").replace(str(REPO), "<repo>")


def message(name: str, tmp: Path, capsys: pytest.CaptureFixture) -> str:
    """Run case ``name``'s entry point as the command line does; what the user sees, in one line."""
    capsys.readouterr()
    status: object = None
    try:
        with user_errors():
            CASES[name][1](tmp)
    except SystemExit as e:
        status = e.code
    out = capsys.readouterr()
    return _shown(out.out, out.err, status, tmp)


def _documented() -> dict[str, tuple[str, str]]:
    text = DOC.read_text()
    table = text[text.index(HEADER[0]):text.index("<!-- end of table -->")]
    rows = [line for line in table.splitlines() if line.startswith("| ") and line not in HEADER]
    cells = [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]
    return {name: (given, shown.strip("`").replace("\\|", "|")) for name, given, shown in cells}


@pytest.fixture(autouse=True)
def _hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNZOO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # an entry point that gets as far as Hydra's run dir writes it here


def test_every_case_is_documented_and_every_row_is_tested():
    if os.environ.get("CNNZOO_WRITE_ERRORS_DOC") == "1":
        pytest.skip("rewriting docs/errors.md")
    assert list(_documented()) == list(CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_documented_message(name: str, tmp_path: Path, capsys: pytest.CaptureFixture):
    shown = message(name, tmp_path, capsys)
    if os.environ.get("CNNZOO_WRITE_ERRORS_DOC") == "1":
        _rewrite_row(name, shown)
        return
    assert shown == _documented()[name][1]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SUBPROCESS))
def test_documented_message_from_the_command_line(name: str, tmp_path: Path):
    done = run_cli(*SUBPROCESS[name], f"hydra.run.dir={tmp_path}/run",
                   env={"CNNZOO_DATA_DIR": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert "Traceback" not in done.stderr
    assert _shown(done.stdout, done.stderr, done.returncode, tmp_path) == _documented()[name][1]


def _rewrite_row(name: str, shown: str) -> None:
    """Put ``name``'s row into the table of docs/errors.md (in catalogue order)."""
    text = DOC.read_text()
    documented = _documented()
    documented[name] = (CASES[name][0], shown)
    rows = [f"| {n} | {CASES[n][0]} | `{documented[n][1].replace('|', chr(92) + '|')}` |" for n in CASES if n in documented]
    start, end = text.index(HEADER[0]), text.index("<!-- end of table -->")
    DOC.write_text(text[:start] + "\n".join(HEADER + rows) + "\n" + text[end:])
