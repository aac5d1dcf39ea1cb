"""Experiment loggers a learner can read: Lightning's TensorBoard and MLflow loggers with epoch
metrics plotted against the epoch, and runs named by what was changed.

Lightning adds an ``epoch`` value to every ``log_metrics`` call and plots everything against the
global step.  ``EpochAxis`` turns that ``epoch`` into the x-axis of epoch-level metrics (``train/*``,
``val/*``, ``test/*``) and drops it as a chart of its own; per-step metrics (Lightning's ``_step``
suffix: ``train/loss_step``) keep the global step.  ``TensorBoardLogger.log_hyperparams`` writes the
HPARAMS summary without extra scalar points: its metrics are the run's own ``val/accuracy``...
charts.  Each run's name (TensorBoard's run, MLflow's run name) is the model and the values the
command line or sweep changed: ``asl_cnn lr=0.001 batch_size=32`` (``run_name``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger as _MLFlowLogger
from lightning.pytorch.loggers import TensorBoardLogger as _TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

PATH_KEYS = ("ckpt_path", "keras_model", "data_dir", "dirpath", "png_dir", "checkpoint_dir", "save_dir",
             "tracking_uri", "run_dir")
MAX_NAME = 200  # a run name is a directory name: well under the usual 255-byte limit


def _value(text: str) -> Any:
    """An override's value as HPARAMS shows it: a number where it is one."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _is_path(key: str, value: str) -> bool:
    leaf = key.rsplit(".", 1)[-1]
    return (leaf in PATH_KEYS or leaf.endswith(("_dir", "_path", "_file")) or "/" in value or os.sep in value
            or value.startswith("file:"))


def overridden(overrides: Sequence[str] | None = None) -> dict[str, Any]:
    """The values a run's command line (or its sweep job) set, by short key: ``optimizer.lr=0.001``
    is ``{"lr": 0.001}``.  ``hydra.*``, ``logger`` (where the name is shown), ``model=`` (the run
    name's first word), deletions and paths are left out; a short key two overrides share stays in full."""
    if overrides is None:
        overrides = _hydra_config().get("overrides", {}).get("task", [])
    pairs = []
    for line in overrides:
        key, sep, value = str(line).lstrip("+~").partition("=")
        if not sep or key.split(".")[0] in ("hydra", "logger") or key == "model" or _is_path(key, value):
            continue
        pairs.append((key, value))
    leaves = [key.rsplit(".", 1)[-1] for key, _ in pairs]
    return {(leaf if leaves.count(leaf) == 1 else key): _value(value) for (key, value), leaf in zip(pairs, leaves)}


def run_name(overrides: Sequence[str] | None = None, model: str | None = None) -> str:
    """``<model> key=value ...``: the recipe (or Keras file) and the overridden values; a plain
    recipe run is just the model name."""
    hydra_cfg = _hydra_config()
    if overrides is None:
        overrides = hydra_cfg.get("overrides", {}).get("task", [])
    if model is None:
        model = _model_name(overrides, hydra_cfg)
    name = " ".join([model, *(f"{key}={value}" for key, value in overridden(overrides).items())])
    name = name.replace(os.sep, "_").strip() or "run"
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 3] + "..."


_default_name = run_name  # MLFlowLogger's argument of that name hides the function


def _model_name(overrides: Sequence[str], hydra_cfg: Mapping[str, Any]) -> str:
    for line in overrides:
        key, _, value = str(line).lstrip("+~").partition("=")
        if key == "keras_model" and value:
            return Path(value).stem
    choices = hydra_cfg.get("runtime", {}).get("choices", {})
    return choices.get("model") or hydra_cfg.get("job", {}).get("name") or "run"


def _hydra_config() -> Mapping[str, Any]:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else {}


class EpochAxis:
    """Logger mixin: epoch-level metrics at ``step=epoch``, no ``epoch`` chart; metrics with
    Lightning's ``_step`` suffix keep the global step."""

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        metrics = dict(metrics)
        epoch = metrics.pop("epoch", None)
        if not metrics:
            return
        if epoch is not None and not any(key.endswith("_step") for key in metrics):
            step = int(epoch)
        super().log_metrics(metrics, step)


class TensorBoardLogger(EpochAxis, _TensorBoardLogger):
    """Lightning's TensorBoard logger, one subdir per run: ``<save_dir>/<name>/<run name>``
    (``version=None`` names it with ``run_name()``; a run resumed in its dir, whatever its new
    overrides, goes on in the subdir it already has, so its curves stay one run)."""

    def __init__(self, save_dir: str | Path, name: str = "tensorboard", version: str | int | None = None,
                 **kwargs: Any) -> None:
        if version is None:
            root = Path(save_dir) / name
            existing = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
            version = existing[0] if len(existing) == 1 else run_name()
        super().__init__(save_dir, name=name, version=version, **kwargs)
        self._graph_logged = False

    @rank_zero_only
    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """The graph once per run: Lightning logs it at every stage (fit, then test), and
        TensorBoard warns about a run holding more than one."""
        if not self._graph_logged:
            super().log_graph(model, input_array)
            self._graph_logged = True

    @rank_zero_only
    def log_hyperparams(self, params: Any, metrics: dict[str, Any] | None = None, step: int | None = None) -> None:
        """The HPARAMS tab's summary, its metrics the run's own scalar tags (no extra points)."""
        if not metrics:
            return super().log_hyperparams(params, metrics=None, step=step)  # stored for hparams.yaml only
        from lightning.fabric.utilities.logger import _convert_params, _flatten_dict
        from torch.utils.tensorboard.summary import hparams

        params = self._sanitize_params(_flatten_dict(_convert_params(params)))
        self.hparams.update(params)
        writer = self.experiment._get_file_writer()
        for summary in hparams(params, dict(metrics)):
            writer.add_summary(summary, step)


class MLFlowLogger(EpochAxis, _MLFlowLogger):
    """Lightning's MLflow logger, the run named with ``run_name()`` unless ``run_name`` is given.

    A ``file:`` tracking URI (a local store in the run dir, no server) is allowed: MLflow 3 refuses
    its file store unless ``MLFLOW_ALLOW_FILE_STORE`` is set, and this sets it when it is unset."""

    def __init__(self, run_name: str | None = None, tracking_uri: str | None = None, **kwargs: Any) -> None:
        if tracking_uri and tracking_uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        super().__init__(run_name=_default_name() if run_name is None else run_name, tracking_uri=tracking_uri,
                         **kwargs)


def event_dirs(run_dir: str | Path) -> list[Path]:
    """The folders holding a run's TensorBoard event files: ``<run dir>/tensorboard/<run name>``
    (or ``<run dir>/tensorboard`` itself, as runs before named versions wrote them)."""
    root = Path(run_dir) / "tensorboard"
    return sorted({path.parent for path in root.glob("**/events.out.tfevents.*")})


def event_dir(run_dir: str | Path) -> Path:
    """The one folder of a run's TensorBoard events (``FileNotFoundError`` without one)."""
    found = event_dirs(run_dir)
    if len(found) != 1:
        raise FileNotFoundError(f"{run_dir}: expected the event files of one run under tensorboard/, found {found}")
    return found[0]
