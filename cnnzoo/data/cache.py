"""Decoded-array cache for sources that are slow to parse (the Sign-MNIST CSVs).

The cache lives next to the source (``<file>.cnnzoo.npz``) so it travels with the data; when that
folder is read-only (a shared or system dataset) it falls back to ``$XDG_CACHE_HOME/cnnzoo``.
Each entry records the source's name, size and modification time, so editing or replacing the
source invalidates it; not its path, so the same files seen from another folder (a moved data
dir, another checkout's read-only copy) share one entry in ``$XDG_CACHE_HOME`` instead of adding one
per path.  Writes go to a temporary file that is renamed into place: a killed run
never leaves a half-written cache behind.  A cache file that cannot be read for any reason (damaged,
truncated, written by another format version) is decoded again and replaced, never an error.  New
cache files get the permissions of any file the user writes (``0o666`` less the umask), so a cache
next to shared data can be read by the others who read the data.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1


def _identity(source: Path, name: str) -> str:
    stat = source.stat()
    return f"v{FORMAT_VERSION}|{source.name}|{name}|{stat.st_size}|{stat.st_mtime_ns}"


def _fingerprint(source: Path, name: str) -> np.ndarray:
    return np.frombuffer(hashlib.sha256(_identity(source, name).encode()).digest(), dtype=np.uint8)


def _candidates(source: Path, name: str) -> list[Path]:
    cache_home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cnnzoo"
    digest = hashlib.sha256(_identity(source, name).encode()).hexdigest()[:16]
    return [source.with_name(name + ".cnnzoo.npz"), cache_home / f"{name}.{digest}.npz"]


def cached_arrays(
    source: Path, decode: Callable[[], dict[str, np.ndarray]], name: str | None = None
) -> dict[str, np.ndarray]:
    """``decode()``'s arrays, from the cache when it matches ``source``, else decoded and stored.

    ``name`` tells apart several entries decoded from one source file (members of one zip).
    """
    name = name or source.name
    fingerprint = _fingerprint(source, name)
    for path in _candidates(source, name):
        try:
            with np.load(path) as stored:
                if np.array_equal(stored["_fingerprint"], fingerprint):
                    return {k: stored[k] for k in stored.files if k != "_fingerprint"}
        except Exception:  # noqa: BLE001 - absent, damaged (zipfile, zlib, pickle...), other format: decode again
            continue
    arrays = decode()
    for path in _candidates(source, name):
        if _store(path, {**arrays, "_fingerprint": fingerprint}):
            break
    return arrays


def _writable(folder: Path) -> bool:
    """A folder we may write to; its write bits count even for root (shared data is kept read-only)."""
    return folder.is_dir() and bool(folder.stat().st_mode & 0o222) and os.access(folder, os.W_OK)


def _store(path: Path, arrays: dict[str, np.ndarray]) -> bool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not _writable(path.parent):
            return False
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as to any new file
    except OSError:
        return False  # read-only location: try the next one
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
        return True
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
