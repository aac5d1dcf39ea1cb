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
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf, open_dict

from cnnzoo.training.callbacks import History
from cnnzoo.training.checkpoints import check_fits, check_resumable, load_classifier
from cnnzoo.training.resume import (Resumed, clear_requeued, flat_config, requeued, resume_run, resumed_by,
                                    write_config)
from cnnzoo.training.console import metrics_table, quiet_third_party, watched
from cnnzoo.atomic import write_json_atomic
from cnnzoo.cli import run, user_error, user_errors
from cnnzoo.data.datamodule import TensorDataModule
from cnnzoo.errors import ConfigError, TrainingError, TrainingInterrupted
from cnnzoo.training.faults import FaultHandling, check_output_dirs
from cnnzoo.run_dir import lock_run_dir
from cnnzoo.training.trainer_checks import check_run, check_trainer
from cnnzoo.training.module import ClassifierModule, grouped_metrics
from cnnzoo import memory, threads
from cnnzoo.training.precision import configure_precision
from cnnzoo.training.reuse import test_from_last_validation


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


def build_module(cfg: DictConfig, datamodule) -> ClassifierModule:
    """The configured network (``model.arch``, or the Keras file ``keras_model`` to fine-tune),
    sized from the data, with ``cfg.data`` recorded for evaluate and predict."""
    _check_model_fits_data(cfg.model, datamodule)
    return instantiate(
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


def _log_hparams_with_results(trainer: L.Trainer, cfg: DictConfig, model: ClassifierModule,
                              result: dict[str, Any]) -> None:
    """The run's hyper-parameters for TensorBoard's HPARAMS tab (which compares sweep runs) and
    other loggers' params: the overridden values (``lr=0.001``: what a sweep varies) and the
    recipe's model, data, optimizer, lr, batch size, epochs and seed.  The tab's metrics are the
    run's own final-epoch scalars (``val/accuracy``, ``val/loss``, ``test/accuracy``, ``test/loss``)."""
    from lightning.pytorch.loggers import TensorBoardLogger

    from cnnzoo.training.loggers import overridden

    params = {
        **overridden(),
        "model": result["model"],
        "data": result["data"],
        "optimizer": model.optimizer_options["name"],
        "lr": model.optimizer_options.get("lr"),
        "batch_size": trainer.datamodule.batch_size,
        "max_epochs": cfg.trainer.max_epochs,
        "seed": cfg.seed,
    }
    tags = {f"{stage}/{name}": value for stage, values in result["metrics"].items() if stage in ("val", "test")
            for name, value in values.items() if name in ("accuracy", "loss")}
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(params, metrics=tags)
        else:  # beside the module's own hparams (optimizer/name, ...), which MLflow will not let change
            logger.log_hyperparams({"run": params})
        logger.save()


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit (and test) as configured; returns what is written to ``metrics.json``."""
    return train_model(cfg)[0]


def train_model(cfg: DictConfig, datamodule: TensorDataModule | None = None,
                model: ClassifierModule | None = None) -> tuple[dict[str, Any], ClassifierModule]:
    """``train`` that also returns the trained module.  ``datamodule`` (a user's arrays) and
    ``model`` (a Keras-style Sequential's module, compiled in Python) stand in for ``cfg.data`` and
    ``cfg.model``: ``cnnzoo.keras_api`` trains through this one code path."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    lock_run_dir(run_dir)  # cnnzoo.run_dir: a second run on this dir stops here
    try:
        return _train_in(run_dir, cfg, datamodule, model)
    except Exception as error:
        _record_failure(run_dir, cfg, error)
        raise


def _record_failure(run_dir: Path, cfg: DictConfig, error: Exception) -> None:
    """A run that stops on an error before it wrote its results (bad data, a crash) still leaves a
    ``metrics.json`` saying so; one already there (this run's, or the resumed run's) is kept."""
    if rank_zero_only.rank != 0 or (run_dir / "metrics.json").exists():
        return
    shown = user_error(error) or error
    write_json_atomic(run_dir / "metrics.json", {
        "status": "failed", "error": " ".join(str(shown).split()),
        "model": OmegaConf.select(cfg, "model.arch"), "seed": cfg.get("seed"), "run_dir": str(run_dir)})


def _train_in(run_dir: Path, cfg: DictConfig, datamodule: TensorDataModule | None,
              model: ClassifierModule | None) -> tuple[dict[str, Any], ClassifierModule]:
    check_trainer(cfg.trainer)
    check_run(cfg)  # seed, threads, true/false switches (resume too, read next), data.*, model.* keys
    composed = flat_config(cfg)  # as given (what follows may adjust cfg), for a later resume=true
    again = requeued(run_dir)  # a cluster job stopped and requeued (SLURM, submitit) resumes
    given = resumed_by(cfg, run_dir)
    if given == "resume=true":
        resumed = resume_run(composed, run_dir, explicit=again)
    elif given:  # ckpt_path=last: checked as resume=true checks (same config; a completed run is kept)
        resumed = resume_run(composed, run_dir, explicit=True, given=given)
    else:
        resumed = Resumed()
    if resumed.result is not None:
        rank_zero_info(f"{given}: {run_dir} has completed; its result:\n{metrics_table(resumed.result['metrics'])}")
        return resumed.result, load_classifier(resumed.result["checkpoints"]["last"] or _any_checkpoint(run_dir))
    quiet_third_party(cfg.get("verbose", False))
    rank_zero_info(memory.tune())  # cnnzoo/memory.py: buffers reused, not faulted in every step
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = datamodule if datamodule is not None else instantiate(cfg.data)
    model = model if model is not None else build_module(cfg, datamodule)
    check_fits(model, datamodule)
    if not datamodule.has_validation:
        _drop_val_monitors(cfg)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]  # name=null drops one
    bar = watched() and cfg.trainer.get("enable_progress_bar", True)  # a log file gets the epoch lines alone
    callbacks = [c for c in callbacks if bar or not isinstance(c, ProgressBar)]
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    rank_zero_info(configure_precision(cfg))  # precision: fp32 | bf16 | auto -> trainer.precision
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger, enable_progress_bar=bar)

    ckpt_path = resumed.ckpt_path or cfg.get("ckpt_path")
    if ckpt_path == "last":
        ckpt_path = str(run_dir / "checkpoints" / "last.ckpt")
    resumed_from = check_resumable(ckpt_path, model) if ckpt_path else {}
    trained_with = resumed_from.get("torch_threads")
    if trainer.world_size > 1:
        trained_with = None  # rank 0's count is the one recorded: each rank keeps its own choice
    if cfg.get("threads") and trained_with and cfg.threads != trained_with and trainer.strategy.root_device.type == "cpu":
        raise ConfigError(f"threads={cfg.threads}: the checkpoint was trained with {trained_with} thread(s), and on CPU "
                          "the results depend on it; leave threads= out to keep it")
    rank_zero_info(threads.apply(cfg.get("threads"), trained_with))  # cnnzoo/threads.py
    checkpoint = trainer.checkpoint_callback
    if trainer.is_global_zero:
        check_output_dirs([run_dir, *([Path(checkpoint.dirpath)] if checkpoint and checkpoint.dirpath else [])],
                          _checkpoint_bytes(model))
    if trainer.is_global_zero:
        write_config(run_dir, composed)  # what a later resume=true compares with
    started = time.time()
    model.train()  # Keras' fit trains every layer; Lightning keeps a mode set before (a predict or evaluate)
    error = _fit(trainer, model, datamodule, ckpt_path, callbacks)
    metrics = dict(trainer.callback_metrics)
    if error is None and resumed_from and trainer.global_step == resumed_from.get("global_step"):
        metrics = {**_fit_metrics_of_stopped_run(run_dir, trainer.current_epoch), **metrics}
    if cfg.get("test") and error is None:
        reused = test_from_last_validation(trainer, model, datamodule)  # validated on the test file already?
        if reused is None:  # final weights, like Keras' evaluate()
            error = _stoppable(trainer.test, callbacks, model, datamodule=datamodule, verbose=False)
        if error is None:
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
        "history": next((c.history for c in callbacks if isinstance(c, History)), {}),
        "checkpoints": {
            "best": checkpoint.best_model_path if checkpoint else "",
            "last": str(last) if (last := run_dir / "checkpoints" / "last.ckpt").is_file() else "",
        },
        "run_dir": str(run_dir),
    }
    if trainer.is_global_zero:
        write_json_atomic(run_dir / "metrics.json", result)
        if error is None:
            clear_requeued(run_dir)
            _log_hparams_with_results(trainer, cfg, model, result)
            rank_zero_info(f"Run dir: {run_dir}\n{metrics_table(result['metrics'])}{_limited_run_note(trainer, model)}")
    if error is not None:
        raise error
    return result, model


