"""``python -m cnnzoo.export ckpt_path=<ckpt> [format=onnx|torchscript|export|keras|h5] [output=<path>]``.

A thin Hydra entry point: the writers live in :mod:`cnnzoo.interop.deploy` (and
:mod:`cnnzoo.interop.keras_writer`).  It prints the file written and its input contract.
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
        exported = export_checkpoint(cfg.ckpt_path, cfg.format, cfg.output)
        print(f"Wrote {exported.path}")
        for line in exported.lines:
            print(line)


if __name__ == "__main__":
    run(main)  # cnnzoo.cli: an unknown key gets one line naming the closest one
