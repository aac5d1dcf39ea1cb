"""``python -m cnnzoo.export ckpt_path=<ckpt> [format=onnx|torchscript|export] [output=<path>]``.

A thin Hydra entry point: the writers live in :mod:`cnnzoo.interop.deploy`.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from cnnzoo.cli import apply_threads, run, user_errors
from cnnzoo.interop.deploy import export_checkpoint


@hydra.main(version_base="1.3", config_path="../conf", config_name="export")
def main(cfg: DictConfig) -> None:
    with user_errors():
        apply_threads(cfg)
        print(f"Wrote {export_checkpoint(cfg.ckpt_path, cfg.format, cfg.output)}")


if __name__ == "__main__":
    run(main)  # cnnzoo.cli: an unknown key gets one line naming the closest one
