#!/usr/bin/env python
"""Keras ``model.fit`` throughput worker for ``scripts/bench.py`` (one backend per process).

Keras fixes its backend when it is imported, and the TensorFlow contenders live in a separate
virtualenv without cnnzoo's dependencies, so ``bench.py`` runs this file as a subprocess with the
interpreter of the venv to measure.  It needs only numpy and Keras: the network comes as a JSON
list of cnnzoo layer specs (``{"kind": "Conv2D", "fields": {...}}``, the Keras constructor's name
and arguments, as ``tests/models/conftest.py`` translates them) and the data as an ``.npz`` of the
same uint8 arrays cnnzoo trains on (``x``: N x H x W x C, ``y``: N class indices).

Backends: ``torch`` (Keras 3, KERAS_BACKEND=torch), ``tensorflow`` (Keras 3, KERAS_BACKEND=
tensorflow), ``tf_keras`` (the Keras 2 that ships as ``tf_keras``, TF_USE_LEGACY_KERAS=1).

One-shot::

    python scripts/bench_keras_worker.py --backend tensorflow --spec spec.json --data data.npz \
        --batch-size 32 --optimizer '{"name": "rmsprop"}' --warmup-steps 20 --repeats 3

prints one JSON line per measured epoch.  With ``--serve`` it builds and warms up the model, prints
``{"ready": ...}`` and then measures one epoch per ``epoch`` line read from stdin (``bench.py``
interleaves the contenders that way without paying the import and build again).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _import_keras(backend: str):
    if backend == "tf_keras":
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        import tf_keras as keras  # noqa: PLC0415
    else:
        os.environ["KERAS_BACKEND"] = backend
        import keras  # noqa: PLC0415

        if keras.backend.backend() != backend:
            raise SystemExit(f"keras backend is {keras.backend.backend()}, wanted {backend}")
    return keras


def _versions(keras, backend: str) -> dict:
    versions = {"keras": getattr(keras, "__version__", "?"), "python": sys.version.split()[0]}
    if backend == "torch":
        import torch  # noqa: PLC0415

        versions["torch"] = torch.__version__
        versions["threads"] = torch.get_num_threads()
    else:
        import tensorflow as tf  # noqa: PLC0415

        versions["tensorflow"] = tf.__version__
    return versions


def build_model(keras, spec: dict):
    """The Keras Sequential for cnnzoo layer specs (``getattr(keras.layers, kind)(**fields)``)."""
    c, h, w = spec["input_shape"]
    layers = [getattr(keras.layers, layer["kind"])(**layer["fields"]) for layer in spec["layers"]]
    return keras.Sequential([keras.Input((h, w, c)), *layers])


def make_optimizer(keras, options: dict):
    """Keras' optimizer by name; cnnzoo's ``lr`` is Keras' ``learning_rate``, the rest keep Keras names."""
    options = dict(options)
    name = options.pop("name")
    if "lr" in options:
        options["learning_rate"] = options.pop("lr")
    classes = {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
    return classes[name](**options)


def make_timer(keras, warmup_steps: int):
    class StepTimer(keras.callbacks.Callback):
        """Time from the end of batch ``warmup_steps - 1`` to the end of the last batch."""

        def __init__(self) -> None:
            super().__init__()
            self._supports_tf_logs = True  # tf_keras: do not convert logs to numpy every batch

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()
            self.begin = self.end = self.cpu_begin = self.cpu_end = None
            self.batches = 0

        def on_train_batch_end(self, batch, logs=None):
            now, cpu = time.perf_counter(), time.process_time()
            self.batches += 1
            if self.batches == warmup_steps:
                self.begin, self.cpu_begin = now, cpu
            self.end, self.cpu_end = now, cpu

    return StepTimer()


class Worker:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.keras = _import_keras(args.backend)
        import numpy as np  # noqa: PLC0415

        with open(args.spec) as f:
            spec = json.load(f)
        with np.load(args.data) as data:
            # What a Keras user writes: scale the whole array once (cnnzoo scales per batch).
            self.x = data["x"].astype("float32") / 255.0
            self.y = data["y"].astype("int64")
        if args.steps:
            n = min(len(self.x), (args.warmup_steps + args.steps) * args.batch_size)
            self.x, self.y = self.x[:n], self.y[:n]
        self.keras.utils.set_random_seed(args.seed)
        self.model = build_model(self.keras, spec)
        self.model.compile(
            optimizer=make_optimizer(self.keras, json.loads(args.optimizer)),
            loss="sparse_categorical_crossentropy",  # = categorical CE on one-hot labels
            metrics=["accuracy"],
        )
        self.timer = make_timer(self.keras, args.warmup_steps)

    def warm_up(self) -> float:
        """One short fit (builds the train function / traces the graph); returns its seconds."""
        started = time.perf_counter()
        n = min(len(self.x), max(self.args.warmup_steps, 2) * self.args.batch_size)
        self.model.fit(self.x[:n], self.y[:n], batch_size=self.args.batch_size, epochs=1, verbose=0, shuffle=True)
        return time.perf_counter() - started

    def epoch(self) -> dict:
        timer = self.timer
        self.model.fit(self.x, self.y, batch_size=self.args.batch_size, epochs=1, verbose=self.args.verbose,
                       shuffle=True, callbacks=[timer])
        steps = timer.batches - self.args.warmup_steps
        if steps <= 0 or timer.begin is None:
            return {"error": f"only {timer.batches} batches, warm-up is {self.args.warmup_steps}"}
        samples = len(self.x) - self.args.warmup_steps * self.args.batch_size
        seconds = timer.end - timer.begin
        cpu_seconds = max(timer.cpu_end - timer.cpu_begin, 1e-9)  # all threads of this process
        return {"images_per_s": samples / seconds, "seconds": seconds, "samples": samples, "steps": steps,
                "images_per_cpu_s": samples / cpu_seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("torch", "tensorflow", "tf_keras"), required=True)
    parser.add_argument("--spec", required=True, help="JSON: {input_shape: [C,H,W], layers: [{kind, fields}]}")
    parser.add_argument("--data", required=True, help=".npz with x (N,H,W,C uint8) and y (N,)")
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--optimizer", default='{"name": "rmsprop"}', help="JSON: cnnzoo optimizer config")
    parser.add_argument("--warmup-steps", type=int, default=20)
    parser.add_argument("--steps", type=int, default=0, help="timed steps per epoch (0: the whole array)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--verbose", type=int, default=0, help="model.fit verbose (0: no progress bar)")
    parser.add_argument("--serve", action="store_true", help="measure one epoch per 'epoch' line on stdin")
    args = parser.parse_args(argv)

    # The protocol owns stdout: anything the libraries print goes to stderr instead.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    started = time.perf_counter()
    worker = Worker(args)
    setup_s = time.perf_counter() - started
    warmup_s = worker.warm_up()
    ready = {"ready": True, "backend": args.backend, "setup_s": setup_s, "warmup_s": warmup_s,
             "samples": len(worker.x), **_versions(worker.keras, args.backend)}
    print(json.dumps(ready), file=out, flush=True)
    if args.serve:
        for line in sys.stdin:
            command = line.strip()
            if command == "quit":
                break
            if command == "epoch":
                print(json.dumps(worker.epoch()), file=out, flush=True)
            else:
                print(json.dumps({"error": f"unknown command {command!r}"}), file=out, flush=True)
    else:
        for _ in range(args.repeats):
            print(json.dumps(worker.epoch()), file=out, flush=True)


if __name__ == "__main__":
    main()
