"""``resume=true``: carry on with the run dir (or sweep dir) given, instead of starting over.

A run records the config it trains with as ``<run dir>/config.json`` when it starts (Hydra rewrites
``.hydra/config.yaml`` whenever a run starts in that dir, so that one cannot tell what the earlier
run was).  ``resume=true`` then looks at what the dir holds:

- ``metrics.json`` with status completed: nothing is trained, the recorded result is returned;
  with a larger ``trainer.max_epochs`` than the run had, training continues from ``last.ckpt``;
- ``checkpoints/last.ckpt`` (an interrupted run): training resumes from it, as ``ckpt_path=last``;
- a failed run, or nothing: training starts over;

and a config that differs from the recorded one is refused, naming the keys that differ (except a
larger ``trainer.max_epochs``).  The dir must be given (``hydra.run.dir=<dir>``, or
``hydra.sweep.dir=<dir>`` for a multirun): resuming the fresh dir Hydra would generate is an error.
``ckpt_path=last`` (or the path of the dir's own ``last.ckpt``) is checked the same way
(``resumed_by``): a changed config is refused, a completed run is reported and left as it is; the
command line checks the config before Hydra rewrites ``.hydra/`` (``cnnzoo.run_dir.RunDirGuard``).

In a multirun with ``resume=true`` each job is matched to the earlier sweep's job by its overrides
(``job.json``, written by ``cnnzoo.training.sweep``), not by its number: ``hydra.sweep.subdir`` is
``${cnnzoo_job_subdir:}``, the dir of the earlier job with the same overrides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from cnnzoo.errors import ConfigError

CONFIG_NAME = "config.json"
IGNORED = ("resume", "verbose", "threads")  # keys that do not change what is trained
GROWABLE = "trainer.max_epochs"
UNCOMPARED = ("ckpt_path",)  # how this run resumes, not what it trains


@dataclass
class Resumed:
    """What ``resume=true`` found: a finished result to return, or a checkpoint to resume (or neither)."""

    result: dict[str, Any] | None = None
    ckpt_path: str | None = None


def flat_config(cfg: DictConfig) -> dict[str, Any]:
    """The config as ``{"a.b": value}`` without the keys that do not change training; interpolations
    as written (``model.optimizer: ${optimizer}``), so a changed value is named once, where it is set."""
    container = OmegaConf.to_container(cfg, resolve=False)
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = node

    walk({k: v for k, v in container.items() if k not in IGNORED and k != "hydra"}, "")
    return flat


def write_config(run_dir: Path, composed: dict[str, Any]) -> None:
    """``<run dir>/config.json``: the run's ``flat_config`` as composed, before training adjusts it."""
    from cnnzoo.atomic import write_json_atomic

    write_json_atomic(run_dir / CONFIG_NAME, composed)


def _explicit_dir() -> bool:
    """Whether the run (or sweep) dir was given rather than generated (``${cnnzoo_run_id:}``)."""
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:  # its dir is resolved once for all jobs (sweep.SweepSummary)
        return any(line.startswith("hydra.sweep.dir=") for line in hydra_cfg.overrides.hydra)
    given = OmegaConf.to_container(hydra_cfg.run, resolve=False).get("dir")
    return "cnnzoo_run_id" not in str(given)


def requeued(run_dir: Path) -> bool:
    """Whether this run dir's run was stopped to be requeued (``faults.FaultHandling``): the next
    start in it resumes, with or without ``resume=true``, until one completes (``clear_requeued``)."""
    from cnnzoo.training.faults import REQUEUED

    return (run_dir / "checkpoints" / REQUEUED).is_file()