def _limited_run_note(trainer: L.Trainer, model: ClassifierModule) -> str:
    """A run cut to a few batches (``debug=limit``, ``fast_dev_run``, ``overfit_batches``) says that
    what it learnt is not meaningful yet, rather than looking broken."""
    limited = trainer.fast_dev_run or trainer.overfit_batches or trainer.limit_train_batches not in (None, 1.0)
    if not limited:
        return ""
    batchnorm = any(spec.kind == "BatchNormalization" for spec in model.net.specs)
    why = " (BatchNormalization's moving statistics, momentum 0.99, have barely moved)" if batchnorm else ""
    return (f"\nnote: this run trained on {trainer.num_training_batches} batch(es) an epoch: its predictions{why} "
            "are not meaningful yet")


def _fit(trainer: L.Trainer, model, datamodule, ckpt_path: str | None, callbacks: list) -> TrainingError | None:
    """``trainer.fit``; a stop that leaves results to record (a signal, a non-finite loss) is returned."""
    try:
        return _stoppable(trainer.fit, callbacks, model, datamodule=datamodule, ckpt_path=ckpt_path)
    except TrainingError as e:
        return e


def _stoppable(stage, callbacks: list, *args, **kwargs) -> TrainingInterrupted | None:
    """``trainer.fit`` or ``trainer.test``; a stop by SIGINT/SIGTERM (``FaultHandling``) is returned."""
    trainer = stage.__self__
    guard = next((c for c in callbacks if isinstance(c, FaultHandling)), None)
    try:
        stage(*args, **kwargs)
    except SIGTERMException:
        if guard is None or guard.saved_to is None:
            raise
    else:  # a signal after the loops' last check for one (the end-of-fit work) stops the run too
        if guard is None or not guard.stopped_after(trainer, testing=stage.__name__ == "test"):
            return None
    return TrainingInterrupted(guard.interruption_message(trainer), guard.signal_number)


def _fit_metrics_of_stopped_run(run_dir: Path, epochs: int) -> dict[str, float]:
    """A run resumed from a checkpoint with nothing left to train (it was stopped after its last
    epoch: in the end-of-fit work or the test pass) logs no train or val metrics of its own; they
    are those its stopped run recorded, in ``metrics.json``, when it stopped after those epochs."""
    import json

    earlier_file = run_dir / "metrics.json"
    earlier = json.loads(earlier_file.read_text()) if earlier_file.is_file() else {}
    if earlier.get("status") != "interrupted" or earlier.get("epochs") != epochs:
        return {}
    return {f"{stage}/{name}": value for stage, values in earlier.get("metrics", {}).items()
            if stage in ("train", "val") for name, value in values.items()}


def _any_checkpoint(run_dir: Path) -> Path:
    found = sorted((run_dir / "checkpoints").glob("*.ckpt"))
    if not found:
        raise TrainingError(f"resume=true: {run_dir} has completed but holds no checkpoint")
    return found[-1]


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
    run(main)  # cnnzoo.cli: an unknown key gets one line naming the closest one
