"""cnnzoo from Python and Jupyter: ``fit``, ``evaluate``, ``predict``, ``load``, ``open_run``.

Why this module exists: the notebooks' readers work in Jupyter, where ``@hydra.main`` cannot run.
These functions compose the same configs with the same overrides as the command line (a bare
first name is the ``model=`` recipe), set up the run dir as Hydra would (``.hydra/`` included, no
change of working dir) and call the entry points' own functions, so a run started here is the run
``python -m cnnzoo.train`` would have made.  Errors are the project's typed one-line exceptions
(``cnnzoo.errors``), never ``SystemExit``; Ctrl+C (a kernel interrupt) stops after the batch with a
checkpoint, as on the command line, and raises ``TrainingInterrupted`` naming it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

from cnnzoo.errors import CnnzooError, ConfigError
from cnnzoo.recipes import CONF

RUN_FILES = ("metrics.json", "checkpoints/last.ckpt")


@contextmanager
def _typed_errors() -> Iterator[None]:
    """Hydra's and ``instantiate``'s wrappers unwrapped: the caller sees the ``CnnzooError``, and an
    override of a missing key the command line's ``unknown key ...: did you mean ...?``."""
    from hydra.errors import ConfigCompositionException, HydraException

    from cnnzoo.cli import unknown_key_message, user_error

    try:
        yield
    except CnnzooError:
        raise
    except HydraException as e:
        found = user_error(e)
        if found is not None:
            raise found from None
        message = unknown_key_message(e) if isinstance(e, ConfigCompositionException) else None
        raise ConfigError(message or " ".join(str(e).split())) from None  # the command line's line, or Hydra's
    except Exception as e:
        found = user_error(e)
        if found is None:
            raise
        raise found from None


