#!/usr/bin/env python
"""One epoch as a whole process: ``python -m cnnzoo.train`` against a hand-written loop's process.

Each contender is a fresh process timed from start to exit (imports, data load, one training epoch,
one evaluation of the test file, writing results), interleaved and rotated over ``--rounds``; a cell
is the median wall time, [min-max] beside it, ratios are paired per round.  Beside the wall time: each
process's peak RSS, and for the cnnzoo contenders the time to the end of their first optimizer step
(``bench_probe.FirstStep``, a callback added by the command line)::

    CNNZOO_DATA_DIR=/work/shared/data .venv/bin/python scripts/bench_whole_run.py --json whole.json

* ``cnnzoo``       ``python -m cnnzoo.train model=<model> trainer.max_epochs=1`` (fp32, the default);
* ``cnnzoo_auto``  the same with ``precision=auto`` (bf16 where the CPU has amx_bf16/avx512_bf16);
* ``cnnzoo_glibc`` the same with glibc's malloc left as it is (``MALLOC_ARENA_MAX`` set to its default,
                   8 x cores, which tells ``cnnzoo.memory`` the user chose): what the malloc tuning gains;
* ``hand``         this file's ``--hand``: torch, the recipe's network/optimizer/batch size, channels_last,
                   the same cached uint8 arrays, one epoch, one pass over the test file, no Lightning;
* ``tf_keras2``    only with ``--tf-python``: ``bench_keras_worker.py`` on the whole training split (one
                   ``model.fit`` epoch, no test pass).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
CONTENDERS = ["cnnzoo", "cnnzoo_auto", "cnnzoo_glibc", "hand", "tf_keras2"]


def hand(model: str, batch_size: int, optimizer: dict) -> dict:
    """The hand loop's whole run (this process): what cnnzoo.train does, without the framework."""
    sys.path.insert(0, str(REPO))
    from cnnzoo import threads

    threads.configure()  # the same thread choice as the entry points, before torch (glibc's malloc as it is)
    import torch
    import torch.nn.functional as F

    from cnnzoo.data.config import data_spec
    from cnnzoo.models import create
    from cnnzoo.recipes import compose_train_config
    from cnnzoo.training.optim import create_optimizer

    data = data_spec(compose_train_config(f"model={model}").data)
    arrays = data.source.load(data.data_dir)
    (x, y), (tx, ty) = ((torch.from_numpy(a).unsqueeze(1), torch.from_numpy(b).long()) for a, b in
                        (arrays["train"], arrays["test"]))
    torch.manual_seed(42)
    net = create(model, num_classes=data.num_classes).to(memory_format=torch.channels_last).train()
    opt = create_optimizer(net.parameters(), **optimizer)
    prep = data.preprocess
    for idx in torch.randperm(len(x)).split(batch_size):
        loss = F.cross_entropy(net(prep(x[idx]).contiguous(memory_format=torch.channels_last)), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        hits = sum(int((net(prep(tx[i:i + 256]).contiguous(memory_format=torch.channels_last)).argmax(1)
                        == ty[i:i + 256]).sum()) for i in range(0, len(tx), 256))
    return {"test_accuracy": hits / len(tx), "train_images": len(x)}


@dataclasses.dataclass
class Run:
    args: argparse.Namespace
    tmp: Path
    recipe: object

    def command(self, contender: str) -> list[str] | None:
        train = [sys.executable, "-m", "cnnzoo.train", f"model={self.args.model}", "trainer.max_epochs=1",
                 f"hydra.run.dir={tempfile.mkdtemp(dir=self.tmp)}", "trainer.accelerator=cpu",
                 "+callbacks.first_step._target_=bench_probe.FirstStep"]
        if contender == "cnnzoo":
            return train
        if contender == "cnnzoo_auto":
            return [*train, "precision=auto"]
        if contender == "cnnzoo_glibc":
            return ["env", f"MALLOC_ARENA_MAX={8 * (os.cpu_count() or 1)}", *train]
        if contender == "hand":
            return [sys.executable, __file__, "--hand", "--model", self.args.model, "--batch-size",
                    str(self.recipe.batch_size), "--optimizer", json.dumps(self.recipe.optimizer)]
        return self.keras_command()

    def keras_command(self) -> list[str]:
        import numpy as np

        from bench import WORKER, specs  # the same spec format as bench.py

        data, spec = self.tmp / "train.npz", self.tmp / "spec.json"
        if not data.exists():
            dm = self.recipe.datamodule()
            dm.setup("fit")
            images, labels = dm.splits["train"]
            np.savez(data, x=images.permute(0, 2, 3, 1).contiguous().numpy(), y=labels.numpy())
            layers = [{"kind": s.kind, "fields": dataclasses.asdict(s)} for s in specs(self.recipe.arch, dm.num_classes)]
            spec.write_text(json.dumps({"input_shape": list(dm.input_shape), "layers": layers}))
        return [self.args.tf_python, str(WORKER), "--backend", "tf_keras", "--spec", str(spec), "--data", str(data),
                "--batch-size", str(self.recipe.batch_size), "--optimizer", json.dumps(self.recipe.optimizer),
                "--warmup-steps", "1", "--out", str(self.tmp / "keras.json")]


def timed(command: list[str], tmp: Path) -> dict | str:
    """Wall s, peak RSS (MB) and, where the process wrote it, the first step (s after the start); or an error."""
    first_step = tmp / "first_step"
    first_step.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    env |= {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
            "BENCH_FIRST_STEP": str(first_step), "PYTHONPATH": os.pathsep.join(filter(None, [str(SCRIPTS),
                                                                                            env.get("PYTHONPATH")]))}
    with open(tmp / "output.log", "w+") as output:
        started, clock = time.time(), time.perf_counter()
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=output)
        deadline = threading.Timer(900, process.kill)  # a hung contender ends as an error, not a hung benchmark
        deadline.start()
        _, status, usage = os.wait4(process.pid, 0)  # usage: this child's own peak RSS
        wall = time.perf_counter() - clock
        deadline.cancel()
        if status:
            output.seek(0)
            return f"exit {os.waitstatus_to_exitcode(status)}: {output.read().strip()[-300:]}"
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024,
            **({"first_step_s": float(first_step.read_text()) - started} if first_step.exists() else {})}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="asl_cnn")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--rounds", type=int, default=None, help="default 5 (--quick 1)")
    parser.add_argument("--quick", action="store_true", help="1 round (the smoke test, on whatever data is there)")
    parser.add_argument("--tf-python", default=None, help="python of a venv with tensorflow-cpu and tf_keras")
    parser.add_argument("--json", default=None)
    parser.add_argument("--hand", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--optimizer", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hand:
        print(json.dumps(hand(args.model, args.batch_size, json.loads(args.optimizer))))
        return {}
    args.rounds = args.rounds or (1 if args.quick else 5)
    sys.path[:0] = [str(SCRIPTS), str(REPO)]
    from bench_report import cpu_info, cpu_line, log, markdown, paired_lines, publish, span, spread

    from cnnzoo.recipes import recipe

    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    skipped = {"tf_keras2": "no --tf-python given (a venv with tensorflow-cpu and tf_keras)"} if not args.tf_python else {}
    running = [c for c in contenders if c not in skipped]
    walls: dict[str, list[float]] = {c: [] for c in running}
    probes: dict[str, dict[str, list[float]]] = {c: {} for c in running}  # first_step_s, peak_rss_mb
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="cnnzoo-whole-") as tmp:
        run = Run(args, Path(tmp), recipe(args.model))
        for round_ in range(args.rounds):
            shift = round_ % len(running)
            for contender in [c for c in running[shift:] + running[:shift] if c not in errors]:
                outcome = timed(run.command(contender), Path(tmp))
                if isinstance(outcome, str):
                    errors[contender] = outcome
                else:
                    walls[contender].append(outcome.pop("wall_s"))
                    for key, value in outcome.items():
                        probes[contender].setdefault(key, []).append(value)
                log(f"round {round_ + 1}/{args.rounds} {contender}: "
                    + (outcome if isinstance(outcome, str) else f"{walls[contender][-1]:.1f} s"))
    cells = {c: spread(v, 2) for c, v in walls.items() if c not in errors}
    probed = {c: {key: spread(v, 2) for key, v in probes[c].items()} for c in cells}
    # speed ratios, the anchor's wall time over the contender's (>= 1: as fast as the anchor), paired per round
    per_round = {f"{anchor} / {c}": [a / w for a, w in zip(walls[anchor], walls[c])]
                 for anchor in ("hand", "tf_keras2") if anchor in cells
                 for c in cells if c != anchor and not (anchor == "tf_keras2" and c == "hand")}
    ratios = {k: spread(v) for k, v in per_round.items()}
    result = {"meta": {"command": " ".join(["scripts/bench_whole_run.py", *(sys.argv[1:] if argv is None else argv)]),
                       "date": time.strftime("%Y-%m-%d"), "cpu": cpu_info(), "model": args.model,
                       "rounds": args.rounds, "contenders": contenders},
              "wall_s": {**cells, **{c: {"skipped": why} for c, why in skipped.items() if c in contenders},
                         **{c: {"error": e} for c, e in errors.items()}},
              "ratios": ratios, "probes": probed}

    lines = [cpu_line(result["meta"]["cpu"]),
             f"{args.model}, one epoch as a whole process: median [min-max] of {args.rounds} interleaved round(s)", ""]
    lines += markdown(["contender", "wall s", "first step s", "peak RSS MB"],
                      [[c, span(r, 1), *(span(probed[c][key], digits) if key in probed[c] else "-"
                                         for key, digits in (("first_step_s", 2), ("peak_rss_mb", 0)))]
                       if "median" in r else [c, next(iter(r.values())), "", ""] for c, r in result["wall_s"].items()])
    lines += paired_lines(ratios)  # the anchor's wall time over the contender's: >= 1 is as fast as the anchor
    return publish(result, lines, args.json)


if __name__ == "__main__":
    main()
