"""``python -m cnnzoo.train``: fit one model on one dataset, as composed by Hydra from ``conf/``.

The function is thin on purpose: it instantiates the DataModule, sizes the LightningModule from it,
instantiates callbacks, logger and Trainer from config, fits, tests, and writes ``metrics.json``
into the run directory (next to ``checkpoints/``, ``tensorboard/`` and Hydra's ``.hydra/`` config).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_info
from omegaconf import DictConfig, OmegaConf, open_dict

from cnnzoo.cli import user_errors, write_json_atomic


# A DataModule without a validation split returns no val batches on purpose.
warnings.filterwarnings("ignore", message="Total length of `list` across ranks is zero")


def _split_metrics(metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``{"val/acc": t, ...}`` -> ``{"val": {"acc": 0.98}, ...}`` with Lightning's ``_epoch`` suffix dropped."""
    grouped: dict[str, dict[str, float]] = {}
    for key, value in sorted(metrics.items()):
        stage, _, name = key.partition("/")
        if name and not name.endswith("_step"):
            grouped.setdefault(stage, {})[name.removesuffix("_epoch")] = float(value)
    return grouped


def _drop_val_monitors(cfg: DictConfig) -> None:
    """Without a validation split, checkpoint callbacks keep the last epoch instead of a val metric."""
    for name, callback in (cfg.get("callbacks") or {}).items():
        monitor = callback.get("monitor") if isinstance(callback, DictConfig) else None
        if isinstance(monitor, str) and monitor.startswith("val/"):
            rank_zero_info(f"callbacks.{name}: no validation split, so {monitor} is not monitored")
            with open_dict(cfg):
                callback.monitor = None


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit (and test) as configured; returns what is written to ``metrics.json``."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    model = instantiate(
        cfg.model,
        num_classes=datamodule.num_classes,
        input_shape=list(datamodule.input_shape),
        class_names=list(datamodule.class_names),
        _convert_="all",
    )
    if not datamodule.has_validation:
        _drop_val_monitors(cfg)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger)

    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path == "last":
        ckpt_path = str(run_dir / "checkpoints" / "last.ckpt")
    started = time.time()
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics = dict(trainer.callback_metrics)
    if cfg.get("test"):
        trainer.test(model, datamodule=datamodule, verbose=False)  # final weights, like Keras' evaluate()
        metrics.update(trainer.callback_metrics)
    checkpoint = trainer.checkpoint_callback
    result = {
        "model": cfg.model.arch,
        "data": datamodule.name,
        "seed": cfg.seed,
        "epochs": trainer.current_epoch,
        "wall_time_s": round(time.time() - started, 2),
        "metrics": _split_metrics(metrics),
        "checkpoints": {
            "best": checkpoint.best_model_path if checkpoint else "",
            "last": checkpoint.last_model_path if checkpoint else "",
        },
        "run_dir": str(run_dir),
    }
    if trainer.is_global_zero:
        write_json_atomic(run_dir / "metrics.json", result)
        rank_zero_info(f"Run dir: {run_dir}\nFinal metrics: {OmegaConf.to_yaml(result['metrics']).strip()}")
    return result


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    with user_errors():
        result = train(cfg)
    return result["metrics"].get("val", result["metrics"].get("test", {})).get("acc")  # for sweepers


if __name__ == "__main__":
    main()
