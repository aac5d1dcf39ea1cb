#!/usr/bin/env python
"""Training steps on a busy machine: cnnzoo's thread choice against torch's old default.

One CPU-burning process (a busy loop) is started before a run and stopped after it; each
run is a fresh process (the OpenMP wait policy is fixed when torch starts) that trains ``--model``'s
network with its recipe's batch size and optimizer on random uint8 images for ``--warmup`` untimed
and ``--steps`` timed steps, and prints images/s.  Policies:

* ``default``  what ``python -m cnnzoo.*`` does: :func:`cnnzoo.threads.configure` before ``import torch``
               (all cores free: torch's default; some busy: one thread per free core, passive wait);
* ``old``      torch's default, untouched (one thread per core, libgomp's spin-wait).

Each round runs the four (policy, quiet|busy) cells, their order rotated; a cell is the median of
``--rounds`` rounds, [min-max] beside it, and the ratios are per round (paired), median [min-max]::

    .venv/bin/python scripts/bench_busy.py --json busy.json      # --quick: 1 round of a few steps
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
# Burns one core until stopped, or until this script is gone (it never outlives a killed benchmark).
BURNER = "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    for _ in range(200_000): pass"
CELLS = [("default", "quiet"), ("old", "quiet"), ("default", "busy"), ("old", "busy")]


def worker(policy: str, model: str, batch_size: int, optimizer: dict, warmup: int, steps: int) -> dict:
    """One run in this process: the policy first (before torch), then the steps."""
    sys.path.insert(0, str(REPO))
    choice = None
    if policy == "default":
        from cnnzoo import threads

        choice = threads.configure().reason
    import torch
    import torch.nn.functional as F

    from cnnzoo.models import create
    from cnnzoo.training.optim import create_optimizer

    torch.manual_seed(0)
    net = create(model).to(memory_format=torch.channels_last).train()
    opt = create_optimizer(net.parameters(), **optimizer)
    images = torch.randint(0, 256, (batch_size, *net.input_shape), dtype=torch.uint8)
    labels = torch.randint(0, net.num_classes, (batch_size,))
    for step in range(warmup + steps):
        if step == warmup:
            started = time.perf_counter()
        x = (images.float() / 255).contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(net(x), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {"images_per_s": steps * batch_size / (time.perf_counter() - started), "threads": torch.get_num_threads(),
            "wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"), "choice": choice}


def run_cell(policy: str, load: str, args, recipe_args: list[str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    burner = subprocess.Popen([sys.executable, "-c", BURNER]) if load == "busy" else None
    try:
        if burner:
            time.sleep(0.5)  # running before the run starts, as another user's job would be
        done = subprocess.run([sys.executable, __file__, "--worker", policy, *recipe_args], env=env,
                              capture_output=True, text=True, timeout=600)
    finally:
        if burner:
            burner.kill()
            burner.wait()
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="fashion_cnn")
    parser.add_argument("--rounds", type=int, default=None, help="default 5 (--quick 1)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per run (default 60)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps before them (default 10)")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 steps after 1 (the smoke test)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--optimizer", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 5)
    args.steps = args.steps or (3 if args.quick else 60)
    args.warmup = args.warmup or (1 if args.quick else 10)
    if args.worker:
        print(json.dumps(worker(args.worker, args.model, args.batch_size, json.loads(args.optimizer), args.warmup,
                                args.steps)))
        return {}
    sys.path[:0] = [str(SCRIPTS), str(REPO)]
    from bench_report import cpu_info, cpu_line, log, markdown, paired_lines, publish, span, spread

    from cnnzoo.recipes import recipe

    r = recipe(args.model)
    recipe_args = ["--model", args.model, "--batch-size", str(r.batch_size), "--optimizer", json.dumps(r.optimizer),
                   "--warmup", str(args.warmup), "--steps", str(args.steps)]
    samples: dict[str, list[float]] = {f"{p} {load}": [] for p, load in CELLS}
    details: dict[str, dict] = {}
    loadavg_before = Path("/proc/loadavg").read_text().split()[:3]
    for round_ in range(args.rounds):
        for policy, load in CELLS[round_ % 4:] + CELLS[:round_ % 4]:
            outcome = run_cell(policy, load, args, recipe_args)
            if "error" in outcome:
                raise SystemExit(f"{policy} {load}: {outcome['error']}")
            samples[f"{policy} {load}"].append(outcome["images_per_s"])
            details[f"{policy} {load}"] = {k: outcome[k] for k in ("threads", "wait_policy", "choice")}
            log(f"round {round_ + 1}/{args.rounds} {policy} {load}: {outcome['images_per_s']:.0f} img/s "
                f"({outcome['threads']} threads, OMP_WAIT_POLICY={outcome['wait_policy']})")
    paired = {
        "default busy / default quiet": ("default busy", "default quiet"),
        "old busy / old quiet": ("old busy", "old quiet"),
        "default quiet / old quiet": ("default quiet", "old quiet"),
        "default busy / old busy": ("default busy", "old busy"),
    }
    result = {
        "meta": {"command": " ".join(["scripts/bench_busy.py", *(sys.argv[1:] if argv is None else argv)]),
                 "date": time.strftime("%Y-%m-%d"), "cpu": cpu_info(), "model": args.model, "rounds": args.rounds,
                 "steps": args.steps, "warmup": args.warmup, "batch_size": r.batch_size,
                 "loadavg_before": loadavg_before, "loadavg_after": Path("/proc/loadavg").read_text().split()[:3]},
        "cells": {k: {**spread(v, 1), **details[k]} for k, v in samples.items()},
        "ratios": {name: spread([a / b for a, b in zip(samples[x], samples[y])]) for name, (x, y) in paired.items()},
    }
    lines = [cpu_line(result["meta"]["cpu"]),
             f"{args.model} b{r.batch_size}: images/s, median [min-max] of {args.rounds} interleaved round(s) of "
             f"{args.steps} steps; busy = one CPU-burning process started before the run", ""]
    lines += markdown(["policy, machine", "images/s", "threads", "OMP_WAIT_POLICY"],
                      [[k, span(c, 0), str(c["threads"]), c["wait_policy"]]
                       for k, c in result["cells"].items()])
    lines += paired_lines(result["ratios"], "")
    return publish(result, lines, args.json)


if __name__ == "__main__":
    main()
