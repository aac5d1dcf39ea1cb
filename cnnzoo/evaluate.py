"""``python -m cnnzoo.evaluate ckpt_path=<ckpt>``: test a trained model and show what it gets wrong.

Writes into its own Hydra run dir: ``metrics.json`` (test loss, accuracy, macro F1, top-5, the
confusion matrix and the misclassified indices), ``confusion_matrix.png``, ``misclassified.png``
(up to 24 images titled index / predicted / expected, like notebook 001) and the same figures in
``tensorboard/``.  The data is the checkpoint's own unless ``data=<name>`` is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_info
from omegaconf import DictConfig, OmegaConf

from cnnzoo.callbacks import PredictionReport
from cnnzoo.checkpoints import datamodule_for, load_classifier
from cnnzoo.atomic import write_json_atomic
from cnnzoo.cli import user_errors
from cnnzoo.lit import grouped_metrics


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test ``cfg.ckpt_path`` on its data (or ``cfg.data``); returns what goes to ``metrics.json``."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    module = load_classifier(cfg.ckpt_path)
    datamodule = datamodule_for(module, cfg.get("data"))
    report = PredictionReport(png_dir=run_dir)
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    trainer = instantiate(cfg.trainer, callbacks=[report], logger=logger)
    trainer.test(module, datamodule=datamodule, verbose=False)
    result = {
        "ckpt_path": str(Path(cfg.ckpt_path).resolve()),
        "model": module.hparams.arch,
        "data": datamodule.name,
        "class_names": list(module.class_names),
        "metrics": {"test": grouped_metrics(trainer.callback_metrics)["test"]},
        **report.results["test"],
        "run_dir": str(run_dir),
    }
    if trainer.is_global_zero:
        write_json_atomic(run_dir / "metrics.json", result)
        rank_zero_info(f"Run dir: {run_dir}\nTest metrics: {OmegaConf.to_yaml(result['metrics']['test']).strip()}")
    return result


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> float:
    with user_errors():
        return evaluate(cfg)["metrics"]["test"]["acc"]


if __name__ == "__main__":
    main()
