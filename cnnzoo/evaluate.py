"""``python -m cnnzoo.evaluate ckpt_path=<ckpt>``: test a trained model and show what it gets wrong.

Writes into its own Hydra run dir: ``metrics.json`` (test loss, accuracy, macro F1, top-5, the
confusion matrix and the misclassified indices), ``confusion_matrix.png``, ``misclassified.png``
(up to 24 images titled index / predicted / expected, like notebook 001) and the same figures in
``tensorboard/``.  The data is the checkpoint's own unless ``data=<name>`` is given.  A Keras file
(``keras_model=<file> data=<name>``) is opened as a model like a checkpoint and evaluated the same way.
"""

from __future__ import annotations

from cnnzoo.startup import begin

begin(__name__)  # before torch: --help answered without it; threads and OpenMP wait policy chosen

from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_info
from omegaconf import DictConfig

from cnnzoo.training.callbacks import PredictionReport
from cnnzoo.training.console import metrics_table, quiet_third_party, watched
from cnnzoo.training.checkpoints import datamodule_for, open_model
from cnnzoo.atomic import write_json_atomic
from cnnzoo.cli import also_callable, apply_threads, run, user_errors
from cnnzoo.data import InMemoryDataModule
from cnnzoo.errors import ConfigError
from cnnzoo.training.module import ClassifierModule, grouped_metrics


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test ``cfg.ckpt_path`` on its data (or ``cfg.data``); returns what goes to ``metrics.json``."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    apply_threads(cfg)
    quiet_third_party(cfg.get("verbose", False))  # as in train: no tips, no warnings about torch internals
    module, datamodule = _model_and_data(cfg)
    report = PredictionReport(png_dir=run_dir)
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    bar = watched() and cfg.trainer.get("enable_progress_bar", True)  # as in train: no bar frames in a log
    trainer = instantiate(cfg.trainer, callbacks=[report], logger=logger, enable_progress_bar=bar)
    trainer.test(module, datamodule=datamodule, verbose=False)
    result = {
        "ckpt_path": str(Path(cfg.ckpt_path).resolve()) if cfg.get("ckpt_path") else None,
        "keras_model": str(Path(cfg.keras_model).resolve()) if cfg.get("keras_model") else None,
        "model": module.hparams.arch,
        "data": datamodule.name,
        "class_names": list(module.class_names),
        "metrics": {"test": grouped_metrics(trainer.callback_metrics)["test"]},
        **report.results["test"],
        "run_dir": str(run_dir),
    }
    if trainer.is_global_zero:
        write_json_atomic(run_dir / "metrics.json", result)
        rank_zero_info(f"Run dir: {run_dir}\n{metrics_table(result['metrics'])}")
    return result


def _model_and_data(cfg: DictConfig) -> tuple[ClassifierModule, InMemoryDataModule]:
    """The model in ``ckpt_path`` or ``keras_model``, with its own data or ``cfg.data``."""
    if bool(cfg.get("ckpt_path")) == bool(cfg.get("keras_model")):
        raise ConfigError("give one of ckpt_path=<file.ckpt> or keras_model=<file.h5|.keras> (with data=<name>)")
    module = open_model(cfg.get("ckpt_path") or cfg.keras_model, data=cfg.get("data"))
    return module, datamodule_for(module, cfg.get("data"))


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> float:
    with user_errors():
        return evaluate(cfg)["metrics"]["test"]["accuracy"]


if __name__ == "__main__":
    run(main)  # cnnzoo.cli: an unknown key gets one line naming the closest one
else:
    also_callable(__name__, "evaluate")  # cnnzoo.evaluate(...) is the Python API's evaluate
