"""What an entry point does before it imports torch: ``--help`` answered, threads chosen, the cyclic
garbage collector held off.

Why this module exists: the entry points' imports (torch, Lightning, torchmetrics, torchvision) cost
seconds, and three things must happen before them.  ``--help`` (and ``--hydra-help``) needs only the
config, so it is answered by Hydra right here, with the entry point's own config, and the process
exits without having imported torch.  The CPU threads and OpenMP's wait policy must be in the
environment before torch loads libgomp (:mod:`cnnzoo.threads`).  And the imports create some 400,000
long-lived objects (3,000 modules with Lightning), which Python's cyclic collector would scan again and
again while they load and once more at exit: ``import lightning`` took 4.1 s as a process with the
collector on, 2.2 s with it off during the imports and the imported objects frozen after them
(``gc.freeze``: kept out of every later collection, so a collection during training or at exit scans
only what the run itself made).  :func:`imported` is that second half; ``cnnzoo.cli.run`` calls it
once the entry point's module has loaded.  A Ctrl+C during those imports (about 2.5 s) would print
a ``KeyboardInterrupt`` traceback from deep inside torch; until :func:`imported` it is one line and
exit status 130, as a Ctrl+C later in the run gives.  Each ``cnnzoo/<entry point>.py``
starts with ``from cnnzoo.startup import begin; begin(__name__)``; imported as a module (tests,
notebooks) it does nothing.  No torch import here.
"""

from __future__ import annotations

import gc
import signal
import sys

from cnnzoo import threads

HELP_FLAGS = ("--help", "-h", "--hydra-help")
_collector_held = False  # begin() turned the cyclic collector off for this process's imports


def begin(module_name: str) -> None:
    """For ``python -m cnnzoo.<name>``: answer ``--help`` (exits), else choose threads and hold the
    cyclic collector off until :func:`imported`."""
    if module_name != "__main__":
        return
    if any(arg in HELP_FLAGS for arg in sys.argv[1:]):
        _hydra_help()
    threads.configure(threads.threads_from_argv(sys.argv[1:]))
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not where SIGINT is ignored (nohup, &)
        signal.signal(signal.SIGINT, _interrupted_while_starting)
    global _collector_held
    _collector_held = gc.isenabled()
    gc.disable()


def imported() -> None:
    """The entry point's imports are done: freeze what they made and collect again from here on,
    and let Ctrl+C be the run's own again.  Only where :func:`begin` held the collector off (an entry
    point called in-process, as the tests do, leaves the caller's collector alone)."""
    if signal.getsignal(signal.SIGINT) is _interrupted_while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    global _collector_held
    if _collector_held:
        gc.freeze()
        gc.enable()
        _collector_held = False


def _interrupted_while_starting(signum: int, frame: object) -> None:
    """SIGINT before the imports are done: nothing has been read or written yet."""
    print(f"error: interrupted by {signal.Signals(signum).name} while starting; nothing was written", file=sys.stderr)
    raise SystemExit(128 + signum)


def _hydra_help() -> None:
    """Hydra's help for the running entry point (``conf/<name>.yaml``), then exit."""
    import hydra

    import cnnzoo.cli  # noqa: F401 - registers the resolvers the configs' help templates use

    main = sys.modules["__main__"]
    name = (getattr(main, "__spec__", None) and main.__spec__.name or "").rpartition(".")[2]

    def task(cfg) -> None:  # never called: Hydra exits after the help
        raise SystemExit(0)

    # Hydra takes the job name and config_path's base from the task's file: make it cnnzoo/<name>.py.
    task.__module__ = "__main__"
    task.__code__ = task.__code__.replace(co_filename=main.__file__)
    hydra.main(version_base="1.3", config_path="../conf", config_name=name)(task)()
    raise SystemExit(0)
