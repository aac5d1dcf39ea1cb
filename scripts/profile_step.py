#!/usr/bin/env python
"""Where a training step's time goes: torch.profiler over a few steps of one cnnzoo model.

Usage: python scripts/profile_step.py fashion_cnn [--batch N] [--steps 100] [--threads 1] [--nchw]

Runs the step cnnzoo runs for a recipe (its network, cross-entropy, its optimizer and batch size, all
read from ``conf/`` through ``cnnzoo.recipes``) on random batches of the recipe's input shape, with
the layout cnnzoo uses (channels_last unless ``--nchw``), and prints
the operators by self CPU time, plus the share of the step spent in convolutions, ReLU, pooling,
dense layers and BatchNorm (forward and backward each), the optimizer step, and everything else.  ``docs/performance.md`` quotes its output to
explain what limits throughput on CPU.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from cnnzoo.recipes import recipe
from cnnzoo.training.optim import create_optimizer

CATEGORIES = {  # operator-name fragments per part of the network
    "convolutions": ("convolution",),
    "relu": ("clamp_min", "threshold_backward", "aten::relu"),
    "pooling": ("max_pool2d",),
    "dense": ("aten::mm", "aten::addmm"),
    "batchnorm": ("batch_norm",),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a recipe: model=<name> or experiment=<name>")
    parser.add_argument("--batch", type=int, default=None, help="default: the recipe's batch size")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--nchw", action="store_true", help="keep torch's default NCHW layout")
    parser.add_argument("--rows", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    r = recipe(args.model)
    datamodule = r.datamodule()  # for its shapes; nothing is read from disk
    args.batch = args.batch or r.batch_size
    layout = torch.contiguous_format if args.nchw else torch.channels_last
    net = r.network().to(memory_format=layout).train()
    optimizer = create_optimizer(net.parameters(), **r.optimizer)
    images = torch.rand(args.batch, *datamodule.input_shape).contiguous(memory_format=layout)
    labels = torch.randint(0, datamodule.num_classes, (args.batch,))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(net(images), labels).backward()
        optimizer.step()

    for _ in range(20):  # warm-up: oneDNN primitive caches
        step()
    started = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    elapsed = time.perf_counter() - started
    events = prof.key_averages()
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.rows))
    total = sum(e.self_cpu_time_total for e in events)
    shares = {name: sum(e.self_cpu_time_total for e in events if any(k in e.key for k in keys))
              for name, keys in CATEGORIES.items()}
    # The optimizer's own ops (sqrt, lerp_, addcdiv_...) are counted through its step's total time.
    shares["optimizer step"] = sum(e.cpu_time_total for e in events if e.key.startswith("Optimizer."))
    shares["other"] = total - sum(shares.values())
    print(f"{args.model} batch {args.batch}, {r.optimizer['name']}, {'NCHW' if args.nchw else 'channels_last'}, {args.threads} thread(s): "
          f"{args.batch * args.steps / elapsed:.0f} img/s under the profiler; share of op time: "
          + ", ".join(f"{name} {100 * value / total:.0f}%" for name, value in shares.items()))

if __name__ == "__main__":
    main()
