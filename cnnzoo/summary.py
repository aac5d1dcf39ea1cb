"""``python -m cnnzoo.summary model=<name> [data=...]``: print a model's Keras-style summary.

The network is sized from the configured data (class count, input shape after any resize) exactly
as ``cnnzoo.train`` sizes it, but no data is loaded, nothing is written, and Lightning is not
imported (``cnnzoo.data.config`` reads the sizes; a DataModule of another package is instantiated).
"""

from __future__ import annotations

from cnnzoo.startup import begin

begin(__name__)  # before torch: --help answered without it; threads and OpenMP wait policy chosen

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from cnnzoo.cli import run, user_errors  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="summary")
def main(cfg: DictConfig) -> None:
    with user_errors():
        from cnnzoo.data.config import data_spec
        from cnnzoo.models import create, summary

        data = data_spec(cfg.data) or hydra.utils.instantiate(cfg.data)
        net = create(cfg.model.arch, num_classes=data.num_classes, input_shape=data.input_shape)
        print(summary(net))


if __name__ == "__main__":
    run(main)  # cnnzoo.cli: an unknown key gets one line naming the closest one
