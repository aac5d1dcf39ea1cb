#!/usr/bin/env python
"""Training throughput, side by side: cnnzoo against a hand loop, naive Lightning and Keras.

For each model, every contender trains ``--warmup`` untimed steps and then ``--steps`` timed ones
(a step is one batch), once per round; the contenders are interleaved and their order rotates every
round.  Each cell is the median images/s of ``--rounds`` rounds, with [min-max] beside it.  Batch
size, optimizer and data come from the model's recipe (``cnnzoo.recipes``), never from here::

    CNNZOO_DATA_DIR=/work/shared/data .venv/bin/python scripts/bench.py --json bench.json

Contenders (``--contenders``, comma separated):

* ``cnnzoo``        the real path: the config ``python -m cnnzoo.train model=<name>`` composes, run by
                    ``cnnzoo.train.train`` (DataModule, ClassifierModule, callbacks, logger, Trainer)
                    for ``warmup + steps`` batches, a timing callback added.
* ``hand``          a minimal PyTorch loop over the DataModule's batches: same network and optimizer, NCHW.
* ``hand_cl``       the hand loop with channels_last (the layout cnnzoo trains in).
* ``naive``         the Lightning baseline a user writes first: ``DataLoader(TensorDataset)``, per-step
                    ``self.log(..., prog_bar=True)`` of loss and accuracy, Lightning's defaults.
* ``keras3_torch``  Keras 3 ``model.fit`` on the torch backend (a ``bench_keras_worker.py`` subprocess).
* ``keras3_tf``, ``tf_keras2``  Keras 3 and Keras 2 on TensorFlow (``--tf-python <venv python>``).

``--extras`` adds the Sign-MNIST CSV load time (no cache / cached) and, for a whole ``python -m
cnnzoo.train`` process, the time to its first optimizer step and its peak RSS.  ``--quick`` is one
round of a few steps (tests/test_bench_smoke.py runs it on tiny generated data).
"""

from __future__ import annotations

import argparse
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

import lightning.pytorch as pl

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().with_name("bench_keras_worker.py")
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MODELS = ("asl_cnn", "mnist_cnn", "fashion_cnn")
KERAS = {"keras3_torch": "torch", "keras3_tf": "tensorflow", "tf_keras2": "tf_keras"}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class StepTimer(pl.Callback):
    """Times steps ``warmup + 1 ..``: from the end of step ``warmup`` to the end of the last one.
    Lightning calls it after every batch; the hand loop calls ``tick`` itself."""

    last: StepTimer | None = None  # the one ``cnnzoo.train`` instantiated from the config

    def __init__(self, warmup: int) -> None:
        self.warmup, self.steps, self.samples = warmup, 0, 0
        self.begin = self.end = 0.0
        StepTimer.last = self

    def tick(self, samples: int) -> None:
        self.steps += 1
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


class FirstStep(pl.Callback):
    """For ``--extras``: writes the wall-clock time of the first optimizer step to $BENCH_FIRST_STEP."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        path = Path(os.environ["BENCH_FIRST_STEP"])
        if not path.exists():
            path.write_text(str(time.time()))


@dataclasses.dataclass
class Setup:
    """One model's recipe and data, shared by its contenders."""

    model: str
    recipe: Any  # cnnzoo.recipes.Recipe
    datamodule: Any  # set up: .splits["train"] holds the uint8 training split
    warmup: int
    steps: int
    tmp: Path
    tf_python: str | None
    threads: int | None

    @property
    def batch_size(self) -> int:
        return self.recipe.batch_size

    def subset(self):
        """The first ``warmup + steps`` batches' worth of training images and labels."""
        images, labels = self.datamodule.splits["train"]
        n = (self.warmup + self.steps) * self.batch_size
        return images[:n], labels[:n]


