"""``cnnzoo.export``: a checkpoint becomes one ONNX / TorchScript / torch.export file that gives the
checkpoint's probabilities for any batch size.

Deployment runs these files without cnnzoo, so each is loaded by its own runtime (onnxruntime,
``torch.jit.load``, ``torch.export.load``) and compared with ``ClassifierModule.predict_step`` at
batch sizes 1 and 5 (the export itself traces a batch of 2, so neither size is baked in).
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnzoo.training.checkpoints import load_classifier
from cnnzoo.errors import ConfigError, ModelError
from cnnzoo.interop.deploy import FORMATS, export_checkpoint
from cnnzoo.training.module import ClassifierModule
from tests.conftest import save_checkpoint

INPUT = (1, 12, 12)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny asl_cnn checkpoint (12x12 inputs, 5 classes), BatchNorm statistics away from 0/1."""
    torch.manual_seed(0)
    module = ClassifierModule("asl_cnn", num_classes=5, input_shape=list(INPUT))
    for spec, layer in zip(module.net.specs, module.net):
        if spec.kind == "BatchNormalization":
            layer.running_mean.normal_(0, 0.3)
            layer.running_var.uniform_(0.5, 1.5)
    return save_checkpoint(module, tmp_path_factory.mktemp("run") / "last.ckpt")


def _onnx_runtime(path: Path):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in session.get_inputs()] == [("images", ["batch", *INPUT])]
    return lambda x: torch.from_numpy(session.run(["probabilities"], {"images": x.numpy()})[0])


# How a deployment loads each format: path -> callable on an NCHW batch.
RUNTIMES = {
    "onnx": _onnx_runtime,
    "torchscript": torch.jit.load,
    "export": lambda path: torch.export.load(path).module(),
}


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
@pytest.mark.parametrize("fmt", FORMATS)
def test_exported_file_gives_the_checkpoints_probabilities(checkpoint, tmp_path, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxscript")
    path = export_checkpoint(checkpoint, fmt, tmp_path / "deploy" / f"model{FORMATS[fmt]}")
    assert list(path.parent.iterdir()) == [path]  # the temporary file was renamed, not left behind
    run = RUNTIMES[fmt](path)
    module = load_classifier(checkpoint)
    generator = torch.Generator().manual_seed(1)
    for batch in (1, 5):
        x = torch.rand(batch, *INPUT, generator=generator)
        with torch.no_grad():
            expected, got = module.predict_step(x, 0), run(x)
        assert got.shape == (batch, 5)
        assert (got - expected).abs().max().item() <= 1e-5


def test_bad_requests_are_one_line_errors(checkpoint, tmp_path):
    missing, bad = tmp_path / "missing.ckpt", tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    for args, error, message in [
        ((missing,), ModelError, f"ckpt_path={missing}: no such file; expected a .ckpt file"),
        ((bad, "torchscript"), ModelError, f"ckpt_path={bad}: not a readable PyTorch checkpoint ("),
        ((checkpoint, "tflite"), ConfigError, "format='tflite' is not supported; expected one of onnx, torchscript"),
        ((None,), ConfigError, "ckpt_path is required: python -m cnnzoo.export ckpt_path=<file.ckpt>"),
    ]:
        with pytest.raises(error) as raised:
            export_checkpoint(*args)
        assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


@pytest.mark.slow
def test_cli_writes_next_to_the_checkpoint_and_nothing_else(checkpoint, tmp_path):
    ckpt = tmp_path / "run" / "last.ckpt"
    ckpt.parent.mkdir()
    shutil.copy(checkpoint, ckpt)
    done = subprocess.run([sys.executable, "-m", "cnnzoo.export", f"ckpt_path={ckpt}", "format=export"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"Wrote {ckpt.with_suffix('.pt2')}"
    assert sorted(tmp_path.rglob("*")) == [ckpt.parent, ckpt, ckpt.with_suffix(".pt2")]
