"""``python -m cnnzoo.train``: fit one model on one dataset, as composed by Hydra from ``conf/``.

The function is thin on purpose: it instantiates the DataModule, sizes the LightningModule from it,
instantiates callbacks, logger and Trainer from config, fits, tests, and writes ``metrics.json``
into the run directory (next to ``checkpoints/``, ``tensorboard/`` and Hydra's ``.hydra/`` config).
A run stopped by SIGINT/SIGTERM or a non-finite loss still writes ``metrics.json``, with its status
and error, before exiting non-zero (see ``cnnzoo.training.faults``).
"""

from __future__ import annotations

from cnnzoo.startup import begin

begin(__name__)  # before torch: --help answered without it; threads and OpenMP wait policy chosen

import time
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf, open_dict

from cnnzoo.training.checkpoints import check_fits, check_resumable
from cnnzoo.atomic import write_json_atomic
from cnnzoo.cli import user_errors
from cnnzoo.errors import ConfigError, TrainingError, TrainingInterrupted
from cnnzoo.training.faults import FaultHandling, check_output_dirs
from cnnzoo.training.module import ClassifierModule, grouped_metrics
from cnnzoo import threads
from cnnzoo.training.precision import configure_precision
from cnnzoo.training.reuse import test_from_last_validation


# A DataModule without a validation split returns no val batches on purpose.
warnings.filterwarnings("ignore", message="Total length of `list` across ranks is zero")


def _drop_val_monitors(cfg: DictConfig) -> None:
    """Without a validation split, checkpoint callbacks keep the last epoch instead of a val metric."""
    for name, callback in (cfg.get("callbacks") or {}).items():
        monitor = callback.get("monitor") if isinstance(callback, DictConfig) else None
        if isinstance(monitor, str) and monitor.startswith("val/"):
            rank_zero_info(f"callbacks.{name}: no validation split, so {monitor} is not monitored")
            with open_dict(cfg):
                callback.monitor = None


def _check_model_fits_data(model_cfg: DictConfig, datamodule) -> None:
    """The network is sized from the data; a size also given in ``model.*`` must agree with it."""
    from_data = {"num_classes": datamodule.num_classes, "input_shape": list(datamodule.input_shape)}
    for key, expected in from_data.items():
        value = model_cfg.get(key)
        given = OmegaConf.to_object(value) if OmegaConf.is_config(value) else value
        if given is not None and given != expected:
            raise ConfigError(
                f"model.{key}={given} but data {datamodule.name} gives {expected}; "
                f"drop model.{key} (it is taken from the data) or choose data that matches"
            )


def _model(cfg: DictConfig, datamodule) -> ClassifierModule:
    """The configured network (``model.arch``, or the Keras file ``keras_model`` to fine-tune),
    sized from the data."""
    _check_model_fits_data(cfg.model, datamodule)
    model = instantiate(
        cfg.model,
        num_classes=datamodule.num_classes,
        input_shape=list(datamodule.input_shape),
        class_names=list(datamodule.class_names),
        data_config=OmegaConf.to_container(cfg.data, resolve=True),
        channels_last=cfg.channels_last,
        compile=cfg.compile,
        keras_model=cfg.get("keras_model"),
        _convert_="all",
        _recursive_=False,  # data_config keeps its _target_ as a record, it is not instantiated here
    )
    check_fits(model, datamodule)
    return model


def _log_hparams_with_results(trainer: L.Trainer, cfg: DictConfig, result: dict[str, Any]) -> None:
    """Hyper-parameters with final metrics for TensorBoard's HPARAMS tab (compares sweep runs)."""
    if trainer.logger is None:
        return
    params = {
        "model": result["model"],
        "data": result["data"],
        "optimizer": cfg.model.optimizer.name,
        "lr": cfg.model.optimizer.get("lr"),
        "batch_size": cfg.data.batch_size,
        "max_epochs": cfg.trainer.max_epochs,
        "seed": cfg.seed,
    }
    finals = {f"final/{stage}_{name}": value for stage, values in result["metrics"].items()
              for name, value in values.items() if name in ("accuracy", "loss")}
    trainer.logger.log_hyperparams(params, metrics=finals)
    trainer.logger.save()


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit (and test) as configured; returns what is written to ``metrics.json``."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    rank_zero_info(threads.apply(cfg.get("threads")))  # cnnzoo/threads.py
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    model = _model(cfg, datamodule)
    if not datamodule.has_validation:
        _drop_val_monitors(cfg)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]  # name=null drops one
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    rank_zero_info(configure_precision(cfg))  # precision: fp32 | bf16 | auto -> trainer.precision
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger)

    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path == "last":
        ckpt_path = str(run_dir / "checkpoints" / "last.ckpt")
    if ckpt_path:
        check_resumable(ckpt_path, model)
    checkpoint = trainer.checkpoint_callback
    if trainer.is_global_zero:
        check_output_dirs([run_dir, *([Path(checkpoint.dirpath)] if checkpoint and checkpoint.dirpath else [])],
                          _checkpoint_bytes(model))
    started = time.time()
    error = _fit(trainer, model, datamodule, ckpt_path, callbacks)
    metrics = dict(trainer.callback_metrics)
    if cfg.get("test") and error is None:
        reused = test_from_last_validation(trainer, model, datamodule)  # validated on the test file already?
        if reused is None:
            trainer.test(model, datamodule=datamodule, verbose=False)  # final weights, like Keras' evaluate()
        metrics.update(reused or trainer.callback_metrics)
    result = {
        "status": "completed" if error is None else "interrupted" if isinstance(error, TrainingInterrupted) else "failed",
        "error": str(error) if error else None,
        "model": model.hparams.arch,
        "data": datamodule.name,
        "seed": cfg.seed,
        "epochs": trainer.current_epoch,
        "wall_time_s": round(time.time() - started, 2),
        "metrics": grouped_metrics(metrics),
        "checkpoints": {
            "best": checkpoint.best_model_path if checkpoint else "",
            "last": checkpoint.last_model_path if checkpoint else "",
        },
        "run_dir": str(run_dir),
    }
    if trainer.is_global_zero:
        write_json_atomic(run_dir / "metrics.json", result)
        if error is None:
            _log_hparams_with_results(trainer, cfg, result)
            rank_zero_info(f"Run dir: {run_dir}\nFinal metrics: {OmegaConf.to_yaml(result['metrics']).strip()}")
    if error is not None:
        raise error
    return result


def _fit(trainer: L.Trainer, model, datamodule, ckpt_path: str | None, callbacks: list) -> TrainingError | None:
    """``trainer.fit``; a stop that leaves results to record (a signal, a non-finite loss) is returned."""
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    except TrainingError as e:
        return e
    except SIGTERMException:
        guard = next((c for c in callbacks if isinstance(c, FaultHandling) and c.saved_to), None)
        if guard is None:
            raise
        return TrainingInterrupted(guard.interruption_message(trainer), guard.signal_number)
    return None


def _checkpoint_bytes(model: L.LightningModule) -> int:
    """About one checkpoint: the weights and up to two optimizer slots per weight, plus metadata."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return 3 * weights + 2**20


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    with user_errors():
        result = train(cfg)
    return result["metrics"].get("val", result["metrics"].get("test", {})).get("accuracy")  # for sweepers


if __name__ == "__main__":
    main()