def clear_requeued(run_dir: Path) -> None:
    from cnnzoo.training.faults import REQUEUED

    (run_dir / "checkpoints" / REQUEUED).unlink(missing_ok=True)


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key (old -> new)`` for every key whose value differs, a larger ``trainer.max_epochs`` aside."""
    missing = object()
    differences = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key, missing), new.get(key, missing)
        if before == after or key in UNCOMPARED:
            continue
        if key == GROWABLE and isinstance(before, int) and isinstance(after, int) and after > before:
            continue
        show = lambda value: "(absent)" if value is missing else json.dumps(value)  # noqa: E731
        differences.append(f"{key} ({show(before)} -> {show(after)})")
    return differences


def resumed_by(cfg: DictConfig, run_dir: Path) -> str | None:
    """What makes this run resume the run in ``run_dir``, as it is named in messages:
    ``resume=true`` (or a requeued job), ``ckpt_path=last`` (or the path of that dir's
    ``last.ckpt``), or None."""
    if cfg.get("resume") is True or requeued(run_dir):
        return "resume=true"
    ckpt = cfg.get("ckpt_path")
    if ckpt == "last" or (isinstance(ckpt, str) and Path(ckpt).resolve() == (run_dir / "checkpoints" / "last.ckpt").resolve()):
        return f"ckpt_path={ckpt}"
    return None


def check_same_config(new: dict[str, Any], run_dir: Path, given: str) -> dict[str, Any] | None:
    """The config recorded in ``run_dir`` (None: none), refused with ``ConfigError`` naming the
    keys where ``new`` differs from it (a larger ``trainer.max_epochs`` aside)."""
    recorded = run_dir / CONFIG_NAME
    old = json.loads(recorded.read_text()) if recorded.is_file() else None
    if old is not None:
        differences = config_differences(old, new)
        if differences:
            raise ConfigError(f"{given}: the config differs from the run in {run_dir} at "
                              f"{', '.join(differences)}; give those values as the run had them, "
                              f"or start a new run (another dir, no {given})")
    return old


def resume_run(new: dict[str, Any], run_dir: Path, explicit: bool = False, given: str = "resume=true") -> Resumed:
    """What to do in ``run_dir`` for ``resume=true`` with the config ``new`` (a ``flat_config``;
    see the module doc); raises ``ConfigError``.  ``given`` names what asked for it in messages:
    ``ckpt_path=last`` is checked the same way (a changed config is refused, a completed run is
    reported and left as it is)."""
    mode = HydraConfig.get().mode
    if not explicit and not _explicit_dir():
        which = "hydra.sweep.dir" if mode == RunMode.MULTIRUN else "hydra.run.dir"
        raise ConfigError(f"resume=true needs the dir to resume: add {which}=<dir of the earlier run>")
    old = check_same_config(new, run_dir, given)
    metrics_file, last = run_dir / "metrics.json", run_dir / "checkpoints" / "last.ckpt"
    status = json.loads(metrics_file.read_text()).get("status") if metrics_file.is_file() else None
    if status == "completed":
        grown = old is not None and new.get(GROWABLE, 0) > old.get(GROWABLE, 0)
        if not grown:
            return Resumed(result=json.loads(metrics_file.read_text()))
    if status == "failed" or not last.is_file():
        return Resumed()
    return Resumed(ckpt_path=str(last))


def _strip(overrides: list[str]) -> list[str]:
    return [line for line in overrides if line.partition("=")[0].lstrip("+~") != "resume"]


def job_subdir() -> str:
    """``hydra.sweep.subdir``: the job number, or with ``resume=true`` the dir of the earlier job of
    this sweep with the same overrides (a job number no earlier job with other overrides holds)."""
    hydra_cfg = HydraConfig.get()
    num = str(hydra_cfg.job.num)
    overrides = list(hydra_cfg.overrides.task)
    if "resume=true" not in [line.replace(" ", "").lower() for line in overrides]:
        return num
    sweep_dir = Path(str(hydra_cfg.sweep.dir))
    mine, taken = _strip(overrides), set()
    for record_file in sorted(sweep_dir.glob("*/job.json")):
        record = json.loads(record_file.read_text())
        if _strip(record.get("overrides", [])) == mine:
            return record_file.parent.name
        taken.add(record_file.parent.name)
    while num in taken:
        num += "_new"
    return num


OmegaConf.register_new_resolver("cnnzoo_job_subdir", job_subdir, use_cache=False, replace=True)