def hydra_config(overrides: list[str], run_dir: Path):
    """The config ``python -m cnnzoo.train <overrides>`` runs with, installed as the current Hydra
    config (as tests/conftest.py's compose_run does) so that ``cnnzoo.train.train`` can run in-process."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    with initialize_config_dir(str(REPO / "conf"), version_base="1.3", job_name="train"):
        cfg = compose("train", overrides=[*overrides, f"hydra.run.dir={run_dir}"], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig().set_config(cfg)
    return cfg


def run_cnnzoo(s: Setup) -> dict:
    from cnnzoo.train import train

    run_dir = Path(tempfile.mkdtemp(prefix="cnnzoo_", dir=s.tmp))
    threads = [f"threads={s.threads}"] if s.threads else []
    cfg = hydra_config([*s.recipe.overrides, "trainer.max_epochs=1", "test=false", *threads,
                        f"+trainer.limit_train_batches={s.warmup + s.steps}", "+trainer.limit_val_batches=1",
                        f"+callbacks.bench_timer._target_={__name__}.StepTimer",
                        f"+callbacks.bench_timer.warmup={s.warmup}"], run_dir)
    outcome = train(cfg)
    shutil.rmtree(run_dir, ignore_errors=True)
    if outcome["status"] != "completed":
        return {"error": f"cnnzoo.train {outcome['status']}: {outcome['error']}"}
    return StepTimer.last.result()


def hand_loop(s: Setup, channels_last: bool) -> dict:
    import torch
    import torch.nn.functional as F

    from cnnzoo.training.optim import create_optimizer

    torch.manual_seed(42)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    net = s.recipe.network().to(memory_format=layout).train()
    optimizer = create_optimizer(net.parameters(), **s.recipe.optimizer)
    timer = StepTimer(s.warmup)
    for step, (images, labels) in enumerate(s.datamodule.train_dataloader()):
        if step == s.warmup + s.steps:
            break
        loss = F.cross_entropy(net(images.contiguous(memory_format=layout)), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        timer.tick(len(labels))
    return timer.result()


class NaiveModule(pl.LightningModule):
    """What a user writes first: the network, cross-entropy, per-step logging on the progress bar."""

    def __init__(self, net, optimizer: dict) -> None:
        super().__init__()
        self.net, self.optimizer_config = net, optimizer

    def training_step(self, batch, batch_idx):
        import torch.nn.functional as F

        images, labels = batch
        logits = self.net(images)
        loss = F.cross_entropy(logits, labels)
        self.log("train_loss", loss, on_step=True, prog_bar=True)
        self.log("train_acc", (logits.argmax(dim=1) == labels).float().mean(), on_step=True, prog_bar=True)
        return loss

    def configure_optimizers(self):
        from cnnzoo.training.optim import create_optimizer

        return create_optimizer(self.parameters(), **self.optimizer_config)


def run_naive(s: Setup) -> dict:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(42)
    images, labels = s.subset()
    loader = DataLoader(TensorDataset(images.float() / 255.0, labels), batch_size=s.batch_size, shuffle=True)
    timer = StepTimer(s.warmup)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, callbacks=[timer],
                         default_root_dir=tempfile.mkdtemp(prefix="naive_", dir=s.tmp))
    trainer.fit(NaiveModule(s.recipe.network(), s.recipe.optimizer), train_dataloaders=loader)
    return timer.result()


def run_keras(s: Setup, kind: str) -> dict:
    """``bench_keras_worker.py`` on this model's subset, with the recipe's network, batch and optimizer."""
    import numpy as np

    from cnnzoo.models import specs

    data, spec, out = s.tmp / f"{s.model}.npz", s.tmp / f"{s.model}.json", s.tmp / "keras_result.json"
    if not data.exists():
        images, labels = s.subset()
        np.savez(data, x=images.permute(0, 2, 3, 1).contiguous().numpy(), y=labels.numpy())
        layers = [{"kind": layer.kind, "fields": dataclasses.asdict(layer)}
                  for layer in specs(s.recipe.arch, s.datamodule.num_classes)]
        spec.write_text(json.dumps({"input_shape": list(s.datamodule.input_shape), "layers": layers}))
    python = sys.executable if kind == "keras3_torch" else s.tf_python
    command = [python, str(WORKER), "--backend", KERAS[kind], "--spec", str(spec), "--data", str(data),
               "--batch-size", str(s.batch_size), "--optimizer", json.dumps(s.recipe.optimizer),
               "--warmup-steps", str(s.warmup), "--out", str(out)]
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    done = subprocess.run(command, env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"}, capture_output=True, text=True)
    if done.returncode:
        return {"error": f"worker exited with {done.returncode}: " + " | ".join(done.stderr.strip().splitlines()[-2:])}
    return json.loads(out.read_text())


CONTENDERS: dict[str, Callable[[Setup], dict]] = {
    "cnnzoo": run_cnnzoo,
    "hand": lambda s: hand_loop(s, channels_last=False),
    "hand_cl": lambda s: hand_loop(s, channels_last=True),
    "naive": run_naive,
    **{kind: (lambda s, kind=kind: run_keras(s, kind)) for kind in KERAS},
}


def skip_reason(contender: str, tf_python: str | None) -> str:
    if contender == "keras3_torch" and importlib.util.find_spec("keras") is None:
        return "keras is not installed in this venv"
    if contender in ("keras3_tf", "tf_keras2"):
        if not tf_python:
            return "no --tf-python given (a venv with tensorflow-cpu, and tf_keras for tf_keras2)"
        if not Path(tf_python).exists():
            return f"--tf-python {tf_python} does not exist"
    return ""


def bench_model(model: str, contenders: list[str], args, tmp: Path) -> dict:
    """Interleaved rounds of every contender on one model: contender -> summary, skip or error."""
    from cnnzoo.recipes import recipe

    r = recipe(model)
    datamodule = r.datamodule()
    datamodule.setup("fit")
    s = Setup(model, r, datamodule, args.warmup, args.steps, tmp, args.tf_python, args.threads)
    log(f"{model}: {len(datamodule.splits['train'][0])} training images ({datamodule.name}), "
        f"batch {r.batch_size}, {r.optimizer['name']}")
    table: dict[str, dict] = {}
    for contender in contenders:
        if reason := skip_reason(contender, args.tf_python):
            table[contender] = {"skipped": reason}
    running = [c for c in contenders if c not in table]
    samples: dict[str, list[float]] = {c: [] for c in running}
    for round_ in range(args.rounds):
        shift = round_ % max(len(running), 1)
        for contender in running[shift:] + running[:shift]:
            if contender in table:  # it failed in an earlier round
                continue
            try:
                outcome = CONTENDERS[contender](s)
            except Exception as e:  # noqa: BLE001 - reported in the table, the others still run
                outcome = {"error": f"{type(e).__name__}: {e}"}
            if "error" in outcome:
                table[contender] = {"error": outcome["error"]}
                log(f"{model} round {round_ + 1} {contender}: {outcome['error']}")
                continue
            samples[contender].append(outcome["images_per_s"])
            if "versions" in outcome:
                table.setdefault("_versions", {})[contender] = outcome["versions"]
            log(f"{model} round {round_ + 1}/{args.rounds} {contender}: {outcome['images_per_s']:.0f} img/s")
    versions = table.pop("_versions", {})
    for contender, values in samples.items():
        if contender not in table:
            table[contender] = {"median": statistics.median(values), "min": min(values), "max": max(values),
                                "rounds": [round(v, 1) for v in values], "versions": versions.get(contender)}
    return {c: table[c] for c in contenders}


def ratios(results: dict) -> dict:
    """cnnzoo's median over every other measured contender's, per model."""
    out = {}
    for model, table in results.items():
        medians = {c: row["median"] for c, row in table.items() if "median" in row}
        if "cnnzoo" in medians:
            out[model] = {f"cnnzoo / {c}": round(medians["cnnzoo"] / v, 3) for c, v in medians.items() if c != "cnnzoo"}
    return out


def cpu_info() -> dict:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    return {"model": fields.get("model name") or platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "bf16_flags": {flag: flag in flags for flag in ("avx512_bf16", "amx_bf16")}}


def extras(tmp: Path) -> dict:
    """Sign-MNIST CSV load (no cache, then cached) and a whole ``cnnzoo.train`` process's start-up."""
    from cnnzoo.data.sources import SIGN_MNIST, default_data_dir

    out: dict[str, Any] = {}
    source = default_data_dir() / SIGN_MNIST.folder
    if source.is_dir():
        root = tmp / "csv"
        shutil.copytree(source, root / SIGN_MNIST.folder)
        saved, os.environ["XDG_CACHE_HOME"] = os.environ.get("XDG_CACHE_HOME"), str(root / "cache")
        times = []  # the first load finds an empty cache and parses the CSVs
        for _ in range(4):
            started = time.perf_counter()
            SIGN_MNIST.load(root)
            times.append(time.perf_counter() - started)
        os.environ.pop("XDG_CACHE_HOME") if saved is None else os.environ.update(XDG_CACHE_HOME=saved)
        out["sign_mnist_csv_load_s"] = {"no_cache": round(times[0], 3), "cached": round(statistics.median(times[1:]), 3)}
    else:
        out["sign_mnist_csv_load_s"] = {"error": f"{source} not found"}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(WORKER.parent), str(REPO)]),
           "BENCH_FIRST_STEP": str(tmp / "first_step")}
    started = time.time()
    subprocess.run([sys.executable, "-c", "import torch, lightning, hydra"], env=env, check=True)
    out["import_torch_lightning_hydra_s"] = round(time.time() - started, 2)
    command = [sys.executable, "-m", "cnnzoo.train", "model=asl_cnn", "trainer.max_epochs=1", "test=false",
               "+trainer.limit_train_batches=5", f"hydra.run.dir={tmp / 'startup'}",
               "+callbacks.first_step._target_=bench.FirstStep"]
    started = time.time()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    if status or not (tmp / "first_step").exists():
        out["cnnzoo_train"] = {"error": process.stderr.read().decode()[-500:]}
    else:
        out["cnnzoo_train"] = {"command": " ".join(command[1:]), "wall_s": round(time.time() - started, 2),
                               "first_step_s": round(float((tmp / "first_step").read_text()) - started, 2),
                               "peak_rss_mb": round(usage.ru_maxrss / 1024)}
    return out


