"""The Sign-MNIST decoded-array cache, through a real (in-process) ``cnnzoo.train`` run: a damaged
cache file is rebuilt, and new cache files get the permissions the umask gives any new file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from cnnzoo.data import SignMNISTDataModule
from cnnzoo.train import train
from tests.conftest import compose_run, write_sign_dataset


def _train_asl(data: Path, run_dir: Path) -> dict:
    return train(compose_run("train", run_dir, "model=asl_cnn", f"data.data_dir={data}", "debug=fast_dev_run",
                             "data.batch_size=8", "~logger", "callbacks.input_inspection=null"))


def _caches(data: Path) -> list[Path]:
    return sorted((data / "sign_mnist").glob("*.cnnzoo.npz"))


def test_a_damaged_cache_file_is_rebuilt_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    arrays = write_sign_dataset(tmp_path / "data" / "sign_mnist", seed=3)
    SignMNISTDataModule(data_dir=tmp_path / "data").setup()  # writes the caches next to the CSVs
    caches = _caches(tmp_path / "data")
    assert len(caches) == 2
    train_cache, test_cache = sorted(caches, key=lambda c: "test" in c.name)
    data = train_cache.read_bytes()
    train_cache.write_bytes(data[: len(data) // 2])  # truncated: a run killed by a full disk, a bad copy
    with test_cache.open("wb") as f:  # an older layout, without the fingerprint this version writes
        np.savez(f, pixels=np.zeros(3))
    result = _train_asl(tmp_path / "data", tmp_path / "run")
    assert result["status"] == "completed"
    for cache, split in zip(caches, ["test", "train"]):  # sorted: sign_mnist_test..., sign_mnist_train...
        assert split in cache.name
        with np.load(cache) as stored:
            pixels, _ = arrays[split]
            assert np.array_equal(stored["images"].reshape(pixels.shape), pixels)


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664)], ids=["022", "002"])
def test_new_cache_files_get_the_umask_permissions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask: int,
                                                   mode: int):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_sign_dataset(tmp_path / "data" / "sign_mnist", n_train=24, n_test=24, seed=3)
    previous = os.umask(umask)
    try:
        _train_asl(tmp_path / "data", tmp_path / "run")
    finally:
        os.umask(previous)
    caches = _caches(tmp_path / "data")
    assert len(caches) == 2
    assert {stat.S_IMODE(c.stat().st_mode) for c in caches} == {mode}
    assert not list((tmp_path / "data" / "sign_mnist").glob(".*.tmp"))  # no temporary file left behind
