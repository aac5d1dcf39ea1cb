#!/usr/bin/env python
"""``scripts/bench.py --extras``: Sign-MNIST's CSV load, parsed with no cache and then read from the cache
(``cnnzoo.data.cache``).  A whole ``cnnzoo.train`` process's start-up (time to the first step, peak RSS) is
``bench_whole_run.py``'s, which times those processes anyway."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from cnnzoo.data.sources import SIGN_MNIST, default_data_dir  # noqa: E402 - after the repo root is on sys.path


def extras(tmp: Path) -> dict:
    """Seconds to load Sign-MNIST's CSVs: the first load (no cache) and the fastest of three cached ones."""
    if not (source := default_data_dir() / SIGN_MNIST.folder).is_dir():
        return {"sign_mnist_csv_load_s": {"error": f"no {SIGN_MNIST.folder}/ in {default_data_dir()}"}}
    shutil.copytree(source, tmp / "csv" / SIGN_MNIST.folder)
    times = []  # the first load finds the empty cache and parses the CSVs
    with mock.patch.dict(os.environ, {"XDG_CACHE_HOME": str(tmp / "csv" / "cache")}):
        for _ in range(4):
            started = time.perf_counter()
            SIGN_MNIST.load(tmp / "csv")
            times.append(time.perf_counter() - started)
    return {"sign_mnist_csv_load_s": {"no_cache": round(times[0], 3), "cached": round(min(times[1:]), 3)}}
