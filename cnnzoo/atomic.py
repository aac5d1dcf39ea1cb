"""Write-then-rename, so a result file is either the old complete one or the new complete one.

Every file cnnzoo writes for a user (metrics, predictions, figures, exported models) goes through
``atomic_path``: the content is written to a temporary file in the same directory, given the
permissions a plain ``open()`` would give, and renamed over the target only once complete.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


NUMBER_LIST = re.compile(r"\[\n[\d\s,.eE+-]+\]")  # a raw newline: never inside a JSON string


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically; lists of numbers stay on one line."""
    text = json.dumps(data, indent=2, sort_keys=True)
    text = NUMBER_LIST.sub(lambda m: " ".join(m.group().split()), text)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")


@contextmanager
def atomic_output(path: str | Path, field: str = "output") -> Iterator[Path]:
    """:func:`atomic_path` for a file the user named: a path that cannot be written (a directory,
    a parent that is a file, no permission, a full disk) is a one-line ``ConfigError``."""
    from cnnzoo.errors import ConfigError

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{field}={path}: is a directory; expected a file path to write")
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ConfigError(f"{field}={path}: cannot write there ({blocking} is a file, not a directory)")
    try:
        with atomic_path(path) as tmp:
            yield tmp
    except OSError as e:
        raise ConfigError(f"{field}={path}: cannot write there ({e.strerror or type(e).__name__})") from None
