"""Trained checkpoints against Keras 3 on real images: export and import, the largest probability difference.

``scripts/export_check.py`` measures every zoo model with synthetic trained-looking weights; this
takes checkpoints a run trained (e.g. the docs notebooks' runs, ``outputs/notebooks/outputs/train/*/
checkpoints/last.ckpt`` after ``scripts/run_notebooks.py``) and, over the data's real test images
(preprocessed as the checkpoint's data recipe does, or ``--data`` for a Sequential fitted on arrays,
which records none), prints per checkpoint:

* ``export``: ``max |keras.models.load_model(file) - checkpoint|`` for the ``.keras`` and ``.h5`` files
  cnnzoo writes (written into a temporary dir, not next to the checkpoint);
* ``import``: ``max |cnnzoo reading the .keras file - Keras 3 on it|``.

    KERAS_BACKEND=torch python scripts/keras_trained_check.py CKPT... [--images 1000] [--data mnist]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from cnnzoo.interop.deploy import export_checkpoint  # noqa: E402
from cnnzoo.recipes import compose_train_config  # noqa: E402
from cnnzoo.training.checkpoints import datamodule_for, load_classifier, open_model  # noqa: E402
from export_check import _pixels, _runtime  # noqa: E402  (the same images and runtimes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--data", help="data recipe for checkpoints that record none (a Sequential fitted on arrays)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="keras_trained_check.") as work:
        _table(args, Path(work))


def _table(args: argparse.Namespace, work: Path) -> None:
    print(f"max |difference| in probabilities over up to {args.images} test images (* random pixels)\n")
    print("| checkpoint | model | export .keras | export .h5 | import .keras |\n|---|---|---|---|---|")
    for i, ckpt in enumerate(args.checkpoints):
        module = load_classifier(ckpt)
        stored = module.hparams.get("data_config")
        datamodule = datamodule_for(module, None if stored else compose_train_config(f"data={args.data}").data)
        pixels, real = _pixels(module, datamodule, args.images, True)
        cells = []
        with torch.no_grad():
            x = datamodule.preprocess(pixels)
            expected = module.probabilities(x)
            for fmt in ("keras", "h5"):
                path = export_checkpoint(ckpt, fmt, work / f"{i}.{fmt}").path
                cells.append((_runtime(fmt, path)(pixels, x) - expected).abs().max().item())
            keras_out = _runtime("keras", work / f"{i}.keras")(pixels, x)
            imported = open_model(work / f"{i}.keras", data=None, keras_needs_data=False).eval()
            cells.append((imported.probabilities(x) - keras_out).abs().max().item())
        print(f"| {ckpt} | {module.hparams.arch}{'' if real else ' *'} | " + " | ".join(f"{c:.1e}" for c in cells) + " |")


if __name__ == "__main__":
    main()
