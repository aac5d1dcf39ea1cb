#!/usr/bin/env python
"""Training-throughput benchmark: cnnzoo's ``Trainer.fit`` against a hand loop, naive Lightning and Keras.

One command measures, in one run, side by side, interleaved and repeated (``for r in repeats: for
contender in contenders: measure one epoch``, the contender order rotated every repeat), training
images/s after warm-up (the first ``--warmup-steps`` batches of every measured epoch are not
timed) for asl_cnn (batch 32, Sign-MNIST, RMSprop), mnist_cnn (batch 64, MNIST, Adam) and
fashion_cnn (batch 32, Fashion-MNIST, Adam)::

    CNNZOO_DATA_DIR=/work/shared/data .venv/bin/python scripts/bench.py \\
        --tf-python /work/tfvenv/bin/python --json bench.json

Contenders (``--contenders``, comma separated; ``kind[:key=value;key=value]`` adds options):

* ``cnnzoo``        cnnzoo's real path: the Hydra config composed from ``conf/`` as ``python -m
                    cnnzoo.train model=<name>`` composes it, run by ``cnnzoo.train.train`` (DataModule,
                    ClassifierModule, callbacks, TensorBoard logger, Trainer) for one epoch, a timing
                    callback added.  Validation runs outside the timed window (capped at
                    ``--val-batches`` batches to keep the benchmark short).
* ``cnnzoo_tuned``  the same with ``threads=1``; ``cnnzoo_before``: cnnzoo before this benchmark's
                    findings (NCHW, per-step torchmetrics train updates, Lightning's default bar).
* ``hand``          a minimal PyTorch loop over the same ``TensorBatches``, network and optimizer
                    (torch defaults: one intra-op thread per core, NCHW, eager).
* ``hand_cl``       the hand loop with channels_last (the layout cnnzoo uses); ``hand_best``: with 1
                    thread and channels_last (fastest whenever other jobs load the CPU);
                    ``hand_passive``: channels_last, all cores, OMP_WAIT_POLICY=PASSIVE.
* ``naive``         the Lightning baseline a user writes: ``DataLoader(TensorDataset)`` with the default
                    collate, progress bar, ``self.log(on_step=True, prog_bar=True)`` of loss and accuracy.
* ``keras3_torch``  Keras 3 ``model.fit`` on the torch backend (subprocess, this interpreter).
* ``keras3_tf``     Keras 3 ``model.fit`` on TensorFlow (subprocess, ``--tf-python``).
* ``tf_keras2``     Keras 2 (``tf_keras``) ``model.fit`` on TensorFlow (subprocess, ``--tf-python``).

Options for the in-process contenders: ``threads=N`` (torch.set_num_threads), ``ftz=1``
(torch.set_flush_denormal: flush denormals to zero, as TensorFlow does), ``cl=1`` (channels_last
network and batches; for cnnzoo its ``channels_last`` setting), ``compile=1`` (torch.compile of the
network, inductor; for cnnzoo its ``compile`` setting; the hand loop runs the ragged last batch
eagerly), ``mkldnn=0`` (oneDNN off), ``env=NAME=VALUE+NAME=VALUE`` (run the contender in a
``bench.py --serve`` subprocess with these environment variables, e.g. ``OMP_WAIT_POLICY``).
Hand loop only: ``opt=foreach|forloop`` (cnnzoo's optimizer / a per-parameter Python loop).  cnnzoo only:
``pbar=N`` (progress-bar refresh rate, 0 disables it, ``default``: Lightning's own bar), ``metrics=cnnzoo|torchmetrics|novalidate|acc|none``
(how train metrics are updated per step: cnnzoo's ClassCounts, or torchmetrics' three classes),
``steplog=0|1`` (log train/loss on_step).

Besides throughput the run reports (``--no-extras`` skips them): peak resident memory of a
``python -m cnnzoo.train model=asl_cnn trainer.max_epochs=1 +trainer.limit_train_batches=N`` run
(``os.wait4``), the time from that command's start to its first optimizer step (against the
start-to-exit time of ``python -c "import torch, lightning, hydra"``), and cold and cached
Sign-MNIST CSV load times.  ``--micro`` adds per-call microbenchmarks of the per-step extras
(torchmetrics updates, optimizer steps, batch gather).

``--quick`` measures a few steps on a subset, one repeat (tests/test_bench_smoke.py runs it on tiny
generated data for asl_cnn in about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().with_name("bench_keras_worker.py")
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# model -> (batch size, optimizer); both are also what the model's recipe in conf/model/ sets.
MODELS = {
    "asl_cnn": {"batch_size": 32, "optimizer": "rmsprop", "data": "Sign-MNIST"},
    "mnist_cnn": {"batch_size": 64, "optimizer": "adam", "data": "MNIST"},
    "fashion_cnn": {"batch_size": 32, "optimizer": "adam", "data": "Fashion-MNIST"},
}
# Settings found fastest on the shared 2-core CPU this was written on (see docs/performance.md): one
# intra-op thread (libgomp's spin-waiting makes 2 threads collapse whenever another job takes a core)
# and channels_last.  cnnzoo_before is cnnzoo as it was before channels_last and ClassCounts.
ALIASES = {
    "hand_cl": "hand:cl=1",
    "hand_best": "hand:threads=1;cl=1",
    "hand_passive": "hand:cl=1;env=OMP_WAIT_POLICY=PASSIVE",
    "cnnzoo_tuned": "cnnzoo:threads=1",
    "cnnzoo_before": "cnnzoo:cl=0;metrics=torchmetrics;pbar=default",
}
DEFAULT_CONTENDERS = ["cnnzoo", "cnnzoo_before", "hand", "hand_cl", "hand_best", "naive", "keras3_torch", "keras3_tf", "tf_keras2"]
KINDS = ("cnnzoo", "hand", "naive", "keras3_torch", "keras3_tf", "tf_keras2")
KERAS_BACKENDS = {"keras3_torch": "torch", "keras3_tf": "tensorflow", "tf_keras2": "tf_keras"}
TF_KINDS = ("keras3_tf", "tf_keras2")
DEFAULT_THREADS = os.cpu_count() or 1


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- contender specs


@dataclasses.dataclass
class Spec:
    label: str
    kind: str
    options: dict[str, str]

    def flag(self, key: str, default: int = 0) -> int:
        return int(self.options.get(key, default))


def parse_spec(text: str) -> Spec:
    """``name`` or ``kind:key=value;key=value`` (an alias expands, extra options override it)."""
    label = text
    name, _, rest = text.partition(":")
    options: dict[str, str] = {}
    if name in ALIASES:
        base = parse_spec(ALIASES[name])
        name, options = base.kind, dict(base.options)
    if name not in KINDS:
        raise SystemExit(f"unknown contender {text!r}: expected one of {', '.join(KINDS + tuple(ALIASES))}")
    for item in filter(None, rest.split(";")):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"contender {text!r}: option {item!r} is not key=value")
        options[key.strip()] = value.strip()
    return Spec(label, name, options)


# --------------------------------------------------------------------------- timing callback


class StepTimer(pl.Callback):
    """Times training batches ``warmup + 1 ..`` of each epoch: from the end of batch ``warmup`` to
    the end of the last one (validation, checkpointing and epoch hooks fall outside)."""

    last: StepTimer | None = None

    def __init__(self, warmup: int = 20) -> None:
        self.warmup = warmup
        self.batches = self.samples = 0
        self.begin = self.end = self.cpu_begin = self.cpu_end = None
        StepTimer.last = self

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.batches = self.samples = 0
        self.begin = self.end = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        self.batches += 1
        if self.batches == self.warmup:
            self.begin, self.cpu_begin = now, cpu
        elif self.batches > self.warmup:
            self.samples += len(batch[0])
        self.end, self.cpu_end = now, cpu

    def result(self) -> dict:
        if self.begin is None or self.samples == 0:
            return {"error": f"only {self.batches} batches, warm-up is {self.warmup}"}
        seconds = self.end - self.begin
        return {"images_per_s": self.samples / seconds, "seconds": seconds, "samples": self.samples,
                "steps": self.batches - self.warmup,
                "images_per_cpu_s": self.samples / max(self.cpu_end - self.cpu_begin, 1e-9)}


class FirstStepProbe(pl.Callback):
    """For the start-up subprocess: wall-clock times (``time.time()``) of the fit phases up to the
    end of the first optimizer step, written as JSON to ``$BENCH_PROBE_FILE``."""

    def __init__(self) -> None:
        self.marks = {"callbacks_instantiated": time.time()}

    def _mark(self, name: str) -> None:
        self.marks.setdefault(name, time.time())

    def on_fit_start(self, trainer, pl_module) -> None:
        self._mark("fit_start")

    def on_sanity_check_end(self, trainer, pl_module) -> None:
        self._mark("sanity_check_end")

    def on_train_start(self, trainer, pl_module) -> None:
        self._mark("train_start")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if "first_step" not in self.marks:
            self._mark("first_step")
            Path(os.environ["BENCH_PROBE_FILE"]).write_text(json.dumps(self.marks))


@contextlib.contextmanager
def torch_settings(spec: Spec):
    """Process-wide torch settings of one contender, restored afterwards."""
    import torch

    threads = spec.flag("threads", DEFAULT_THREADS) or DEFAULT_THREADS
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.set_flush_denormal(bool(spec.flag("ftz")))
    saved_mkldnn = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = bool(spec.flag("mkldnn", 1))
    try:
        yield
    finally:
        torch.set_num_threads(saved)
        torch.set_flush_denormal(False)
        torch.backends.mkldnn.enabled = saved_mkldnn


# --------------------------------------------------------------------------- optimizers (prototypes)


def forloop_optimizer_class(name: str):
    """cnnzoo's Keras optimizer math written as a per-parameter Python loop (what foreach avoids)."""
    import torch

    from cnnzoo.training.optim import KerasAdam, KerasRMSprop

    class LoopKerasRMSprop(KerasRMSprop):
        def _update(self, group, params, grads):
            rho, lr, eps = group["rho"], group["lr"], group["epsilon"]
            for p, g in zip(params, grads):
                v = self._state(p, "velocity")
                v.mul_(rho).addcmul_(g, g, value=1 - rho)
                p.sub_(g * lr / (v + eps).sqrt())

    class LoopKerasAdam(KerasAdam):
        def _update(self, group, params, grads):
            group["step"] += 1
            b1, b2, t = group["beta_1"], group["beta_2"], group["step"]
            alpha = group["lr"] * (1 - b2**t) ** 0.5 / (1 - b1**t)
            for p, g in zip(params, grads):
                m, v = self._state(p, "m"), self._state(p, "v")
                m.lerp_(g, 1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                p.addcdiv_(m, v.sqrt().add_(group["epsilon"]), value=-alpha)

    return {"rmsprop": LoopKerasRMSprop, "adam": LoopKerasAdam}[name]


def make_optimizer(params, options: dict, variant: str = "foreach"):
    from cnnzoo.training.optim import create_optimizer

    options = dict(options)
    name = options.pop("name")
    if variant == "forloop":
        return forloop_optimizer_class(name)(params, **options)
    return create_optimizer(params, name, **options)


# --------------------------------------------------------------------------- data and config


def compose_train_config(model: str, run_dir: Path, overrides: list[str]):
    """The config of ``python -m cnnzoo.train model=<model> hydra.run.dir=<run_dir> <overrides>``,
    installed as the current Hydra config (as tests/conftest.py's compose_run does)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={model}", f"hydra.run.dir={run_dir}", *overrides],
                      return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig().set_config(cfg)
    return cfg


@dataclasses.dataclass
class ModelData:
    name: str
    batch_size: int
    optimizer: dict
    images: Any  # uint8 N x C x H x W tensor (the training split cnnzoo trains on)
    labels: Any
    num_classes: int
    input_shape: tuple[int, int, int]
    data_name: str


def load_model_data(model: str, tmp: Path, limit: int | None) -> ModelData:
    """The training split exactly as cnnzoo's DataModule for ``model``'s recipe holds it."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = compose_train_config(model, tmp / "compose", [])
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    images, labels = datamodule.splits["train"]
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    optimizer = OmegaConf.to_container(cfg.model.optimizer, resolve=True)
    return ModelData(model, int(cfg.data.batch_size), optimizer, images, labels, datamodule.num_classes,
                     tuple(datamodule.input_shape), datamodule.name)


# --------------------------------------------------------------------------- contenders


class Contender:
    spec: Spec
    note = ""

    def measure(self) -> dict:
        raise NotImplementedError

    def close(self) -> None:
        pass


class HandLoop(Contender):
    """for x, y in batches: zero_grad(set_to_none) / forward / cross-entropy / backward / step."""

    def __init__(self, spec: Spec, data: ModelData, warmup: int) -> None:
        import torch

        from cnnzoo.data.batches import TensorBatches
        from cnnzoo.models import create

        self.spec, self.data, self.warmup = spec, data, warmup
        torch.manual_seed(42)
        self.net = create(data.name, num_classes=data.num_classes, input_shape=data.input_shape)
        self.channels_last = bool(spec.flag("cl"))
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(self.net.parameters(), data.optimizer, spec.options.get("opt", "foreach"))
        self.compiled = None
        if spec.flag("compile"):
            self.compiled = torch.compile(self.net, mode=spec.options.get("mode") or None)
        self.batches = TensorBatches(data.images, data.labels, data.batch_size, shuffle=True, seed=42)
        self.net.train()

    def measure(self) -> dict:
        import torch
        import torch.nn.functional as F

        net, compiled, optimizer, full = self.net, self.compiled, self.optimizer, self.data.batch_size
        begin = end = cpu_begin = cpu_end = None
        samples = steps = 0
        first = None
        with torch_settings(self.spec):
            started = time.perf_counter()
            for i, (images, labels) in enumerate(self.batches):
                if self.channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                forward = compiled if compiled is not None and len(images) == full else net
                loss = F.cross_entropy(forward(images), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                now, cpu = time.perf_counter(), time.process_time()
                if first is None:
                    first = now - started  # includes torch.compile's compilation on the first epoch
                if i + 1 == self.warmup:
                    begin, cpu_begin = now, cpu
                elif i + 1 > self.warmup:
                    samples += len(labels)
                    steps += 1
                end, cpu_end = now, cpu
        if begin is None or not samples:
            return {"error": f"only {len(self.batches)} batches, warm-up is {self.warmup}"}
        return {"images_per_s": samples / (end - begin), "seconds": end - begin, "samples": samples, "steps": steps,
                "first_step_s": first, "images_per_cpu_s": samples / max(cpu_end - cpu_begin, 1e-9)}


class NaiveModule(pl.LightningModule):
    """What a user writes first: the network, cross-entropy, per-step logging on the progress bar."""

    def __init__(self, data: ModelData) -> None:
        super().__init__()
        from cnnzoo.models import create

        self.net = create(data.name, num_classes=data.num_classes, input_shape=data.input_shape)
        self.optimizer_options = data.optimizer

    def training_step(self, batch, batch_idx):
        import torch.nn.functional as F

        images, labels = batch
        logits = self.net(images)
        loss = F.cross_entropy(logits, labels)
        acc = (logits.argmax(dim=1) == labels).float().mean()
        self.log("train_loss", loss, on_step=True, prog_bar=True)
        self.log("train_acc", acc, on_step=True, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return make_optimizer(self.parameters(), self.optimizer_options)


class NaiveLightning(Contender):
    def __init__(self, spec: Spec, data: ModelData, warmup: int, tmp: Path, limit_batches: int | None) -> None:
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        self.spec, self.warmup, self.tmp, self.limit = spec, warmup, tmp, limit_batches
        torch.manual_seed(42)
        self.module = NaiveModule(data)
        dataset = TensorDataset(data.images.float() / 255.0, data.labels)
        self.loader = DataLoader(dataset, batch_size=data.batch_size, shuffle=True)
        self.runs = 0

    def measure(self) -> dict:
        timer = StepTimer(self.warmup)
        self.runs += 1
        with torch_settings(self.spec):
            trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, callbacks=[timer],
                                 default_root_dir=str(self.tmp / f"naive_{self.runs}"),
                                 limit_train_batches=self.limit)
            trainer.fit(self.module, train_dataloaders=self.loader)
        return timer.result()


def tuned_module_class():
    """``ClassifierModule`` with the per-step changes under test (options in ``bench_options``)."""
    import torch
    import torch.nn.functional as F

    from cnnzoo.training.module import ClassifierModule, _metrics

    class TunedClassifierModule(ClassifierModule):
        bench_options: dict[str, str] = {}

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            options = type(self).bench_options
            self.metrics_mode = options.get("metrics", "cnnzoo")
            self.step_log = options.get("steplog", "1") == "1"
            self.optimizer_variant = options.get("opt", "foreach")
            self.bench_metrics = _metrics(self.hparams.num_classes, "bench_train/")  # per-step torchmetrics variants
            if self.metrics_mode == "novalidate":
                for metric in self.bench_metrics.values():
                    metric.validate_args = False

        def training_step(self, batch, batch_idx):
            images, labels = batch
            logits = self(images)
            loss = F.cross_entropy(logits, labels)
            mode = self.metrics_mode
            if mode == "cnnzoo":  # cnnzoo's own: one ClassCounts update, metrics at epoch end
                self.train_counts.update(logits, labels, loss)
            elif mode in ("torchmetrics", "novalidate"):
                self.bench_metrics.update(logits, labels)
                self.log_dict(self.bench_metrics, on_step=False, on_epoch=True, prog_bar=True)
            elif mode == "acc":
                self.bench_metrics["acc"].update(logits, labels)
                self.log("bench_train/acc", self.bench_metrics["acc"], on_step=False, on_epoch=True, prog_bar=True)
            self.log("train/loss", loss, on_step=self.step_log, on_epoch=True, prog_bar=True,
                     batch_size=len(labels))
            return loss

        def configure_optimizers(self):
            return make_optimizer(self.parameters(), self.optimizer_options, self.optimizer_variant)

    return TunedClassifierModule


TUNED_MODULE = None  # the class, created on first use (module level so that Hydra can locate it)


def __getattr__(name: str):  # noqa: N807 - lets Hydra's _locate find bench.TunedClassifierModule
    global TUNED_MODULE
    if name == "TunedClassifierModule":
        if TUNED_MODULE is None:
            TUNED_MODULE = tuned_module_class()
        return TUNED_MODULE
    raise AttributeError(name)


class CnnzooFit(Contender):
    """``cnnzoo.train.train(cfg)`` for one epoch (``test=false``) with a StepTimer callback added."""

    TUNED_KEYS = ("metrics", "steplog", "opt")

    def __init__(self, spec: Spec, data: ModelData, warmup: int, tmp: Path, limit_batches: int | None,
                 val_batches: int | None) -> None:
        self.spec, self.data, self.warmup, self.tmp = spec, data, warmup, tmp
        module = sys.modules[__name__].__name__
        self.overrides = [
            "trainer.max_epochs=1",
            "test=false",
            f"+callbacks.bench_timer._target_={module}.StepTimer",
            f"+callbacks.bench_timer.warmup={warmup}",
        ]
        if limit_batches is not None:
            self.overrides.append(f"+trainer.limit_train_batches={limit_batches}")
        if val_batches is not None:
            self.overrides.append(f"+trainer.limit_val_batches={val_batches}")
        if "pbar" in spec.options:  # cnnzoo's tqdm bar (conf/callbacks/default.yaml) redrawn every N steps
            rate = int(spec.options["pbar"]) if spec.options["pbar"] != "default" else None
            if rate is None:  # no bar configured: Lightning's default (Rich when installed), as cnnzoo_before
                self.overrides.append("callbacks.progress_bar=null")
            elif rate <= 0:
                self.overrides += ["callbacks.progress_bar=null", "+trainer.enable_progress_bar=false"]
            else:
                self.overrides.append(f"callbacks.progress_bar.refresh_rate={rate}")
        if "cl" in spec.options:
            self.overrides.append(f"channels_last={'true' if spec.options['cl'] == '1' else 'false'}")
        if "compile" in spec.options:
            self.overrides.append(f"compile={'true' if spec.options['compile'] == '1' else 'false'}")
        self.tuned = {k: v for k, v in spec.options.items() if k in self.TUNED_KEYS}
        if self.tuned:
            self.overrides.append(f"model._target_={module}.TunedClassifierModule")
        self.runs = 0

    def measure(self) -> dict:
        from cnnzoo.train import train

        self.runs += 1
        run_dir = self.tmp / f"cnnzoo_{self.data.name}_{abs(hash(self.spec.label))}_{self.runs}"
        if self.tuned:
            __getattr__("TunedClassifierModule").bench_options = self.tuned
        with torch_settings(self.spec), _quiet_warnings():
            cfg = compose_train_config(self.data.name, run_dir, self.overrides)
            train(cfg)
        result = StepTimer.last.result()
        shutil.rmtree(run_dir, ignore_errors=True)
        return result


@contextlib.contextmanager
def _quiet_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*is smaller than the logging interval.*")
        yield


class ServedProcess(Contender):
    """A subprocess in --serve mode: prints ``{"ready": ...}``, then one JSON line per ``epoch`` line."""

    def _start(self, command: list[str], env: dict) -> None:
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                        text=True, env=env)
        self.ready = self._read()
        if not self.ready.get("ready"):
            raise RuntimeError(f"worker did not start: {self.ready.get('error')}")

    def _read(self) -> dict:
        while True:
            line = self.process.stdout.readline()
            if not line:
                self.process.wait()
                self.stderr.seek(0)
                tail = " | ".join(self.stderr.read().strip().splitlines()[-3:])
                return {"error": f"worker exited with {self.process.returncode}: {tail}"}
            if line.startswith("{"):
                return json.loads(line)

    def measure(self) -> dict:
        self.process.stdin.write("epoch\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
                self.process.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        self.stderr.close()


class InSubprocess(ServedProcess):
    """An in-process contender run by ``bench.py --serve`` in a subprocess with extra environment
    variables (``env=NAME=VALUE+NAME=VALUE``): settings read once at start-up, such as OpenMP's
    ``OMP_WAIT_POLICY`` / ``GOMP_SPINCOUNT``, need a fresh interpreter."""

    def __init__(self, spec: Spec, data: ModelData, args, extra_env: dict) -> None:
        self.spec = spec
        inner = ";".join(f"{k}={v}" for k, v in spec.options.items() if k != "env")
        command = [sys.executable, str(Path(__file__).resolve()), "--serve", f"{spec.kind}:{inner}",
                   "--models", data.name, "--warmup-steps", str(args.warmup_steps), "--steps", str(args.steps),
                   "--val-batches", str(-1 if args.val_batches is None else args.val_batches)]
        env = {**os.environ, **extra_env}
        self._start(command, env)
        self.note = " ".join(f"{k}={v}" for k, v in extra_env.items())


def serve(args) -> None:
    """``--serve SPEC``: one contender on one model, measured once per ``epoch`` line on stdin."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # progress bars and logs must not reach the protocol
    spec = parse_spec(args.serve)
    model = args.models.split(",")[0]
    with tempfile.TemporaryDirectory(prefix="cnnzoo-bench-serve-") as tmp_name:
        tmp = Path(tmp_name)
        limit = (args.warmup_steps + args.steps) * MODELS[model]["batch_size"] if args.steps else None
        data = load_model_data(model, tmp, limit)
        contender = make_contender(spec, data, args, tmp)
        print(json.dumps({"ready": True}), file=out, flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "quit":
                break
            try:
                outcome = contender.measure()
            except Exception as e:  # noqa: BLE001 - reported to the parent
                outcome = {"error": f"{type(e).__name__}: {e}"}
            print(json.dumps(outcome), file=out, flush=True)
        contender.close()


class KerasFit(ServedProcess):
    """A bench_keras_worker.py subprocess in --serve mode: one ``epoch`` line, one measurement."""

    def __init__(self, spec: Spec, data: ModelData, warmup: int, tmp: Path, python: str, steps: int | None) -> None:
        import numpy as np

        from cnnzoo.models import specs as model_specs

        self.spec = spec
        backend = KERAS_BACKENDS[spec.kind]
        data_file = tmp / f"{data.name}.npz"
        if not data_file.exists():
            np.savez(data_file, x=data.images.permute(0, 2, 3, 1).contiguous().numpy(), y=data.labels.numpy())
        spec_file = tmp / f"{data.name}.spec.json"
        layers = [{"kind": s.kind, "fields": dataclasses.asdict(s)} for s in model_specs(data.name, data.num_classes)]
        spec_file.write_text(json.dumps({"input_shape": list(data.input_shape), "layers": layers}))
        command = [python, str(WORKER), "--backend", backend, "--spec", str(spec_file), "--data", str(data_file),
                   "--batch-size", str(data.batch_size), "--optimizer", json.dumps(data.optimizer),
                   "--warmup-steps", str(warmup), "--serve"]
        if steps:
            command += ["--steps", str(steps)]
        env = dict(os.environ)
        env.pop("KERAS_BACKEND", None)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self._start(command, env)
        versions = {k: v for k, v in self.ready.items() if k in ("keras", "tensorflow", "torch")}
        self.note = " ".join(f"{k}={v}" for k, v in versions.items())


def keras_available() -> str:
    """'' when Keras 3 can be imported by this interpreter, else why not."""
    import importlib.util

    return "" if importlib.util.find_spec("keras") else "keras is not installed in this venv"


def make_contender(spec: Spec, data: ModelData, args, tmp: Path) -> Contender:
    limit = (args.warmup_steps + args.steps) if args.steps else None
    if "env" in spec.options and spec.kind in ("hand", "naive", "cnnzoo"):
        extra = dict(item.partition("=")[::2] for item in spec.options["env"].split("+") if item)
        return InSubprocess(spec, data, args, extra)
    if spec.kind == "hand":
        return HandLoop(spec, data, args.warmup_steps)
    if spec.kind == "naive":
        return NaiveLightning(spec, data, args.warmup_steps, tmp, limit)
    if spec.kind == "cnnzoo":
        return CnnzooFit(spec, data, args.warmup_steps, tmp, limit, args.val_batches)
    python = args.tf_python if spec.kind in TF_KINDS else sys.executable
    return KerasFit(spec, data, args.warmup_steps, tmp, python, args.steps)


def skip_reason(spec: Spec, args) -> str:
    if spec.kind == "keras3_torch":
        return keras_available()
    if spec.kind in TF_KINDS:
        if not args.tf_python:
            return "no --tf-python given (a venv with tensorflow-cpu, and tf_keras for tf_keras2)"
        if not Path(args.tf_python).exists():
            return f"--tf-python {args.tf_python} does not exist"
    return ""


# --------------------------------------------------------------------------- throughput runs


def summarize(samples: list[float]) -> dict:
    if not samples:
        return {"median": None, "min": None, "max": None, "samples": []}
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "samples": [round(s, 1) for s in samples]}


def bench_model(model: str, specs: list[Spec], args, tmp: Path, skipped: dict, notes: dict) -> dict:
    """Interleaved repeats of every contender on one model; returns label -> summary."""
    limit = None
    if args.steps:
        limit = (args.warmup_steps + args.steps) * MODELS[model]["batch_size"]
    data = load_model_data(model, tmp, limit)
    log(f"{model}: {len(data.images)} training images ({data.data_name}), batch {data.batch_size}, "
        f"optimizer {data.optimizer['name']}")
    contenders: dict[str, Contender] = {}
    for spec in specs:
        reason = skip_reason(spec, args)
        if not reason:
            try:
                started = time.perf_counter()
                contenders[spec.label] = make_contender(spec, data, args, tmp)
                log(f"{model}: {spec.label} ready in {time.perf_counter() - started:.1f}s")
                if contenders[spec.label].note:
                    notes.setdefault(spec.label, contenders[spec.label].note)
            except Exception as e:  # noqa: BLE001 - a contender that cannot start is skipped with a note
                reason = f"{type(e).__name__}: {e}"
        if reason:
            skipped.setdefault(spec.label, reason)
            log(f"{model}: skipping {spec.label}: {reason}")
    results: dict[str, list[float]] = {label: [] for label in contenders}
    cpu_results: dict[str, list[float]] = {label: [] for label in contenders}
    errors: dict[str, str] = {}
    labels = list(contenders)
    try:
        for repeat in range(args.repeats):
            shift = repeat % max(len(labels), 1)
            for label in labels[shift:] + labels[:shift]:
                outcome = contenders[label].measure()
                if "images_per_s" in outcome:
                    results[label].append(outcome["images_per_s"])
                    if outcome.get("images_per_cpu_s"):
                        cpu_results[label].append(outcome["images_per_cpu_s"])
                    first = f", first step {outcome['first_step_s']:.1f}s" if repeat == 0 and "first_step_s" in outcome else ""
                    log(f"{model} r{repeat + 1}/{args.repeats} {label}: {outcome['images_per_s']:.0f} img/s "
                        f"({outcome['steps']} steps, {outcome['seconds']:.1f}s{first})")
                    if first:
                        notes.setdefault(f"{label} first step s", {})[model] = round(outcome["first_step_s"], 2)
                else:
                    errors[label] = outcome.get("error", "?")
                    log(f"{model} r{repeat + 1} {label}: {errors[label]}")
    finally:
        for contender in contenders.values():
            contender.close()
    summary = {label: summarize(samples) for label, samples in results.items()}
    for label, samples in cpu_results.items():
        if samples:  # images per CPU-second of the measuring process: robust to other jobs on the machine
            summary[label]["cpu_median"] = statistics.median(samples)
    for label, error in errors.items():
        summary[label]["error"] = error
    return summary


def ratios(throughput: dict) -> dict:
    """cnnzoo (and cnnzoo_tuned) over each other contender, by median."""
    out: dict[str, dict[str, float | None]] = {}
    for model, table in throughput.items():
        med = {label: row["median"] for label, row in table.items() if row.get("median")}
        tf = [med[k] for k in ("keras3_tf", "tf_keras2") if k in med]
        if tf:
            med["tf_best"] = max(tf)
        hands = [v for k, v in med.items() if k.startswith("hand")]
        if hands:
            med["hand_fastest"] = max(hands)
        rows: dict[str, float | None] = {}
        for mine in [k for k in med if k.startswith("cnnzoo")]:
            for other in med:
                if other != mine and not other.startswith("cnnzoo"):
                    rows[f"{mine}/{other}"] = round(med[mine] / med[other], 3)
        out[model] = rows
    return out


# --------------------------------------------------------------------------- extras


def run_timed(command: list[str], env: dict, cwd: Path, timeout: float) -> tuple[float, int, int, str]:
    """(wall seconds, exit code, peak RSS in KiB of that child alone, stderr tail)."""
    with tempfile.TemporaryFile(mode="w+") as err:
        started = time.time()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.time() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.01)
        wall = time.time() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = "\n".join(err.read().strip().splitlines()[-5:])
    return wall, process.returncode, usage.ru_maxrss, tail


def bench_startup_and_memory(args, tmp: Path) -> dict:
    """Start to first optimizer step and peak RSS of ``python -m cnnzoo.train model=asl_cnn ...``,
    against the start-to-exit time of ``python -c 'import torch, lightning, hydra'``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent), str(REPO), env.get("PYTHONPATH", "")])
    imports = []
    for _ in range(args.startup_repeats):
        wall, code, _, tail = run_timed([sys.executable, "-c", "import torch, lightning, hydra"], env, REPO, 300)
        if code:
            return {"error": f"import failed: {tail}"}
        imports.append(wall)
    runs = []
    for i in range(args.startup_repeats):
        probe = tmp / f"probe_{i}.json"
        env["BENCH_PROBE_FILE"] = str(probe)
        command = [sys.executable, "-m", "cnnzoo.train", "model=asl_cnn", "trainer.max_epochs=1",
                   f"+trainer.limit_train_batches={args.rss_batches}", f"hydra.run.dir={tmp / f'startup_{i}'}",
                   "+callbacks.first_step._target_=bench.FirstStepProbe"]
        started = time.time()
        wall, code, rss_kib, tail = run_timed(command, env, REPO, 900)
        if code or not probe.exists():
            return {"error": f"cnnzoo.train exited with {code}: {tail}", "command": " ".join(command[1:])}
        marks = json.loads(probe.read_text())
        runs.append({"wall_s": wall, "peak_rss_mb": rss_kib / 1024,
                     **{f"{k}_s": v - started for k, v in marks.items()}})
    import_s = statistics.median(imports)
    first_step_s = statistics.median(r["first_step_s"] for r in runs)
    return {
        "command": "python -m cnnzoo.train model=asl_cnn trainer.max_epochs=1 "
                   f"+trainer.limit_train_batches={args.rss_batches} (+ a probe callback)",
        "import_torch_lightning_hydra_s": round(import_s, 2),
        "import_samples_s": [round(v, 2) for v in imports],
        "first_step_s": round(first_step_s, 2),
        "first_step_minus_import_s": round(first_step_s - import_s, 2),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
        "runs": [{k: round(v, 2) for k, v in r.items()} for r in runs],
    }


