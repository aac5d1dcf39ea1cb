"""glibc's malloc tuned so that a training step reuses its memory instead of faulting it in again.

Why this module exists: a CPU training step allocates and frees the same few-megabyte activation
and gradient buffers at every step.  With glibc's defaults, blocks that large are mmapped and
unmapped, and freed heap tops above 128 KiB go back to the OS, so every step page-faults them in
again: one asl_cnn epoch as ``python -m cnnzoo.train`` took 2.3-3.1 million minor page faults and
4-5 s of kernel time in a 22-23 s run (docs/performance.md).  Keeping freed memory in the process
(blocks up to 32 MiB from the heap, the heap trimmed only beyond 512 MiB of free top, and grown in
64 MiB steps) took it to 0.15 million faults and 19.3 s.  The cost is memory the process keeps
after a peak instead of returning it.

:func:`tune` sets this with ``mallopt`` in the running process, so it works from a Jupyter kernel
too; ``cnnzoo.train.train_model`` calls it before it loads data or builds a model, so every
training run (``python -m cnnzoo.train``, ``cnnzoo.fit``, ``Sequential.fit``) gets it.  A
``MALLOC_*`` environment variable set by the user means they chose: nothing is changed.  On a C
library other than glibc nothing is changed either.  No torch import here.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's malloc.h
MiB = 2**20
SETTINGS = {M_MMAP_THRESHOLD: 32 * MiB, M_TRIM_THRESHOLD: 512 * MiB, M_TOP_PAD: 64 * MiB}
USER_SET = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX")

#: what :func:`tune` did in this process (None until it ran)
STATE: str | None = None


def tune() -> str:
    """Apply :data:`SETTINGS` once per process (where glibc is the C library and the user set no
    ``MALLOC_*`` variable); returns the one line that says what applies."""
    global STATE
    if STATE is None:
        STATE = _apply()
    return STATE


def _apply() -> str:
    if user := [name for name in USER_SET if name in os.environ]:
        return f"malloc: left as set by you ({', '.join(user)})"
    if platform.libc_ver()[0] != "glibc":
        return "malloc: not glibc, left as it is"
    mallopt = ctypes.CDLL(None).mallopt  # the running process's own glibc, no library search
    failed = [option for option, value in SETTINGS.items() if mallopt(option, value) != 1]
    if failed:
        return f"malloc: glibc refused mallopt option(s) {failed}"
    return "malloc: freed memory kept for reuse (blocks up to 32 MiB from the heap, trimmed beyond 512 MiB)"
