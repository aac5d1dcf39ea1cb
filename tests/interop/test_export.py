"""``cnnzoo.export``: a checkpoint becomes one ONNX / TorchScript / torch.export file that takes raw
uint8 pixels and gives the checkpoint's probabilities for any batch size, and says what it takes.

Deployment runs these files without cnnzoo, so each is loaded by its own runtime (onnxruntime,
``torch.jit.load``, ``torch.export.load``), fed the pixels of PNG files as cnnzoo reads them, and
compared with what ``python -m cnnzoo.predict`` computes (``module.probabilities(datamodule.
preprocess(pixels))``) at batch sizes 1 and 3 (the export traces a batch of 2, so neither is baked in).
The checkpoint normalises, so the scaling inside the graph is tested with its mean and std.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnzoo.data.images import load_image
from cnnzoo.errors import ConfigError, ModelError
from cnnzoo.interop.deploy import export_checkpoint
from cnnzoo.training.checkpoints import datamodule_for, load_classifier
from cnnzoo.training.module import ClassifierModule
from tests.conftest import run_cli, save_checkpoint
from tests.interop.conftest import trained_looking

INPUT = (1, 28, 28)
DATA = {"_target_": "cnnzoo.data.MNISTDataModule", "data_dir": None, "batch_size": 32,
        "normalize": {"mean": 0.1307, "std": 0.3081}}
DEPLOY = {"onnx": ".onnx", "torchscript": ".pt", "export": ".pt2"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An asl_cnn checkpoint for MNIST (10 classes, normalised inputs), BatchNorm away from 0/1."""
    torch.manual_seed(0)
    module = ClassifierModule("asl_cnn", num_classes=10, input_shape=list(INPUT), data_config=DATA,
                              class_names=[f"digit {i}" for i in range(10)])
    trained_looking(module)
    return save_checkpoint(module, tmp_path_factory.mktemp("run") / "last.ckpt")


def _onnx(path: Path):
    ort = pytest.importorskip("onnxruntime")
    import onnx

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type, i.shape) for i in session.get_inputs()] == [("images", "tensor(uint8)", ["batch", *INPUT])]
    facts = json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["cnnzoo"])
    return (lambda x: torch.from_numpy(session.run(["probabilities"], {"images": x.numpy()})[0])), facts


def _torchscript(path: Path):
    extra = {"cnnzoo.json": ""}
    return torch.jit.load(path, _extra_files=extra), json.loads(extra["cnnzoo.json"])


def _export(path: Path):
    extra = {"cnnzoo.json": ""}
    return torch.export.load(path, extra_files=extra).module(), json.loads(extra["cnnzoo.json"])


# How a deployment loads each format: path -> (callable on a uint8 NCHW batch, the file's facts).
RUNTIMES = {"onnx": _onnx, "torchscript": _torchscript, "export": _export}


def _pngs(folder: Path, n: int) -> torch.Tensor:
    """``n`` random grayscale PNGs written with PIL, read back as cnnzoo.predict reads them."""
    rng = np.random.default_rng(1)
    images = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(folder / f"{i}.png")
        images.append(load_image(folder / f"{i}.png", INPUT)[0])
    return torch.stack(images)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
@pytest.mark.parametrize("fmt", DEPLOY)
def test_exported_file_takes_raw_pixels_and_gives_the_checkpoints_probabilities(checkpoint, tmp_path, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxscript")
    exported = export_checkpoint(checkpoint, fmt, tmp_path / "deploy" / f"model{DEPLOY[fmt]}")
    assert list(exported.path.parent.iterdir()) == [exported.path]  # the temporary file was renamed
    assert exported.lines[0].startswith('input "images": uint8 NCHW [batch, 1, 28, 28], raw pixels 0..255 '
                                        "(the file computes (x / 255 - 0.1307) / 0.3081 itself); 10 class names in ")
    run, facts = RUNTIMES[fmt](exported.path)
    module = load_classifier(checkpoint)
    assert facts["class_names"] == module.class_names
    assert facts["input"]["dtype"] == "uint8" and facts["input"]["shape"] == ["batch", *INPUT]
    assert facts["input"]["normalize"] == DATA["normalize"] and facts["cnnzoo_version"]
    pixels = _pngs(tmp_path, 3)
    datamodule = datamodule_for(module)
    for batch in (pixels[:1], pixels):
        with torch.no_grad():
            expected, got = module.probabilities(datamodule.preprocess(batch)), run(batch)
        assert got.shape == (len(batch), 10)
        assert (got - expected).abs().max().item() <= 1e-5
        assert torch.equal(got.argmax(1), expected.argmax(1))


def test_bad_requests_are_one_line_errors(checkpoint, tmp_path):
    missing, bad, alien = tmp_path / "missing.ckpt", tmp_path / "bad.ckpt", tmp_path / "alien.ckpt"
    bad.write_bytes(b"not a checkpoint")
    torch.save({"state_dict": {}, "epoch": 3}, alien)
    for args, error, message in [
        ((missing,), ModelError, f"ckpt_path={missing}: no such file; expected a .ckpt file"),
        ((bad, "torchscript"), ModelError, f"ckpt_path={bad}: not a readable PyTorch checkpoint ("),
        ((alien, "keras"), ModelError, f"ckpt_path={alien}: not a cnnzoo checkpoint (no arch, num_classes, input_shape)"),
        ((checkpoint, "tflite"), ConfigError, "format='tflite' is not supported; expected one of onnx, torchscript, "
                                              "export, keras, h5"),
        ((None,), ConfigError, "ckpt_path is required: python -m cnnzoo.export ckpt_path=<file.ckpt>"),
        ((checkpoint, "keras", tmp_path / "m.h5"), ConfigError, f"output={tmp_path / 'm.h5'}: format=keras writes a "
                                                                ".keras file"),
        ((checkpoint, "torchscript", tmp_path), ConfigError, f"output={tmp_path}: is a directory; expected a file path"),
        ((checkpoint, "onnx", tmp_path / "bad.ckpt" / "m.onnx"), ConfigError,
         f"output={tmp_path / 'bad.ckpt' / 'm.onnx'}: cannot write there ("),
    ]:
        with pytest.raises(error) as raised:
            export_checkpoint(*args)
        assert str(raised.value).startswith(message) and "\n" not in str(raised.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alien.ckpt", "bad.ckpt"]  # nothing half-written


@pytest.mark.slow
def test_cli_writes_next_to_the_checkpoint_and_says_what_it_takes(checkpoint, tmp_path):
    ckpt = tmp_path / "run" / "last.ckpt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(checkpoint.read_bytes())
    done = run_cli("export", f"ckpt_path={ckpt}", "format=keras")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [
        f"Wrote {ckpt.with_suffix('.keras')}",
        'input: float32 NHWC [batch, 28, 28, 1], give it (x / 255 - 0.1307) / 0.3081 of the uint8 pixels x; '
        '10 class names in metadata.json ("cnnzoo")',
    ]
    assert sorted(tmp_path.rglob("*")) == [ckpt.parent, ckpt, ckpt.with_suffix(".keras")]
    failed = run_cli("export", f"ckpt_path={ckpt}", "format=tflite")
    assert (failed.returncode, failed.stdout) == (2, "")
    assert failed.stderr.startswith("error: format='tflite' is not supported") and failed.stderr.count("\n") == 1