def bench_csv(args, tmp: Path) -> dict:
    """Sign-MNIST decode: cold (a fresh copy of the CSV folder, empty XDG cache) and cached."""
    from cnnzoo.data.sources import SIGN_MNIST, default_data_dir

    source = default_data_dir() / SIGN_MNIST.folder
    if not source.is_dir():
        return {"error": f"{source} not found (set CNNZOO_DATA_DIR)"}
    saved = os.environ.get("XDG_CACHE_HOME")
    out: dict[str, Any] = {}
    try:
        for what in ("train", "all"):
            root = tmp / f"csv_{what}"
            shutil.copytree(source, root / SIGN_MNIST.folder)
            for path in (root / SIGN_MNIST.folder).iterdir():
                path.chmod(0o644)
            (root / SIGN_MNIST.folder).chmod(0o755)
            os.environ["XDG_CACHE_HOME"] = str(root / "cache")
            if what == "train":
                path = next(p for p in (root / SIGN_MNIST.folder).iterdir() if p.name.startswith("sign_mnist_train"))
                load = lambda: SIGN_MNIST._read(path)  # noqa: E731 - the train file alone
            else:
                load = lambda: SIGN_MNIST.load(root)  # noqa: E731
            started = time.perf_counter()
            load()
            out[f"{what}_cold_s"] = round(time.perf_counter() - started, 3)
            cached = []
            for _ in range(3):
                started = time.perf_counter()
                load()
                cached.append(time.perf_counter() - started)
            out[f"{what}_cached_s"] = round(statistics.median(cached), 3)
    finally:
        if saved is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = saved
    return out