def compose_run(config_name: str, overrides: Sequence[str], run_dir: str | Path | None = None):
    """The config ``python -m cnnzoo.<config_name> <overrides>`` runs with, its run dir made and
    recorded as Hydra records it (``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml``), and
    installed as the current Hydra config; returns the task config (without the ``hydra`` node)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import setup_globals
    from omegaconf import OmegaConf, open_dict, read_write

    from cnnzoo.cli import group_value_message
    from cnnzoo.run_dir import check_unused, new_run_id

    new_run_id()  # each run its own default dir, however many one notebook starts
    overrides = [*overrides, *([f"hydra.run.dir={Path(run_dir).resolve()}"] if run_dir else [])]
    setup_globals()  # Hydra's ${now:} resolver
    with _typed_errors(), initialize_config_dir(str(CONF), version_base="1.3", job_name=config_name):
        try:
            cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
        except ValueError:  # Hydra's for a config group set to no option (logger=null): the command line's line
            message = group_value_message(overrides)
            if message is None:
                raise
            raise ConfigError(message) from None
    output_dir = Path(cfg.hydra.run.dir).resolve()
    check_unused(output_dir, config_name, cfg)  # as RunDirGuard does for the command line
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.name = config_name
    HydraConfig().set_config(cfg)
    task = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    if cfg.hydra.output_subdir is not None:
        saved = output_dir / cfg.hydra.output_subdir
        saved.mkdir(parents=True, exist_ok=True)
        with read_write(cfg):
            OmegaConf.save(task, saved / "config.yaml")
            OmegaConf.save(cfg.hydra, saved / "hydra.yaml")
            OmegaConf.save(OmegaConf.create(list(cfg.hydra.overrides.task)), saved / "overrides.yaml")
    return task


def _overrides(args: Sequence[str]) -> list[str]:
    """A bare first argument is the recipe: ``fit("asl_cnn", ...)`` is ``model=asl_cnn ...``."""
    args = [str(a) for a in args]
    if args and "=" not in args[0]:
        args[0] = f"model={args[0]}"
    return args


def fit(*overrides: str, run_dir: str | Path | None = None) -> Run:
    """Train as ``python -m cnnzoo.train <overrides>`` does; ``run_dir`` is ``hydra.run.dir``.

    >>> run = cnnzoo.fit("asl_cnn", "trainer.max_epochs=5")   # doctest: +SKIP
    >>> run.history["val_accuracy"]                            # doctest: +SKIP
    """
    from cnnzoo.train import train

    cfg = compose_run("train", _overrides(overrides), run_dir)
    with _typed_errors():
        result = train(cfg)
    return Run(Path(result["run_dir"]))


def open_run(run_dir: str | Path) -> Run:
    """The :class:`Run` of a finished or interrupted run dir."""
    run = Run(Path(run_dir))
    if not any((run.run_dir / name).is_file() for name in RUN_FILES):
        raise ConfigError(f"run_dir={run_dir}: not a cnnzoo run dir (no {' or '.join(RUN_FILES)})")
    return run


def sweep_results(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """One record per job of a multirun sweep: its overrides, status, error, final metrics, history."""
    jobs = sorted(Path(sweep_dir).glob("*/job.json"), key=lambda p: json.loads(p.read_text())["job"])
    if not jobs:
        raise ConfigError(f"sweep_dir={sweep_dir}: no jobs recorded (no <job>/job.json)")
    records = []
    for path in jobs:
        job = json.loads(path.read_text())
        result = job.get("result", {})
        records.append({"job": job["job"], "overrides": job["overrides"], "status": job["status"],
                        "error": job.get("error"), "metrics": result.get("metrics", {}),
                        "history": result.get("history", {}), "run_dir": str(path.parent)})
    return records


def evaluate(source: Run | Model | str | Path, *overrides: str, run_dir: str | Path | None = None) -> dict[str, Any]:
    """``python -m cnnzoo.evaluate`` on a run, a checkpoint or a Keras file (with ``data=<name>``):
    ``loss``, ``accuracy``, ``f1``, ``top5``, the ``confusion_matrix`` and the ``misclassified``."""
    from cnnzoo.evaluate import evaluate as evaluate_cfg
    from cnnzoo.interop.keras_files import is_keras_file

    path = _path_of(source)
    key = "keras_model" if is_keras_file(path) else "ckpt_path"
    cfg = compose_run("evaluate", [f"{key}={path}", *overrides], run_dir)
    with _typed_errors():
        result = evaluate_cfg(cfg)
    return {**result["metrics"]["test"], "confusion_matrix": result["confusion_matrix"],
            "misclassified": result["misclassified"]}


def predict(source: Run | Model | str | Path, images, top_k: int | None = None):
    """Class probabilities ``(N, classes)`` as NumPy for ``images`` (see :meth:`Model.predict`)."""
    model = source if isinstance(source, Model) else load(_path_of(source))
    return model.predict(images, top_k=top_k)


def load(path: str | Path, data: str | None = None) -> Model:
    """A ``.ckpt``, ``.h5`` or ``.keras`` file as a :class:`Model`; a Keras file records no data, so
    ``data=<mnist|fashion_mnist|sign_mnist>`` gives it class names and preprocessing."""
    from cnnzoo.training.checkpoints import open_model

    data_config = None
    if data is not None:
        from cnnzoo.recipes import compose_train_config

        data_config = compose_train_config(f"data={data}").data
    with _typed_errors():
        return Model(open_model(path, data=data_config, keras_needs_data=False), Path(path))


def _path_of(source: Run | Model | str | Path) -> Path:
    if isinstance(source, Run):
        return source.checkpoint
    if isinstance(source, Model):
        if source.path is None:
            raise ConfigError("this model has no file yet; save it first with model.save('model.ckpt')")
        return source.path
    return Path(source)


@dataclasses.dataclass(frozen=True)
class Run:
    """A training run's dir: its metrics, history, checkpoint and model."""

    run_dir: Path

    @property
    def metrics(self) -> dict[str, Any]:
        """``metrics.json``: status, error, final metrics per split, history, checkpoints ..."""
        path = self.run_dir / "metrics.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    @property
    def status(self) -> str:
        return self.metrics.get("status", "interrupted")

    @property
    def history(self) -> dict[str, list[float]]:
        """Keras' ``history.history``: one value per epoch run, under Keras' names."""
        if "history" in self.metrics:
            return self.metrics["history"]
        import torch  # a run stopped before it wrote metrics.json: its last checkpoint has the history

        state = torch.load(self.run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
        return next((s["history"] for k, s in state.get("callbacks", {}).items() if k.startswith("History")), {})

    @property
    def checkpoint(self) -> Path:
        """The best checkpoint (by ``val/accuracy``) when there is one, else the last."""
        saved = self.metrics.get("checkpoints", {})
        for path in (saved.get("best"), saved.get("last"), self.run_dir / "checkpoints" / "last.ckpt"):
            if path and Path(path).is_file():
                return Path(path)
        raise ConfigError(f"run_dir={self.run_dir}: no checkpoint was written")

    @cached_property
    def model(self) -> Model:
        return load(self.checkpoint)

    def plot(self):
        """Loss and accuracy per epoch, training and validation, as the notebooks draw them."""
        from cnnzoo.training.figures import history_figure

        return history_figure(self.history, title=str(self.run_dir.name))

    def evaluate(self, *overrides: str) -> dict[str, Any]:
        return evaluate(self, *overrides)

    def predict(self, images, top_k: int | None = None):
        return self.model.predict(images, top_k=top_k)


class Model:
    """A trained network as Keras users handle one: ``summary()``, ``predict``, ``evaluate``,
    ``save``.  Preprocessing (scaling, resizing, normalising) is the one it was trained with."""

    def __init__(self, module, path: Path | None = None) -> None:
        from cnnzoo.data.batches import Preprocess

        self.module = module.eval()
        self.path = path
        data = module.hparams.get("data_config") or {}
        self.preprocess = Preprocess(tuple(self.net.input_shape[1:]), **(data.get("normalize") or {}))

    @property
    def net(self):
        return self.module.net

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """Keras' ``input_shape``: ``(None, H, W, C)`` (``self.net.input_shape`` is torch's ``(C, H, W)``)."""
        from cnnzoo.models.layers import keras_shape

        return (None, *keras_shape(self.net.input_shape))

    @property
    def output_shape(self) -> tuple[int | None, ...]:
        """Keras' ``output_shape``: ``(None, classes)``."""
        from cnnzoo.models.layers import keras_shape

        return (None, *keras_shape(self.net.shapes[-1]))

    @property
    def class_names(self) -> list[str]:
        return list(self.module.class_names)

    def summary(self) -> None:
        """Print Keras' ``model.summary()`` table."""
        from cnnzoo.models import summary

        print(summary(self.net))

    def count_params(self) -> int:
        from cnnzoo.models import summary

        return summary(self.net).total

    def predict(self, images, top_k: int | None = None, batch_size: int | None = 256, verbose: int | str = "auto"):
        """Probabilities ``(N, classes)`` for images as Keras users hold them: arrays or tensors
        ``(H, W)``, ``(N, H, W)``, ``(N, H, W, C)``, ``(N, C, H, W)``, uint8 0..255 or float 0..1, or
        image file paths.  With ``top_k``: one list of ``{"class", "index", "probability"}`` per image.
        ``verbose`` is taken as Keras' ``predict`` takes it; nothing is printed either way."""
        import torch

        from cnnzoo.data.images import image_batch
        from cnnzoo.keras_api import _batch_size, _check_verbose

        _check_verbose("predict", verbose)
        batch_size = 256 if batch_size is None else _batch_size("predict", batch_size)

        with _typed_errors():
            batch = image_batch(images, self.net.input_shape)
        with torch.no_grad():
            probabilities = torch.cat([self.module.probabilities(self.preprocess.from_unit(part))
                                       for part in batch.split(batch_size)])
        if top_k is None:
            return probabilities.numpy()
        top = probabilities.topk(min(top_k, probabilities.shape[1]), dim=1)
        return [[{"class": self.class_names[c], "index": c, "probability": p} for p, c in zip(values, classes)]
                for values, classes in zip(top.values.tolist(), top.indices.tolist())]

    def evaluate(self, *overrides: str) -> dict[str, Any]:
        return evaluate(self, *overrides)

    def save(self, path: str | Path) -> Path:
        """By the suffix: ``.ckpt`` (a checkpoint ``load`` and ``python -m cnnzoo.*`` read), or
        ``.keras`` / ``.h5`` (files Keras loads, compiled, with the same outputs)."""
        from cnnzoo.interop.keras_writer import save_keras
        from cnnzoo.training.checkpoints import save_module

        path = Path(path)
        if path.suffix not in (".ckpt", ".keras", ".h5"):
            raise ConfigError(f"save({str(path)!r}): unknown format {path.suffix or '(none)'}; "
                              "expected .ckpt, .keras or .h5")
        if path.suffix == ".ckpt":
            save_module(self.module, path)
            self.path = path
        else:
            save_keras(self.module, path)
        return path

    def __repr__(self) -> str:
        return f"Model({self.net.name!r}, input_shape={self.input_shape}, classes={len(self.class_names)})"
