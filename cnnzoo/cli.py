"""Plumbing shared by the ``python -m cnnzoo.*`` entry points.

A user mistake (``CnnzooError``, or a mandatory value left out such as ``ckpt_path: ???``) is
printed as one line and exits with status 2 (128 + N after signal N); the traceback is shown only
with ``HYDRA_FULL_ERROR=1``.  Errors raised inside ``hydra.utils.instantiate`` arrive wrapped in its
``InstantiationException``; the user's error is unwrapped from it.  Inside a Hydra multirun the
error is raised instead, so the sweeper records that one job as failed and goes on with the others.

``run(main)`` starts an entry point.  Two mistakes Hydra reports while composing, before any cnnzoo
code runs, get one line too: an override of a key the config does not have (``optimizer.lrr=1e-3``)
names the closest existing key instead of Hydra's advice to add it with ``+``; a config group set to
a value that names no option (``logger=null``, a ``ValueError`` traceback) lists the options and
``~logger``, which leaves it out (``cnnzoo.run_dir.RunDirGuard`` does the same for a
``hydra.run.dir`` that cannot be created).  ``apply_threads`` is ``threads=N`` for every entry
point; the ``${cnnzoo_groups:...}`` resolver lists an entry point's own config groups in its
``--help``.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, MissingMandatoryValue

import cnnzoo.run_dir  # noqa: F401 - registers ${cnnzoo_run_id:} for conf/hydra/default.yaml
import cnnzoo.threads
import cnnzoo.training.resume  # noqa: F401 - registers ${cnnzoo_job_subdir:} (hydra.sweep.subdir)
from cnnzoo.errors import CnnzooError, ConfigError

CONF = Path(__file__).resolve().parent.parent / "conf"
VALUE_HINTS = {"ckpt_path": "<file.ckpt> (written by cnnzoo.train)"}


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a ``CnnzooError`` into ``error: <message>`` on stderr and exit status 2."""
    try:
        yield
    except Exception as e:
        error = user_error(e)
        if error is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if _in_multirun():
            raise error from None
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(error.exit_code) from None


def user_error(error: BaseException | None) -> CnnzooError | None:
    """The ``CnnzooError`` behind ``error``, also when Hydra's ``instantiate`` wrapped it."""
    while error is not None and not isinstance(error, CnnzooError):
        if isinstance(error, MissingMandatoryValue):
            key = error.full_key
            return ConfigError(f"{key} is required: add {key}={VALUE_HINTS.get(key, '<value>')} to the command")
        error = error.__cause__
    return error


def run(main: Callable[[], Any]) -> None:
    """Call the ``@hydra.main`` function ``main`` as ``python -m cnnzoo.<entry>`` does.

    Hydra composes the config inside ``main`` and reports its own errors there (through
    ``hydra._internal.utils.run_and_report``); while ``main`` runs, that reporter first turns the
    mistakes above into ``error: <message>`` and exit status 2.
    """
    from hydra._internal import utils as hydra_utils

    from cnnzoo.startup import imported

    imported()  # cnnzoo/startup.py: the imports, collector-free until here, are frozen
    report = hydra_utils.run_and_report
    hydra_utils.run_and_report = lambda func: report(lambda: _hydra_errors_reported(func))
    try:
        main()
    finally:
        hydra_utils.run_and_report = report


def _hydra_errors_reported(func: Callable[[], Any]) -> Any:
    try:
        return func()
    except (ConfigCompositionException, ValueError) as e:
        if isinstance(e, ConfigCompositionException):
            message = unknown_key_message(e)
        else:
            message = group_value_message(sys.argv[1:])
        if message is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(ConfigError.exit_code) from None


def unknown_key_message(error: ConfigCompositionException) -> str | None:
    """``unknown key a.b: did you mean a.c?`` for Hydra's "Could not override 'a.b'", else None."""
    cause = error.__cause__
    if not isinstance(cause, (ConfigAttributeError, ConfigKeyError)) or not isinstance(cause.parent_node, DictConfig):
        return None
    full_key, key = str(cause.full_key), str(cause.key)
    parent = full_key[: -len(key) - 1] if full_key.endswith("." + key) else ""
    keys = [str(k) for k in cause.parent_node.keys() if k != "hydra"]
    close = difflib.get_close_matches(key, keys, n=1)
    where = f"{parent} has" if parent else "the config has"
    hint = f"did you mean {'.'.join(filter(None, [parent, close[0]]))}?" if close else f"{where} {', '.join(keys)}"
    return f"unknown key {full_key}: {hint}"


def group_value_message(overrides: Sequence[str]) -> str | None:
    """``logger=null: expected one of csv, mlflow, tensorboard, or ~logger to leave it out`` for a
    config group given a value that names no option (Hydra's ``ValueError``), else None."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for override in OverridesParser.create().parse_overrides(list(overrides)):
        group = override.key_or_group
        if override.is_sweep_override() or override.is_delete() or not (CONF / group).is_dir():
            continue
        if not isinstance(override.value(), (str, list, dict)):
            return f"{override.input_line}: expected one of {', '.join(_options(group))}, or ~{group} to leave it out"
    return None


def apply_threads(cfg: DictConfig) -> None:
    """``threads=N``: torch's CPU threads for this run (null keeps torch's default)."""
    threads = cnnzoo.threads.check(cfg.get("threads"))
    if threads is None:
        return
    import torch  # not at import time: --help must stay torch-free

    torch.set_num_threads(threads)


def _options(group: str) -> list[str]:
    """The options of config group ``group`` (its ``conf/<group>/*.yaml``)."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def _config_groups(*groups: str) -> str:
    """``group: option, option`` per line, for an entry point's ``--help`` (only its own groups)."""
    return "\n".join(f"{group}: {', '.join(_options(group))}" for group in groups)


OmegaConf.register_new_resolver("cnnzoo_groups", _config_groups, replace=True)


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def also_callable(module_name: str, function: str) -> None:
    """Let the entry-point module ``cnnzoo.evaluate`` (or ``predict``) also be the Python API's
    function of the same name: importing a submodule rebinds the package attribute to the module,
    so ``cnnzoo.evaluate(run)`` calls ``cnnzoo.api.evaluate`` through the module itself."""
    module = sys.modules[module_name]

    def call(self, *args, **kwargs):
        return getattr(importlib.import_module("cnnzoo.api"), function)(*args, **kwargs)

    module.__class__ = type("EntryPointModule", (types.ModuleType,), {"__call__": call})
