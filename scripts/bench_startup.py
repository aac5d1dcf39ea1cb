#!/usr/bin/env python
"""Start-to-exit wall time of the light entry points against ``python -c "import torch"``.

``python -m cnnzoo.predict`` of one image (an untrained asl_cnn checkpoint written here) and
``python -m cnnzoo.summary model=asl_cnn``, each a fresh process, interleaved with the import of
torch alone and rotated over ``--rounds``; cells are median [min-max] seconds, ratios are paired
per round (the entry point's time over torch's import)::

    .venv/bin/python scripts/bench_startup.py --json startup.json     # --quick: 1 round
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent


def checkpoint(folder: Path) -> tuple[Path, Path]:
    """An untrained asl_cnn checkpoint (what read_checkpoint needs) and one 28x28 PNG."""
    import torch
    from PIL import Image

    sys.path.insert(0, str(REPO))
    from cnnzoo.models import create, layer_configs

    net = create("asl_cnn")
    hparams = {"arch": "asl_cnn", "num_classes": 24, "input_shape": [1, 28, 28], "layers": layer_configs(net.specs),
               "data_config": {"_target_": "cnnzoo.data.SignMNISTDataModule"}}
    path, image = folder / "asl.ckpt", folder / "a.png"
    torch.save({"hyper_parameters": hparams, "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, path)
    Image.new("L", (28, 28), 100).save(image)
    return path, image


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=None, help="default 7 (--quick 1)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 7)
    sys.path[:0] = [str(SCRIPTS), str(REPO)]
    from bench_report import cpu_info, cpu_line, log, markdown, paired_lines, publish, span, spread

    with tempfile.TemporaryDirectory(prefix="cnnzoo-startup-") as tmp:
        ckpt, image = checkpoint(Path(tmp))
        commands = {
            "import torch": [sys.executable, "-c", "import torch"],
            "predict (1 image)": [sys.executable, "-m", "cnnzoo.predict", f"ckpt_path={ckpt}", f"inputs=[{image}]",
                                  f"hydra.run.dir={tmp}/predict"],
            "summary": [sys.executable, "-m", "cnnzoo.summary", "model=asl_cnn"],
        }
        names = list(commands)
        walls: dict[str, list[float]] = {n: [] for n in names}
        for round_ in range(rounds):
            for name in names[round_ % 3:] + names[:round_ % 3]:
                started = time.perf_counter()
                subprocess.run(commands[name], cwd=REPO, check=True, capture_output=True)
                walls[name].append(time.perf_counter() - started)
                log(f"round {round_ + 1}/{rounds} {name}: {walls[name][-1]:.2f} s")

    result = {"meta": {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_info(), "rounds": rounds,
                       "loadavg": Path("/proc/loadavg").read_text().split()[:3]},
              "wall_s": {n: spread(v) for n, v in walls.items()},
              "ratios": {f"{n} / import torch": spread([a / b for a, b in zip(walls[n], walls["import torch"])])
                         for n in names[1:]}}
    lines = [cpu_line(result["meta"]["cpu"]),
             f"start-to-exit wall s, median [min-max] of {rounds} interleaved round(s)", ""]
    lines += markdown(["process", "wall s"], [[n, span(v)]
                                              for n, v in result["wall_s"].items()])
    lines += paired_lines(result["ratios"], "x")
    return publish(result, lines, args.json)


if __name__ == "__main__":
    main()
