#!/usr/bin/env python
"""Training throughput, side by side: cnnzoo against a hand loop, naive Lightning and Keras.

Per model, each contender trains ``--warmup`` untimed steps and ``--steps`` timed ones (a step is one
batch) once per round; contenders are interleaved, their order rotated every round.  A cell is the
median images/s of ``--rounds`` rounds, [min-max] beside it.  Batch size, optimizer and data come from
the model's recipe (``cnnzoo.recipes``)::

    CNNZOO_DATA_DIR=/work/shared/data .venv/bin/python scripts/bench.py --json bench.json

Contenders (``--contenders``, comma separated):

* ``cnnzoo``   the real path: ``cnnzoo.train.train`` on the config ``python -m cnnzoo.train model=<name>``
               composes, for ``warmup + steps`` batches on ``--device``, a timing callback added;
               ``cnnzoo_bf16``: the same with ``precision=bf16``; ``cnnzoo_compiled``: ``compile=reduce-overhead``.
* ``hand``     a minimal PyTorch loop over the DataModule's batches, same network and optimizer, NCHW;
               ``hand_cl``: the same with channels_last (the layout cnnzoo trains in); ``hand_cl_bf16``:
               that loop under ``torch.autocast(device, dtype=torch.bfloat16)``.
* ``naive``    the Lightning baseline a user writes first: ``DataLoader(TensorDataset)``, per-step
               ``self.log(..., prog_bar=True)`` of loss and accuracy, Lightning's defaults.
* ``lightning`` Lightning's own loop and nothing else: the hand loop's step as a ``training_step`` over
               the same batches, no callbacks, logger, bar or checkpoints (the floor of any Lightning run);
               ``lightning_manual``: that step under manual optimization (what leaving the automatic one gains).
* ``keras3_torch``  Keras 3 ``model.fit`` on torch; ``keras3_tf``, ``tf_keras2``: Keras 3 and 2 on
               TensorFlow (``--tf-python <venv python>``); each a ``bench_keras_worker.py`` subprocess.

``--extras`` adds Sign-MNIST CSV load times (a ``python -m cnnzoo.train`` process's time to its first
step and peak RSS are ``bench_whole_run.py``'s).  ``--quick``: one round of a few steps (tests/performance/test_scripts.py).
``--device cuda``: the torch contenders on the GPU, data resident there as uint8 from the start, timed
between ``torch.cuda.synchronize()`` calls (Keras stays on CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if __name__ == "__main__":  # before torch, as the entry points: threads and OpenMP wait policy for the free cores
    __import__("cnnzoo.threads").threads.configure()
    __import__("cnnzoo.memory").memory.tune()  # as cnnzoo.train does, for every contender in this process
    __import__("gc").disable()  # as cnnzoo.startup.begin does; the imports are frozen at the bottom

import lightning.pytorch as pl  # noqa: E402
import numpy as np  # noqa: E402
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

WORKER = Path(__file__).resolve().with_name("bench_keras_worker.py")

from bench_report import cpu_info, cpu_line, log, markdown, span  # noqa: E402 - scripts/ is this file's folder
from cnnzoo.models import specs  # noqa: E402 - after the repo root is on sys.path
from cnnzoo.recipes import recipe  # noqa: E402
from cnnzoo.train import train  # noqa: E402
from cnnzoo.training.optim import create_optimizer  # noqa: E402

KERAS = {"keras3_torch": "torch", "keras3_tf": "tensorflow", "tf_keras2": "tf_keras"}


class StepTimer(pl.Callback):
    """Times from the end of step ``warmup`` to the end of the last (Lightning's hook or ``tick``)."""

    last: StepTimer | None = None  # the one ``cnnzoo.train`` instantiated from the config

    def __init__(self, warmup: int, total: int = 0) -> None:
        self.warmup, self.total, self.steps, self.samples = warmup, total, 0, 0
        self.begin = self.end = 0.0
        StepTimer.last = self

    def tick(self, samples: int) -> None:
        self.steps += 1
        if self.total and self.steps in (self.warmup, self.total) and torch.cuda.is_initialized():
            torch.cuda.synchronize()  # the GPU's queue is done: time what ran, not what was queued
        now = time.perf_counter()
        if self.steps == self.warmup:
            self.begin = now
        elif self.steps > self.warmup:
            self.samples, self.end = self.samples + samples, now

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.tick(len(batch[1]))

    def result(self) -> dict:
        if not self.samples:
            return {"error": f"only {self.steps} steps, warm-up is {self.warmup}"}
        return {"images_per_s": self.samples / (self.end - self.begin), "steps": self.steps - self.warmup}


@dataclasses.dataclass
class Setup:
    """One model's recipe and data, shared by its contenders."""

    model: str
    recipe: Any  # cnnzoo.recipes.Recipe
    datamodule: Any  # set up: .splits["train"] holds the uint8 training split
    args: argparse.Namespace  # warmup, steps, threads, tf_python
    tmp: Path

    @property
    def batches(self) -> int:
        return self.args.warmup + self.args.steps

    def subset(self):
        """The first ``warmup + steps`` batches' worth of training images and labels."""
        (images, labels), n = self.datamodule.splits["train"], self.batches * self.recipe.batch_size
        return images[:n].cpu(), labels[:n].cpu()


def hydra_config(overrides: list[str], run_dir: Path):
    """The config ``python -m cnnzoo.train <overrides>`` runs with, installed as the current Hydra config
    (as tests/conftest.py's compose_run does) so that ``cnnzoo.train.train`` can run in-process."""
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3", job_name="train"):
        cfg = compose("train", overrides=[*overrides, f"hydra.run.dir={run_dir}"], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig().set_config(cfg)
    return cfg


def run_cnnzoo(s: Setup, *options: str) -> dict:
    run_dir = Path(tempfile.mkdtemp(prefix="cnnzoo_", dir=s.tmp))
    threads = [f"threads={s.args.threads}"] if s.args.threads else []
    accelerator = "gpu" if s.args.device == "cuda" else "cpu"
    cfg = hydra_config([*s.recipe.overrides, "trainer.max_epochs=1", f"trainer.accelerator={accelerator}", "test=false",
                        f"+trainer.limit_train_batches={s.batches}", "+trainer.limit_val_batches=1", *threads,
                        f"+callbacks.bench_timer._target_={__name__}.StepTimer",
                        f"+callbacks.bench_timer.warmup={s.args.warmup}", f"+callbacks.bench_timer.total={s.batches}",
                        *options], run_dir)
    StepTimer.last = None
    outcome = train(cfg)
    shutil.rmtree(run_dir, ignore_errors=True)
    if outcome["status"] != "completed":
        return {"error": f"cnnzoo.train {outcome['status']}: {outcome['error']}"}
    return StepTimer.last.result() if StepTimer.last else {"error": "the timing callback was not instantiated"}


def hand_loop(s: Setup, channels_last: bool, bf16: bool = False) -> dict:
    torch.manual_seed(42)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    net = s.recipe.network().to(s.args.device, memory_format=layout).train()
    optimizer = create_optimizer(net.parameters(), **s.recipe.optimizer)
    timer = StepTimer(s.args.warmup, s.batches)
    for _, (images, labels) in zip(range(s.batches), s.datamodule.train_dataloader()):  # on --device already
        with torch.autocast(s.args.device, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(net(images.contiguous(memory_format=layout)), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        timer.tick(len(labels))
    return timer.result()


class BareModule(pl.LightningModule):
    """The hand loop's step as a LightningModule, in ``layout``."""

    def __init__(self, net, optimizer: dict, layout=torch.channels_last) -> None:
        super().__init__()
        self.net, self.optimizer_config, self.layout = net.to(memory_format=layout), optimizer, layout

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self.net(batch[0].contiguous(memory_format=self.layout)), batch[1])

    def configure_optimizers(self):
        return create_optimizer(self.parameters(), **self.optimizer_config)


class ManualModule(BareModule):
    """BareModule's step with Lightning's manual optimization: no closure, no automatic-optimization hooks."""

    automatic_optimization = False

    def training_step(self, batch, batch_idx):
        loss, optimizer = super().training_step(batch, batch_idx), self.optimizers()
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()
        return loss


class NaiveModule(BareModule):
    """What a user writes first: the network (NCHW), cross-entropy, per-step logging on the progress bar."""

    def training_step(self, batch, batch_idx):
        images, labels = batch
        logits = self.net(images)
        loss = F.cross_entropy(logits, labels)
        self.log("train_loss", loss, on_step=True, prog_bar=True)
        self.log("train_acc", (logits.argmax(dim=1) == labels).float().mean(), on_step=True, prog_bar=True)
        return loss


def run_lightning(s: Setup, module: type[BareModule] = BareModule) -> dict:
    torch.manual_seed(42)
    timer = StepTimer(s.args.warmup, s.batches)
    trainer = pl.Trainer(max_epochs=1, accelerator="gpu" if s.args.device == "cuda" else "cpu", devices=1,
                         callbacks=[timer], logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_train_batches=s.batches)
    trainer.fit(module(s.recipe.network(), s.recipe.optimizer), train_dataloaders=s.datamodule.train_dataloader())
    return timer.result()


def run_naive(s: Setup) -> dict:
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(42)
    images, labels = s.subset()
    loader = DataLoader(TensorDataset(images.float() / 255.0, labels), batch_size=s.recipe.batch_size, shuffle=True)
    timer = StepTimer(s.args.warmup)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, callbacks=[timer],
                         default_root_dir=tempfile.mkdtemp(prefix="naive_", dir=s.tmp))
    trainer.fit(NaiveModule(s.recipe.network(), s.recipe.optimizer, torch.contiguous_format), train_dataloaders=loader)
    return timer.result()


def run_keras(s: Setup, kind: str) -> dict:
    """``bench_keras_worker.py`` on this model's subset, with the recipe's network, batch and optimizer."""
    data, spec, out = s.tmp / f"{s.model}.npz", s.tmp / f"{s.model}.json", s.tmp / "keras_result.json"
    if not data.exists():
        images, labels = s.subset()
        np.savez(data, x=images.permute(0, 2, 3, 1).contiguous().numpy(), y=labels.numpy())
        layers = [{"kind": layer.kind, "fields": dataclasses.asdict(layer)}
                  for layer in specs(s.recipe.arch, s.datamodule.num_classes)]
        spec.write_text(json.dumps({"input_shape": list(s.datamodule.input_shape), "layers": layers}))
    python = sys.executable if kind == "keras3_torch" else s.args.tf_python
    command = [python, str(WORKER), "--backend", KERAS[kind], "--spec", str(spec), "--data", str(data),
               "--batch-size", str(s.recipe.batch_size), "--optimizer", json.dumps(s.recipe.optimizer),
               "--warmup-steps", str(s.args.warmup), "--out", str(out)]
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"} | {"TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(command, env=env | {"CUDA_VISIBLE_DEVICES": ""}, capture_output=True, text=True)  # CPU
    if done.returncode:
        return {"error": f"worker exited with {done.returncode}: " + " | ".join(done.stderr.strip().splitlines()[-2:])}
    return json.loads(out.read_text())


CONTENDERS: dict[str, Callable[[Setup], dict]] = {
    "cnnzoo": run_cnnzoo,
    "cnnzoo_bf16": lambda s: run_cnnzoo(s, "precision=bf16"),
    "cnnzoo_compiled": lambda s: run_cnnzoo(s, "compile=reduce-overhead"),
    "hand": lambda s: hand_loop(s, channels_last=False),
    "hand_cl": lambda s: hand_loop(s, channels_last=True),
    "hand_cl_bf16": lambda s: hand_loop(s, channels_last=True, bf16=True),
    "naive": run_naive,
    "lightning": run_lightning,
    "lightning_manual": lambda s: run_lightning(s, ManualModule),
    **{kind: (lambda s, kind=kind: run_keras(s, kind)) for kind in KERAS},
}


BF16 = [c for c in CONTENDERS if c.endswith("_bf16")]


def skip_reason(contender: str, tf_python: str | None, device: str = "cpu") -> str:
    if contender == "cnnzoo_compiled" and device != "cuda":
        return "compile=reduce-overhead (CUDA graphs) is measured with --device cuda only"
    if contender == "keras3_torch" and importlib.util.find_spec("keras") is None:
        return "keras is not installed in this venv"
    if contender in ("keras3_tf", "tf_keras2") and not tf_python:
        return "no --tf-python given (a venv with tensorflow-cpu, and tf_keras for tf_keras2)"
    if contender in ("keras3_tf", "tf_keras2") and not Path(tf_python).exists():
        return f"--tf-python {tf_python} does not exist"
    return ""


def bench_model(model: str, contenders: list[str], args, tmp: Path) -> dict:
    """Interleaved rounds of every contender on one model: contender -> summary, skip or error."""
    r = recipe(model)
    datamodule = r.datamodule()
    datamodule.setup("fit")
    datamodule.splits = {k: tuple(t.to(args.device) for t in v) for k, v in datamodule.splits.items()}  # uint8
    s = Setup(model, r, datamodule, args, tmp)
    log(f"{model}: {len(datamodule.splits['train'][0])} training images ({datamodule.name}), "
        f"batch {r.batch_size}, {r.optimizer['name']}")
    table = {c: {"skipped": why} for c in contenders if (why := skip_reason(c, args.tf_python, args.device))}
    running = [c for c in contenders if c not in table]
    samples: dict[str, list[float]] = {c: [] for c in running}
    versions: dict[str, str] = {}  # what the Keras workers ran on
    for round_ in range(args.rounds):
        shift = round_ % max(len(running), 1)
        for contender in [c for c in running[shift:] + running[:shift] if c not in table]:  # not failed yet
            try:
                outcome = CONTENDERS[contender](s)
            except Exception as e:  # noqa: BLE001 - reported in the table, the others still run
                outcome = {"error": f"{type(e).__name__}: {e}"}
            if "error" in outcome:
                table[contender] = {"error": outcome["error"]}
            else:
                samples[contender].append(outcome["images_per_s"])
                versions[contender] = outcome.get("versions")
            log(f"{model} round {round_ + 1}/{args.rounds} {contender}: "
                + outcome.get("error", f"{outcome.get('images_per_s', 0):.0f} img/s"))
    for c in running:
        if c not in table:
            table[c] = {"median": statistics.median(samples[c]), "min": min(samples[c]), "max": max(samples[c]),
                        "rounds": [round(v, 1) for v in samples[c]], "versions": versions.get(c)}
    return {c: table[c] for c in contenders}


def ratios(results: dict) -> dict:
    """cnnzoo's median over every other measured contender's, and each bf16 one's over its fp32 one."""
    medians = {m: {c: row["median"] for c, row in table.items() if "median" in row} for m, table in results.items()}
    pairs = [("cnnzoo", c) for c in CONTENDERS if c != "cnnzoo"] + [(c, c.removesuffix("_bf16")) for c in BF16]
    return {m: {f"{a} / {b}": round(med[a] / med[b], 3) for a, b in pairs if a in med and b in med}
            for m, med in medians.items()}


def cell(row: dict) -> str:
    return span(row, 0) if "median" in row else next(iter(row))


def format_table(result: dict) -> str:
    meta, results, models = result["meta"], result["results"], list(result["results"])
    lines = [cpu_line(meta["cpu"]),
             f"{meta['date']}, torch {meta['torch']}, lightning {meta['lightning']}, {meta['threads']} torch threads, "
             f"OMP_WAIT_POLICY={meta.get('omp_wait_policy')}",
             f"training images/s: median [min-max] of {meta['rounds']} interleaved round(s) of {meta['steps']} steps "
             f"(after {meta['warmup']} untimed)", ""]
    header = [f"{m} (b{meta['recipes'][m]['batch_size']}, {meta['recipes'][m]['optimizer']})" for m in models]
    lines += markdown(["contender", *header], [[c, *(cell(results[m][c]) for m in models)] for c in meta["contenders"]])
    keys = list(dict.fromkeys(k for model in models for k in result["ratios"].get(model, {})))
    rows = [[k, *(f"{result['ratios'][m][k]:.2f}x" if k in result["ratios"].get(m, {}) else "-" for m in models)]
            for k in keys]
    lines += ["", *markdown(["ratio of medians", *models], rows)] if rows else []
    notes = {f"{c} {what}{f' on {m}' if what == 'error' else ''}: {row[what]}" for m, table in results.items()
             for c, row in table.items() for what in ("skipped", "error") if what in row}
    lines += ["", *sorted(notes)] if notes else []
    return "\n".join(lines + ([f"extras: {json.dumps(result['extras'])}"] if result.get("extras") else []))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="asl_cnn,mnist_cnn,fashion_cnn", help="comma separated recipes")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help=f"from {', '.join(CONTENDERS)}")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where the torch contenders run")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5, --quick 1)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (batches) per round (default 100)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps before them (default 20, at least 1)")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 steps after 1 (the smoke test)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for every torch contender")
    parser.add_argument("--tf-python", default=None, help="python of a venv with tensorflow-cpu (and tf_keras)")
    parser.add_argument("--extras", action="store_true", help="add Sign-MNIST CSV load times")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 5)
    args.steps = args.steps or (2 if args.quick else 100)
    args.warmup = max(1, args.warmup if args.warmup is not None else (1 if args.quick else 20))
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    if unknown := [c for c in contenders if c not in CONTENDERS]:
        parser.error(f"unknown contender(s) {', '.join(unknown)}; expected {', '.join(CONTENDERS)}")

    import lightning

    if args.threads:
        torch.set_num_threads(args.threads)  # and cnnzoo.train gets threads=N
    result: dict[str, Any] = {"meta": {
        "command": " ".join(["scripts/bench.py", *(sys.argv[1:] if argv is None else argv)]),
        "date": time.strftime("%Y-%m-%d"), "cpu": cpu_info(), "torch": torch.__version__,
        "lightning": lightning.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "rounds": args.rounds, "steps": args.steps, "warmup": args.warmup, "models": models, "contenders": contenders,
        "recipes": {m: {"batch_size": recipe(m).batch_size, "optimizer": recipe(m).optimizer["name"]} for m in models},
    }, "results": {}}
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="cnnzoo-bench-") as tmp, contextlib.redirect_stdout(sys.stderr):
        for model in models:
            result["results"][model] = bench_model(model, contenders, args, Path(tempfile.mkdtemp(dir=tmp)))
        result["ratios"] = ratios(result["results"])
        if args.extras:
            log("extras: Sign-MNIST CSV load")
            from bench_extras import extras  # noqa: PLC0415 - scripts/ is on sys.path when bench.py runs

            result["extras"] = extras(Path(tmp))
    result["meta"]["duration_s"] = round(time.time() - started, 1)
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        log(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    __import__("cnnzoo.startup").startup.imported()  # as cnnzoo.cli.run does, for every contender in this process
    main()
