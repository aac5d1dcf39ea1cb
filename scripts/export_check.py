"""How close every export comes to its checkpoint: a models x formats table of the largest probability difference.

For each model of ``cnnzoo.models.list_models()``, built as its recipe trains it (``Recipe.module()``)
with trained-looking weights (biases off 0, BatchNorm statistics away from 0/1), the checkpoint is
exported as keras, h5, onnx, torchscript and export (``cnnzoo.interop.deploy.export_checkpoint``)
and each file is run by its own runtime: Keras 3 (torch backend) on the checkpoint's preprocessing
of the pixels for the Keras files, onnxruntime / torch.jit / torch.export on the raw uint8 pixels.
The reference is what ``python -m cnnzoo.predict`` computes:
``module.probabilities(datamodule.preprocess(pixels))``.  A cell is ``max |p_file - p_ckpt|`` over
the images, with ``!`` when an argmax differs.

    python scripts/export_check.py [--images 64] [--real] [--tf-python /tmp/tfvenv/bin/python]

``--real`` takes the recipe's test images where its data is found (``CNNZOO_DATA_DIR``) and needs no
resize (random pixels otherwise, marked ``*``); ``--tf-python`` also loads every ``.h5`` with tf.keras
2 (``tf_keras.models.load_model``) in that interpreter, as a column ``h5 (tf.keras 2)``.
"""

from __future__ import annotations

import argparse
import json
import warnings
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cnnzoo.interop.deploy import export_checkpoint  # noqa: E402
from cnnzoo.models import list_models  # noqa: E402
from cnnzoo.recipes import recipe  # noqa: E402
from cnnzoo.training.checkpoints import datamodule_for, load_classifier  # noqa: E402
from tests.conftest import save_checkpoint  # noqa: E402  (a Lightning checkpoint as cnnzoo.train writes it)

COLUMNS = ("keras", "h5", "onnx", "torchscript", "export")
TF_KERAS = """
import json, sys, numpy as np, tf_keras
for h5, x, out in json.loads(sys.argv[1]):
    np.save(out, tf_keras.models.load_model(h5).predict(np.load(x), verbose=0))
"""


def trained_looking(module, seed: int):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in [*module.net.named_parameters(), *module.net.named_buffers()]:
            noise = torch.rand(tensor.shape, generator=generator) if tensor.is_floating_point() else None
            if name.endswith("running_var") or (name.endswith("weight") and tensor.ndim == 1):
                tensor.copy_(noise + 0.5)
            elif name.endswith(("running_mean", "bias")):
                tensor.add_(0.6 * noise - 0.3)
    return module.eval()


def _pixels(module, datamodule, n: int, real: bool) -> tuple[torch.Tensor, bool]:
    if real and tuple(datamodule.size) == tuple(datamodule.image_size):
        try:
            datamodule.setup("test")
            return datamodule.splits["test"][0][:n], True
        except Exception as e:  # data not found: random pixels, said in the table
            print(f"{module.hparams.arch}: {type(e).__name__}: {e}; random pixels", file=sys.stderr)
    rng = np.random.default_rng(0)
    return torch.from_numpy(rng.integers(0, 256, (n, *module.net.input_shape), dtype=np.uint8)), False


def _runtime(fmt: str, path: Path):
    """The file as its deployment runs it: a callable on (uint8 pixels, preprocessed floats)."""
    if fmt in ("keras", "h5"):
        import keras

        kmodel = keras.models.load_model(path, compile=False)
        return lambda pixels, x: torch.from_numpy(kmodel.predict(x.permute(0, 2, 3, 1).numpy(), verbose=0))
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda pixels, x: torch.from_numpy(session.run(["probabilities"], {"images": pixels.numpy()})[0])
    program = torch.jit.load(path) if fmt == "torchscript" else torch.export.load(path).module()
    return lambda pixels, x: program(pixels)


def _cell(got: torch.Tensor, expected: torch.Tensor) -> str:
    flag = "" if torch.equal(got.argmax(1), expected.argmax(1)) else " !"
    return f"{(got - expected).abs().max().item():.1e}{flag}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--real", action="store_true")
    parser.add_argument("--tf-python", help="a Python with tf_keras, to load the .h5 files with tf.keras 2")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated")
    columns = [*COLUMNS, *(["h5 (tf.keras 2)"] if args.tf_python else [])]
    rows, tf_jobs = {}, []
    work = Path(tempfile.mkdtemp(prefix="export_check."))
    for seed, name in enumerate(list_models()):
        torch.manual_seed(seed)
        module = trained_looking(recipe(name).module(), seed)
        ckpt = work / name / "last.ckpt"
        ckpt.parent.mkdir()
        save_checkpoint(module, ckpt)
        module = load_classifier(ckpt)
        pixels, real = _pixels(module, datamodule_for(module), args.images, args.real)
        with torch.no_grad():
            x = datamodule_for(module).preprocess(pixels)
            expected = module.probabilities(x)
            cells = [_cell(_runtime(fmt, export_checkpoint(ckpt, fmt).path)(pixels, x), expected) for fmt in COLUMNS]
        rows[f"{name}{'' if real else ' *'}"] = cells
        np.save(ckpt.parent / "x.npy", x.permute(0, 2, 3, 1).numpy())
        np.save(ckpt.parent / "expected.npy", expected.numpy())
        tf_jobs.append([str(ckpt.with_suffix(".h5")), str(ckpt.parent / "x.npy"), str(ckpt.parent / "tf.npy")])
    if args.tf_python:
        done = subprocess.run([args.tf_python, "-c", TF_KERAS, json.dumps(tf_jobs)], capture_output=True, text=True)
        for (row, cells), (_, _, out) in zip(rows.items(), tf_jobs):
            expected = torch.from_numpy(np.load(Path(out).parent / "expected.npy"))
            cells.append(_cell(torch.from_numpy(np.load(out)), expected) if Path(out).is_file() else
                         f"failed ({done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode})")
    print(f"max |p_file - p_checkpoint| over {args.images} images (* random uint8 pixels; ! an argmax differs)\n")
    print("| model | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for row, cells in rows.items():
        print(f"| {row} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