def bench_micro(tmp: Path) -> dict:
    """Microseconds per call of per-step extras, single-threaded, batch 32, 24 classes (asl_cnn)."""
    import torch

    from cnnzoo.data.batches import TensorBatches
    from cnnzoo.training.module import _metrics
    from cnnzoo.models import create

    def per_call(fn, n=200) -> float:
        for _ in range(10):
            fn()
        started = time.perf_counter()
        for _ in range(n):
            fn()
        return round((time.perf_counter() - started) / n * 1e6, 1)

    out: dict[str, float] = {}
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        logits, labels = torch.randn(32, 24), torch.randint(0, 24, (32,))
        collection = _metrics(24, "train/")
        out["metrics_collection_update_us"] = per_call(lambda: collection.update(logits, labels))
        for name, metric in _metrics(24, "x/").items():
            out[f"metric_{name.split('/')[-1]}_update_us"] = per_call(lambda m=metric: m.update(logits, labels))
        confusion = torch.zeros(24 * 24, dtype=torch.long)
        top5 = torch.zeros((), dtype=torch.long)

        def cm_update() -> None:
            confusion.add_(torch.bincount(labels * 24 + logits.argmax(1), minlength=24 * 24))
            top5.add_((logits.topk(5, dim=1).indices == labels[:, None]).any(1).sum())

        out["confusion_bincount_update_us"] = per_call(cm_update)
        for model, opt in (("asl_cnn", {"name": "rmsprop"}), ("mnist_cnn", {"name": "adam"})):
            for variant in ("foreach", "forloop"):
                net = create(model)
                for p in net.parameters():
                    p.grad = torch.randn_like(p) * 1e-3
                optimizer = make_optimizer(net.parameters(), opt, variant)
                out[f"optimizer_{model}_{variant}_us"] = per_call(optimizer.step)
        images = torch.randint(0, 256, (6000, 1, 28, 28), dtype=torch.uint8)
        batches = TensorBatches(images, torch.randint(0, 24, (6000,)), 32, shuffle=True)

        def epoch() -> None:
            for _ in batches:
                pass

        out["tensorbatches_batch_us"] = round(per_call(epoch, n=5) / len(batches), 1)
    finally:
        torch.set_num_threads(saved)
    return out


