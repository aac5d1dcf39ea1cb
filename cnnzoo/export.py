"""``python -m cnnzoo.export ckpt_path=<ckpt> [format=onnx|torchscript|export|keras|h5] [output=<path>]``.

A thin Hydra entry point: the writers live in :mod:`cnnzoo.interop.deploy`.
"""

from __future__ import annotations

from cnnzoo.startup import begin

begin(__name__)  # before torch: --help answered without it; threads and OpenMP wait policy chosen

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from cnnzoo.cli import apply_threads, run, user_errors  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="export")
def main(cfg: DictConfig) -> None:
    with user_errors():
        from cnnzoo.interop.deploy import export_checkpoint  # torch only once the config is read (not for --help)

        apply_threads(cfg)
        exported = export_checkpoint(cfg.ckpt_path, cfg.format, cfg.output, cfg.overwrite)
        print(f"Wrote {exported.path}")
        for line in exported.lines:
            print(line)


if __name__ == "__main__":
    run(main)  # cnnzoo.cli: an unknown key gets one line naming the closest one
