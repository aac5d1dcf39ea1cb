"""The Sign-MNIST decoded-array cache, through a real (in-process) ``cnnzoo.train`` run: a damaged
cache file is rebuilt, new cache files get the permissions the umask gives any new file, and the
same read-only files seen from two folders share one entry in the user's cache."""

from __future__ import annotations

import os
import shutil
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


def test_read_only_copies_of_the_same_files_share_one_user_cache_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_sign_dataset(tmp_path / "one" / "sign_mnist", n_train=24, n_test=24, seed=3)
    shutil.copytree(tmp_path / "one", tmp_path / "two")  # copy2: same sizes and modification times
    for copy in ("one", "two"):
        (tmp_path / copy / "sign_mnist").chmod(0o555)  # read-only, as shared data is kept
    try:
        for copy in ("one", "two"):
            SignMNISTDataModule(data_dir=tmp_path / copy).setup()
        assert len(list((tmp_path / "cache" / "cnnzoo").iterdir())) == 2  # the train and test CSVs, once
        source = tmp_path / "two" / "sign_mnist" / "sign_mnist_test.csv.gz"
        os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))  # a changed file
        SignMNISTDataModule(data_dir=tmp_path / "two").setup()
        assert len(list((tmp_path / "cache" / "cnnzoo").iterdir())) == 3
    finally:
        for copy in ("one", "two"):
            (tmp_path / copy / "sign_mnist").chmod(0o755)
