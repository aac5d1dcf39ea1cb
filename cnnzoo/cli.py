"""Plumbing shared by the ``python -m cnnzoo.*`` entry points.

A user mistake (``CnnzooError``) is printed as one line and exits with status 2 (128 + N after
signal N); the traceback is
shown only with ``HYDRA_FULL_ERROR=1``.  Errors raised inside ``hydra.utils.instantiate`` arrive
wrapped in its ``InstantiationException``; the user's error is unwrapped from it.  Inside a Hydra multirun the error is raised instead, so
the sweeper records that one job as failed and goes on with the others.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from cnnzoo.errors import CnnzooError


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
        error = error.__cause__
    return error


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
