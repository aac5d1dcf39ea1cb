"""CPU threads and OpenMP's wait policy, chosen from the cores that are free when a run starts.

Why this module exists: torch's default (one thread per core, libgomp spin-waiting between
parallel regions) is the fastest choice on a quiet machine and a collapse on a busy one: on a
2-core machine with one core held by another process a fashion_cnn step fell from 2,893 to
161 images/s, because the spinning thread and the other process fight for the same core.
``OMP_WAIT_POLICY=PASSIVE`` survives that but costs about a quarter on a quiet machine.  So the
choice is made per run, from the cores free at start (``/proc/stat`` sampled for 50 ms):

* all cores free (less than half a core busy): torch's default, untouched;
* some busy: one thread per free core (at least 1) and ``OMP_WAIT_POLICY=PASSIVE``.

libgomp reads ``OMP_WAIT_POLICY`` once, when torch loads it, so this must run before ``import torch``:
the entry points (``python -m cnnzoo.train`` ...) call :func:`configure` first, through
:func:`cnnzoo.startup.begin`.  In a Jupyter
kernel that already imported torch only the thread count can still change (``torch.set_num_threads``);
the wait policy applies from the next kernel, with ``OMP_WAIT_POLICY=PASSIVE`` set before it starts or
``import cnnzoo.threads; cnnzoo.threads.configure()`` run before ``import torch``.  ``threads=N`` on the
command line (or set in the config) overrides the thread count; ``OMP_NUM_THREADS`` or
``OMP_WAIT_POLICY`` set by the user are never changed.  No torch import here.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Sequence

from cnnzoo.errors import ConfigError

QUIET_BELOW = 0.5  # cores busy with other work below which the machine counts as quiet
SAMPLE_S = 0.05


@dataclasses.dataclass(frozen=True)
class ThreadChoice:
    """What a run uses: ``threads`` (None: torch's default) and ``wait_policy`` (None: libgomp's)."""

    cores: int
    busy: float  # cores busy with other processes when sampled
    threads: int | None
    wait_policy: str | None
    reason: str

    def env(self) -> dict[str, str]:
        """The environment variables that put this choice in place before torch starts."""
        out = {"OMP_WAIT_POLICY": self.wait_policy} if self.wait_policy else {}
        return out | ({"OMP_NUM_THREADS": str(self.threads)} if self.threads else {})


def choose(cores: int, busy: float, threads: int | None = None) -> ThreadChoice:
    """The thread count and wait policy for ``cores`` usable cores of which ``busy`` are taken by
    other processes; ``threads`` (the ``threads=`` setting) fixes the count."""
    cores = max(1, cores)
    free = max(1, round(cores - busy)) if busy >= QUIET_BELOW else cores
    where = f"{busy:.1f} of {cores} cores busy at start"
    if threads:
        passive = threads > free
        why = f"threads={threads}" + (f" > {free} free core(s): passive OpenMP wait" if passive else "")
        return ThreadChoice(cores, busy, threads, "PASSIVE" if passive else None, f"{where}; {why}")
    if busy < QUIET_BELOW:
        return ThreadChoice(cores, busy, None, None, f"{where}: torch's default threads, OpenMP active wait")
    return ThreadChoice(cores, busy, free, "PASSIVE", f"{where}: {free} thread(s), passive OpenMP wait")


def usable_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def _cpu_times(text: str, cpus: Sequence[int]) -> tuple[int, int]:
    """(busy, total) jiffies over ``cpus`` from ``/proc/stat`` text."""
    busy = total = 0
    wanted = {f"cpu{c}" for c in cpus}
    for line in text.splitlines():
        name, *fields = line.split()
        if name in wanted:
            values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
            total += sum(values)
            busy += sum(values) - values[3] - values[4]
    return busy, total


def busy_cores(first: str, second: str, cpus: Sequence[int]) -> float:
    """Cores busy between two ``/proc/stat`` readings (0 when they cannot tell)."""
    (b0, t0), (b1, t1) = _cpu_times(first, cpus), _cpu_times(second, cpus)
    return len(cpus) * (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


def sample_busy(cpus: Sequence[int], seconds: float = SAMPLE_S) -> float:
    """Cores busy with other work now: ``/proc/stat`` over ``seconds`` (this process sleeps)."""
    try:
        first = open("/proc/stat").read()
        time.sleep(seconds)
        second = open("/proc/stat").read()
    except OSError:
        return 0.0
    return busy_cores(first, second, cpus)


def threads_from_argv(argv: Sequence[str]) -> int | None:
    """``threads=N`` (or ``+threads=N``/``++threads=N``) among Hydra overrides."""
    for arg in argv:
        key, _, value = arg.lstrip("+").partition("=")
        if key == "threads" and value.isdigit() and int(value) > 0:
            return int(value)
    return None


def check(threads: object) -> int | None:
    """``threads=``: null or a positive count (the one message of every entry point)."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads={threads!r}: expected a positive integer (or null for torch's default)")
    return threads


#: the choice this process made (None until :func:`configure` ran)
CHOICE: ThreadChoice | None = None


def configure(threads: int | None = None) -> ThreadChoice:
    """Sample the free cores and put the choice in place: environment variables before torch is
    imported, ``torch.set_num_threads`` after (then the wait policy can no longer change)."""
    global CHOICE
    cpus = usable_cpus()
    CHOICE = choose(len(cpus), sample_busy(cpus), threads)
    user_set = {k for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY") if k in os.environ}
    if "torch" in sys.modules:
        if CHOICE.threads and "OMP_NUM_THREADS" not in user_set:
            sys.modules["torch"].set_num_threads(CHOICE.threads)
        if CHOICE.wait_policy:
            CHOICE = dataclasses.replace(CHOICE, reason=CHOICE.reason + " (torch already imported: the wait "
                                         "policy applies from the next process)")
    else:
        os.environ.update({k: v for k, v in CHOICE.env().items() if k not in user_set})
    return CHOICE


def apply(threads: int | None, trained_with: int | None = None) -> str:
    """In the run (torch imported): the configured ``threads``, else the count the checkpoint being
    resumed was trained with (``trained_with``: a CPU run's results depend on its thread count, so a
    resume on a busier or quieter machine would otherwise not continue bit for bit), else this
    process's choice; returns the one line to log."""
    import torch

    why = CHOICE.reason if CHOICE else "not chosen here: started in-process, not as python -m cnnzoo.*"
    if threads:
        torch.set_num_threads(threads)
    elif trained_with:
        torch.set_num_threads(trained_with)
        why = "the count the resumed checkpoint was trained with: results depend on it"
    policy = os.environ.get("OMP_WAIT_POLICY", "default")
    return f"threads: {torch.get_num_threads()} torch thread(s), OMP_WAIT_POLICY={policy} ({why})"
