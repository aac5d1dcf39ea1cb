"""Plumbing shared by the ``python -m cnnzoo.*`` entry points.

A user mistake (``CnnzooError``) is printed as one line and exits with status 2; the traceback is
shown only with ``HYDRA_FULL_ERROR=1``.  Result files are written atomically (temp file + rename)
so an interrupted run never leaves a half-written ``metrics.json``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cnnzoo.errors import CnnzooError


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a ``CnnzooError`` into ``error: <message>`` on stderr and exit status 2."""
    try:
        yield
    except CnnzooError as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` so that readers see either the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
