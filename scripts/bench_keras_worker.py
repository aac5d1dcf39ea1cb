#!/usr/bin/env python
"""Keras ``model.fit`` throughput for ``scripts/bench.py``: one backend, one measurement per process.

Keras fixes its backend when it is imported, and the TensorFlow contenders live in a separate venv
without cnnzoo's dependencies, so ``bench.py`` runs this file with the interpreter to measure.  It
needs only numpy and Keras; the parent passes everything read from the recipe: the network as a
JSON list of cnnzoo layer specs (``{"kind": "Conv2D", "fields": {...}}``: the Keras class name and
its arguments), the data as an ``.npz`` of the uint8 arrays cnnzoo trains on (``x``: N x H x W x C,
``y``: class indices), the batch size and the optimizer config.  The data holds exactly
``warmup + steps`` batches; the first ``warmup`` are not timed.  The result is written as JSON to
``--out``.  Backends: ``torch`` and ``tensorflow`` (Keras 3), ``tf_keras`` (Keras 2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def import_keras(backend: str):
    if backend == "tf_keras":
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        import tf_keras as keras
    else:
        os.environ["KERAS_BACKEND"] = backend
        import keras
    return keras


def versions(keras, backend: str) -> str:
    if backend == "torch":
        import torch

        return f"keras {keras.__version__}, torch {torch.__version__}"
    import tensorflow as tf

    return f"keras {keras.__version__}, tensorflow {tf.__version__}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("torch", "tensorflow", "tf_keras"), required=True)
    parser.add_argument("--spec", required=True, help="JSON: {input_shape: [C,H,W], layers: [{kind, fields}]}")
    parser.add_argument("--data", required=True, help=".npz with x (N,H,W,C uint8) and y (N,)")
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--optimizer", required=True, help="JSON: the recipe's optimizer (name, lr, ...)")
    parser.add_argument("--warmup-steps", type=int, required=True)
    parser.add_argument("--out", required=True, help="where the JSON result goes")
    args = parser.parse_args(argv)

    keras = import_keras(args.backend)
    import numpy as np

    spec = json.loads(open(args.spec).read())
    with np.load(args.data) as data:
        x = data["x"].astype("float32") / 255.0  # what a Keras user writes: scale the whole array once
        y = data["y"].astype("int64")
    options = json.loads(args.optimizer)
    name = options.pop("name")
    options["learning_rate"] = options.pop("lr", 0.001)  # cnnzoo's lr is Keras' learning_rate
    optimizer = {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam,
                 "sgd": keras.optimizers.SGD}[name](**options)
    keras.utils.set_random_seed(42)
    c, h, w = spec["input_shape"]
    layers = [getattr(keras.layers, layer["kind"])(**layer["fields"]) for layer in spec["layers"]]
    model = keras.Sequential([keras.Input((h, w, c)), *layers])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    marks: list[float] = []

    class StepTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self._supports_tf_logs = True  # tf_keras: do not convert logs to numpy every batch

        def on_train_batch_end(self, batch, logs=None):
            marks.append(time.perf_counter())

    model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0, shuffle=True, callbacks=[StepTimer()])
    warmup = args.warmup_steps
    if len(marks) <= warmup:
        result = {"error": f"only {len(marks)} steps, warm-up is {warmup}"}
    else:
        samples = len(x) - warmup * args.batch_size
        result = {"images_per_s": samples / (marks[-1] - marks[warmup - 1]), "steps": len(marks) - warmup,
                  "versions": versions(keras, args.backend)}
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    sys.exit(main())