# --------------------------------------------------------------------------- report


def targets(result: dict) -> dict:
    """The issue's targets, checked against this run's medians."""
    out: dict[str, Any] = {}
    for model, rows in result.get("ratios", {}).items():
        for mine in ("cnnzoo", "cnnzoo_tuned"):
            checks = {"tf_best": 1.0, "hand_fastest": 0.95, "keras3_torch": 1.5}
            if model == "asl_cnn":
                checks["naive"] = 1.3
            for other, goal in checks.items():
                value = rows.get(f"{mine}/{other}")
                if value is not None:
                    out[f"{model} {mine}/{other} >= {goal}"] = {"value": value, "met": value >= goal}
    startup = result.get("startup") or {}
    if "first_step_minus_import_s" in startup:
        out["start to first step <= import + 3 s"] = {"value": startup["first_step_minus_import_s"],
                                                       "met": startup["first_step_minus_import_s"] <= 3.0}
    if "peak_rss_mb" in startup:
        out["peak RSS <= 1.5 GB"] = {"value": startup["peak_rss_mb"], "met": startup["peak_rss_mb"] <= 1536}
    csv = result.get("csv") or {}
    if "train_cold_s" in csv:
        out["Sign-MNIST train CSV cold <= 3 s"] = {"value": csv["train_cold_s"], "met": csv["train_cold_s"] <= 3}
        out["Sign-MNIST train CSV cached <= 0.3 s"] = {"value": csv["train_cached_s"], "met": csv["train_cached_s"] <= 0.3}
    return out


