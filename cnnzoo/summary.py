"""``python -m cnnzoo.summary model=<name> [data=...]``: print a model's Keras-style summary.

The network is sized from the configured DataModule (class count, input shape after any resize)
exactly as ``cnnzoo.train`` sizes it, but no data is loaded and nothing is written.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from cnnzoo.cli import run, user_errors
from cnnzoo.models import create, summary


@hydra.main(version_base="1.3", config_path="../conf", config_name="summary")
def main(cfg: DictConfig) -> None:
    with user_errors():
        datamodule = hydra.utils.instantiate(cfg.data)
        net = create(cfg.model.arch, num_classes=datamodule.num_classes, input_shape=datamodule.input_shape)
        print(summary(net))


if __name__ == "__main__":
    run(main)  # cnnzoo.cli: an unknown key gets one line naming the closest one