def format_table(result: dict) -> str:
    meta, results = result["meta"], result["results"]
    cpu = meta["cpu"]
    flags = ", ".join(f"{flag} {'yes' if on else 'no'}" for flag, on in cpu["bf16_flags"].items())
    lines = [f"CPU: {cpu['model']} ({cpu['cores']} cores); bf16 flags: {flags}",
             f"{meta['date']}, torch {meta['torch']}, lightning {meta['lightning']}, {meta['torch_threads']} torch threads",
             f"training images/s: median [min-max] of {meta['rounds']} interleaved round(s) of {meta['steps']} steps "
             f"(after {meta['warmup']} untimed)", ""]
    models = list(results)
    lines += ["| contender | " + " | ".join(f"{m} (b{meta['recipes'][m]['batch_size']}, "
                                           f"{meta['recipes'][m]['optimizer']})" for m in models) + " |",
              "|---" * (len(models) + 1) + "|"]
    notes = []
    for contender in meta["contenders"]:
        cells = []
        for model in models:
            row = results[model][contender]
            if "median" in row:
                cells.append(f"{row['median']:,.0f} [{row['min']:,.0f}-{row['max']:,.0f}]")
            else:
                cells.append("skipped" if "skipped" in row else "error")
                notes.append(f"{contender} on {model}: {row.get('skipped') or row.get('error')}")
        lines.append(f"| {contender} | " + " | ".join(cells) + " |")
    keys = list(dict.fromkeys(k for model in models for k in result["ratios"].get(model, {})))
    if keys:
        lines += ["", "| ratio of medians | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
        for key in keys:
            values = [result["ratios"].get(m, {}).get(key) for m in models]
            lines.append(f"| {key} | " + " | ".join("-" if v is None else f"{v:.2f}x" for v in values) + " |")
    lines += [""] * bool(notes) + list(dict.fromkeys(notes))
    if result.get("extras"):
        lines.append(f"extras: {json.dumps(result['extras'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS), help="comma separated recipes")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help=f"from {', '.join(CONTENDERS)}")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5, --quick 1)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (batches) per round (default 100)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps before them (default 20, at least 1)")
    parser.add_argument("--quick", action="store_true", help="1 round of 4 steps after 2 (the smoke test)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for every torch contender")
    parser.add_argument("--tf-python", default=None, help="python of a venv with tensorflow-cpu (and tf_keras)")
    parser.add_argument("--extras", action="store_true", help="add CSV load times and a cnnzoo.train start-up")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 5)
    args.steps = args.steps or (4 if args.quick else 100)
    args.warmup = max(1, args.warmup if args.warmup is not None else (2 if args.quick else 20))
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    if unknown := [c for c in contenders if c not in CONTENDERS]:
        parser.error(f"unknown contender(s) {', '.join(unknown)}; expected {', '.join(CONTENDERS)}")

    import lightning
    import torch

    from cnnzoo.recipes import recipe

    if args.threads:
        torch.set_num_threads(args.threads)  # and cnnzoo.train gets threads=N
    result: dict[str, Any] = {"meta": {
        "command": " ".join(["scripts/bench.py", *(sys.argv[1:] if argv is None else argv)]),
        "date": time.strftime("%Y-%m-%d"), "cpu": cpu_info(), "torch": torch.__version__,
        "lightning": lightning.__version__, "python": platform.python_version(), "torch_threads": torch.get_num_threads(),
        "rounds": args.rounds, "steps": args.steps, "warmup": args.warmup, "models": models,
        "contenders": contenders,
        "recipes": {m: {"batch_size": recipe(m).batch_size, "optimizer": recipe(m).optimizer["name"]} for m in models},
    }, "results": {}}
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="cnnzoo-bench-") as tmp:
        for model in models:
            model_tmp = Path(tmp) / model
            model_tmp.mkdir()
            result["results"][model] = bench_model(model, contenders, args, model_tmp)
        result["ratios"] = ratios(result["results"])
        if args.extras:
            log("extras: Sign-MNIST CSV load, cnnzoo.train start-up")
            result["extras"] = extras(Path(tmp))
    result["meta"]["duration_s"] = round(time.time() - started, 1)
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        log(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