def format_table(result: dict) -> str:
    lines = []
    models = list(result["throughput"])
    labels: list[str] = []
    for model in models:
        labels += [label for label in result["throughput"][model] if label not in labels]
    lines.append("training images/s: median [min-max] of the interleaved repeats (images per CPU-second of the "
                 "measuring process, all its threads: robust to other jobs on the machine)")
    header = "| contender | " + " | ".join(f"{m} (b{MODELS[m]['batch_size']})" for m in models) + " |"
    lines += [header, "|" + " --- |" * (len(models) + 1)]
    for label in labels:
        cells = []
        for model in models:
            row = result["throughput"][model].get(label)
            if not row or row.get("median") is None:
                cells.append("skipped" if label in result["skipped"] else (row or {}).get("error", "-"))
            else:
                cpu = f" ({row['cpu_median']:,.0f}/cpu-s)" if row.get("cpu_median") else ""
                cells.append(f"{row['median']:,.0f} [{row['min']:,.0f}-{row['max']:,.0f}]{cpu}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    ratio_keys: list[str] = []
    for model in models:
        ratio_keys += [k for k in result["ratios"].get(model, {}) if k not in ratio_keys]
    if ratio_keys:
        lines += ["| ratio (medians) | " + " | ".join(models) + " |", "|" + " --- |" * (len(models) + 1)]
        for key in ratio_keys:
            values = [result["ratios"].get(m, {}).get(key) for m in models]
            lines.append(f"| {key} | " + " | ".join("-" if v is None else f"{v:.2f}x" for v in values) + " |")
        lines.append("")
    for label, reason in result["skipped"].items():
        lines.append(f"skipped {label}: {reason}")
    for label, note in result["notes"].items():
        lines.append(f"{label}: {note}")
    for section in ("startup", "csv", "micro"):
        if result.get(section):
            body = {k: v for k, v in result[section].items() if k != "runs"}
            lines.append(f"{section}: {json.dumps(body)}")
    for name, check in result.get("targets", {}).items():
        lines.append(f"target {'MET ' if check['met'] else 'MISS'} {name}: {check['value']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a few steps per contender on a subset, 1 repeat, short extras (smoke test)")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma separated, from {', '.join(MODELS)}")
    parser.add_argument("--contenders", default=",".join(DEFAULT_CONTENDERS),
                        help="comma separated contender specs (see above)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 3, quick 1)")
    parser.add_argument("--warmup-steps", type=int, default=None, help="untimed batches per epoch (default 20, quick 3)")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per measurement on a subset (default: the whole epoch; quick 12)")
    parser.add_argument("--val-batches", type=int, default=10,
                        help="cap on cnnzoo's validation batches (outside the timed window; -1: no cap)")
    parser.add_argument("--tf-python", default=None, help="python of a venv with tensorflow-cpu (+ tf_keras)")
    parser.add_argument("--no-extras", action="store_true", help="skip start-up, memory and CSV measurements")
    parser.add_argument("--rss-batches", type=int, default=None, help="limit_train_batches of the memory run")
    parser.add_argument("--startup-repeats", type=int, default=None)
    parser.add_argument("--micro", action="store_true", help="add per-step microbenchmarks")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--serve", default=None, help=argparse.SUPPRESS)  # internal: see InSubprocess
    args = parser.parse_args(argv)
    quick = args.quick
    args.repeats = args.repeats or (1 if quick else 3)
    args.warmup_steps = args.warmup_steps if args.warmup_steps is not None else (3 if quick else 20)
    args.steps = args.steps if args.steps is not None else (12 if quick else 0)
    args.val_batches = None if args.val_batches < 0 else args.val_batches
    args.rss_batches = args.rss_batches or (5 if quick else 100)
    args.startup_repeats = args.startup_repeats or (1 if quick else 2)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for model in models:
        if model not in MODELS:
            raise SystemExit(f"unknown model {model!r}: expected one of {', '.join(MODELS)}")
    if args.serve:
        serve(args)
        return {}
    specs = [parse_spec(s.strip()) for s in args.contenders.split(",") if s.strip()]

    import lightning
    import torch

    started = time.time()
    result: dict[str, Any] = {
        "meta": {
            "command": " ".join([Path(sys.executable).name, *sys.argv]) if argv is None else f"bench.py {' '.join(argv)}",
            "quick": quick, "repeats": args.repeats, "warmup_steps": args.warmup_steps,
            "steps": args.steps or "full epoch", "models": models,
            "contenders": {s.label: f"{s.kind}:{';'.join(f'{k}={v}' for k, v in s.options.items())}".rstrip(":")
                           for s in specs},
            "torch": torch.__version__, "lightning": lightning.__version__, "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "data_dir": os.environ.get("CNNZOO_DATA_DIR"),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
        "throughput": {}, "skipped": {}, "notes": {},
    }
    with tempfile.TemporaryDirectory(prefix="cnnzoo-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for model in models:
            result["throughput"][model] = bench_model(model, specs, args, tmp, result["skipped"], result["notes"])
        result["ratios"] = ratios(result["throughput"])
        if not args.no_extras:
            log("extras: start-up and peak RSS of a cnnzoo.train run")
            result["startup"] = bench_startup_and_memory(args, tmp)
            log("extras: Sign-MNIST CSV load")
            result["csv"] = bench_csv(args, tmp)
        if args.micro:
            log("extras: microbenchmarks")
            result["micro"] = bench_micro(tmp)
    result["targets"] = targets(result)
    result["meta"]["duration_s"] = round(time.time() - started, 1)
    print(format_table(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
        log(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
