"""One run, one run dir: a name unique per run, and a lock so that two runs never share a dir.

``conf/hydra/default.yaml`` names the default run dir ``outputs/<job>/${cnnzoo_run_id:}``: the
start time (sortable) and 4 random hex digits, e.g. ``2026-12-01_09-05-33_4f2a``, so runs started
in the same second from one shell loop get a dir each.  The id is drawn once per run: once per
command-line process (Hydra may resolve ``hydra.run.dir`` several times), and again for each run
``cnnzoo.api`` composes (a notebook starts many runs in one process, ``new_run_id``); DDP ranks
started by Lightning get the parent's resolved dir as a ``hydra.run.dir=...`` override, so every
rank of one run writes into the same dir.

``RunDirGuard`` (a Hydra callback, ``conf/hydra/default.yaml``) keeps what an earlier run made: a
run dir (or a sweep dir) that already holds results or checkpoints is refused before Hydra writes
``.hydra/`` into it (as is one that cannot be created), unless this run resumes that one
(``ckpt_path=last`` or another checkpoint of that dir, ``resume=true``, a requeued job);
``cnnzoo.api`` applies the same check.

``lock_run_dir`` is called at the start of ``cnnzoo.train``: it writes ``<dir>/.cnnzoo.lock`` with
this process's PID, locks it (``flock``) and removes it at exit.  A second run given the same dir
while the first is alive stops at once, naming the first; a lock left by a process that is gone is
taken over.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import secrets
import time
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from cnnzoo.errors import TrainingError

LOCK_NAME = ".cnnzoo.lock"
RESULT_FILES = ("metrics.json", "predictions.json", "summary.csv")  # what train/evaluate, predict, a sweep write
_run_id: str | None = None


def run_id() -> str:
    """``<YYYY-mm-dd_HH-MM-SS>_<4 hex>``, the same for every call until ``new_run_id``."""
    global _run_id
    if _run_id is None:
        _run_id = f"{time.strftime('%Y-%m-%d_%H-%M-%S')}_{secrets.token_hex(2)}"
    return _run_id


def new_run_id() -> str:
    """The id of the next run composed in this process, never the last one's."""
    global _run_id
    _run_id = None
    return run_id()


OmegaConf.register_new_resolver("cnnzoo_run_id", run_id, use_cache=True, replace=True)


def earlier_results(run_dir: Path) -> list[str]:
    """What an earlier run left in ``run_dir``: its result files and checkpoints."""
    found = [name for name in RESULT_FILES if (run_dir / name).is_file()]
    checkpoints = run_dir / "checkpoints"
    return found + (["checkpoints"] if checkpoints.is_dir() and any(checkpoints.glob("*.ckpt")) else [])


def check_unused(run_dir: Path, job: str, cfg: DictConfig, key: str = "hydra.run.dir") -> None:
    """Refuse a dir holding an earlier run's results, unless this ``train`` resumes that run."""
    if os.environ.get("LOCAL_RANK", "0") != "0":
        return  # a DDP rank Lightning started shares rank 0's dir on purpose
    found = earlier_results(run_dir)
    if key == "hydra.sweep.dir":  # and its jobs' dirs
        found += [f"{d.name}/{name}" for d in sorted(run_dir.glob("*/")) for name in earlier_results(d)][:3]
    if not found or (job == "train" and _resumes(run_dir, cfg)):
        return
    hint = " (ckpt_path=last resumes the run that is there)" if job == "train" and key == "hydra.run.dir" else ""
    raise TrainingError(f"{key}={run_dir} holds an earlier run's {', '.join(found)}: give a new {key}, or leave it "
                        f"out for a fresh one{hint}")


def _resumes(run_dir: Path, cfg: DictConfig) -> bool:
    """``resume.resumed_by`` (resume=true, a requeued job, ckpt_path=last), or another checkpoint of this dir."""
    from cnnzoo.training.resume import resumed_by  # Lightning: only a train job gets here

    ckpt = cfg.get("ckpt_path")
    return resumed_by(cfg, run_dir) is not None or bool(ckpt and run_dir.resolve() in Path(ckpt).resolve().parents)


class RunDirGuard(Callback):
    """Before Hydra writes into the run dir (or sweep dir): a dir that cannot be created is one line
    (Hydra would create it with a traceback), and for the ``jobs`` that write results into it,
    ``check_unused`` (``summary``'s dir is ``.`` and it writes nothing)."""

    def __init__(self, jobs: list[str]) -> None:
        self.jobs = list(jobs)

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        from cnnzoo.cli import user_errors
        from cnnzoo.errors import ConfigError

        run_dir = Path(config.hydra.run.dir)
        with user_errors():
            self._check(config, run_dir, "hydra.run.dir")
            try:
                run_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ConfigError(f"hydra.run.dir={run_dir}: cannot create it ({e.strerror})") from e

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        from cnnzoo.cli import user_errors

        with user_errors():
            self._check(config, Path(config.hydra.sweep.dir), "hydra.sweep.dir")

    def _check(self, config: DictConfig, path: Path, key: str) -> None:
        if config.hydra.job.name in self.jobs:
            check_unused(path.resolve(), config.hydra.job.name, config, key)
        if config.hydra.job.name == "train" and key == "hydra.run.dir":
            from cnnzoo.training.resume import check_same_config, flat_config, resumed_by

            given = resumed_by(config, path.resolve())
            if given:  # before Hydra rewrites .hydra/ in it: a refused resume leaves the dir as it was
                check_same_config(flat_config(config), path.resolve(), given)


def lock_run_dir(run_dir: Path) -> None:
    """Hold ``run_dir`` for this run until the process exits; another live run holding it is an error.

    The lock is an ``flock`` on ``<dir>/.cnnzoo.lock``, so the kernel drops it when its process dies
    however it dies: a lock file left by a dead run is simply taken over.  Only the global rank 0 of
    a DDP run takes it (the other ranks share the dir on purpose).
    """
    from lightning.pytorch.utilities import rank_zero_only  # a run imports Lightning anyway; --help does not

    if rank_zero_only.rank != 0 or run_dir.resolve() in _held:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / LOCK_NAME
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise TrainingError(f"run dir {run_dir} is in use by another run (PID {holder}, lock {lock}); "
                                "wait for it to finish or give another hydra.run.dir") from None
        try:
            same_file = os.stat(lock).st_ino == os.fstat(fd).st_ino  # not removed by its last holder meanwhile
        except FileNotFoundError:
            same_file = False
        if same_file:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held[run_dir.resolve()] = fd
    atexit.register(_release, lock, fd, os.getpid())


_held: dict[Path, int] = {}  # run dir -> the open, locked file descriptor


def _release(lock: Path, fd: int, pid: int) -> None:
    """Remove the lock file, then drop the lock (a forked child inherits atexit, not the lock)."""
    if os.getpid() != pid:
        return
    lock.unlink(missing_ok=True)
    os.close(fd)
