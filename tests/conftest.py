"""Shared fixtures: small dataset files in the real on-disk formats, and the real-data switch.

Generated files keep unit tests fast and hermetic; real-data tests read ``CNNZOO_DATA_DIR`` (and the
Debian Fashion-MNIST path) and are skipped when the data is absent, except under ``CI=true`` where a
missing dataset is a failure.
"""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"

SIGN_LABELS = [label for label in range(25) if label != 9]


def idx_bytes(array: np.ndarray) -> bytes:
    magic = 2051 if array.ndim == 3 else 2049
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()


def write_idx_dataset(folder: Path, n_train: int = 96, n_test: int = 40, seed: int = 0, gz: bool = True) -> dict:
    """Four IDX files with random images and labels 0..9 whose first pixel encodes the label."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        images[:, 0, 0] = labels * 20
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte"
            data = idx_bytes(array)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
        arrays[prefix] = (images, labels)
    return arrays


def sign_csv_text(labels, pixels, newline: str = "\r\n") -> str:
    header = "label," + ",".join(f"pixel{i}" for i in range(1, 785))
    rows = [f"{label}," + ",".join(map(str, row)) for label, row in zip(labels, pixels.reshape(len(labels), -1))]
    return newline.join([header, *rows]) + newline


def write_sign_dataset(folder: Path, n_train: int = 72, n_test: int = 48, seed: int = 0, gz: bool = True) -> dict:
    """Kaggle-format Sign-MNIST CSVs covering all 24 labels (CRLF like the Kaggle files)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = np.array([SIGN_LABELS[i % 24] for i in range(n)])
        rng.shuffle(labels)
        pixels = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        text = sign_csv_text(labels, pixels).encode()
        path = folder / f"sign_mnist_{split}.csv"
        if gz:
            path.with_suffix(".csv.gz").write_bytes(gzip.compress(text))
        else:
            path.write_bytes(text)
        arrays[split] = (pixels, labels)
    return arrays


def write_datasets(root: Path) -> Path:
    """Small MNIST, Fashion-MNIST and Sign-MNIST files under ``root`` (the same bytes every time)."""
    write_idx_dataset(root / "mnist", seed=1)
    write_idx_dataset(root / "fashion_mnist", seed=2)
    write_sign_dataset(root / "sign_mnist", seed=3)
    return root


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data dir with small MNIST, Fashion-MNIST and Sign-MNIST files; caches go to tmp too."""
    root = write_datasets(tmp_path / "data")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CNNZOO_DATA_DIR", str(root))
    return root


@pytest.fixture
def torch_threads():
    """Puts torch's thread count back after a test that changes it (``threads=N`` in-process)."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def real_data_dir() -> Path:
    """The real datasets' root; skips (or fails under CI=true) when it is not there."""
    root = os.environ.get("CNNZOO_DATA_DIR")
    if root and Path(root).is_dir():
        return Path(root)
    message = f"real data not found: set CNNZOO_DATA_DIR to the folder holding mnist/ and sign_mnist/ (got {root!r})"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def compose_run(config_name: str, run_dir: Path, *overrides: str) -> DictConfig:
    """The config ``python -m cnnzoo.<config_name> hydra.run.dir=<run_dir> <overrides>`` runs with,
    installed as the current Hydra config so entry-point functions can be called in-process."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig().set_config(cfg)
    return cfg


def run_cli(module: str, *args: str, timeout: int = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m cnnzoo.<module> <args>`` from the repo root, output captured."""
    return subprocess.run(
        [sys.executable, "-m", f"cnnzoo.{module}", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


def run_main(module, *argv: str) -> None:
    """``python -m <module> <argv>`` in-process: its ``@hydra.main`` through ``cnnzoo.cli.run``, so
    what Hydra reports while composing (and ``--help``) goes to this process's stdout/stderr."""
    from hydra.core.global_hydra import GlobalHydra

    from cnnzoo.cli import run

    saved, task = sys.argv, module.main.__wrapped__
    sys.argv = [module.__file__, *argv]
    task.__module__ = "__main__"  # Hydra finds ../conf from the file, as under `python -m`
    try:
        run(module.main)
    finally:
        sys.argv, task.__module__ = saved, module.__name__
        GlobalHydra.instance().clear()


def popen_cli(module: str, *args: str, cwd: Path, env: dict[str, str] | None = None,
              log: Path | None = None) -> subprocess.Popen:
    """``python -m cnnzoo.<module> <args>`` started in ``cwd`` (this checkout's cnnzoo), not waited for;
    its output piped, or written to ``log`` (for a process that runs on while the test goes on)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    out = log.open("w") if log else subprocess.PIPE
    return subprocess.Popen([sys.executable, "-m", f"cnnzoo.{module}", *args], cwd=cwd, env=env, text=True,
                            stdout=out, stderr=subprocess.STDOUT if log else subprocess.PIPE)


def save_checkpoint(module, path: Path) -> Path:
    """Write ``module`` (untrained is fine) as a Lightning checkpoint, as ``cnnzoo.train`` would."""
    import lightning as L

    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(path)
    return path


def inject_callback(monkeypatch: pytest.MonkeyPatch, callback) -> None:
    """Put ``callback`` first in the Trainer that ``cnnzoo.train`` builds (for tests that watch steps)."""
    import lightning as L

    import cnnzoo.train as entry

    real = entry.instantiate

    def instantiate(config, *args, **kwargs):
        made = real(config, *args, **kwargs)
        if isinstance(made, L.Trainer):
            made.callbacks.insert(0, callback)
        return made

    monkeypatch.setattr(entry, "instantiate", instantiate)
