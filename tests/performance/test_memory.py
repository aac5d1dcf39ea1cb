"""``cnnzoo.memory.tune``: glibc's malloc set with ``mallopt`` to keep freed memory for reuse, once per
process; a user's own ``MALLOC_*`` setting, or another C library, is left alone."""

from __future__ import annotations

import platform

import pytest

from cnnzoo import memory


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch):
    """``tune`` as in a new process, ``mallopt`` recorded instead of called."""
    calls: list[tuple[int, int]] = []

    class LibC:
        @staticmethod
        def mallopt(option: int, value: int) -> int:
            calls.append((option, value))
            return 1

    monkeypatch.setattr(memory, "STATE", None)
    monkeypatch.setattr(memory.ctypes, "CDLL", lambda name: LibC)
    monkeypatch.setattr(platform, "libc_ver", lambda: ("glibc", "2.36"))
    for name in memory.USER_SET:
        monkeypatch.delenv(name, raising=False)
    return calls


def test_glibc_gets_the_three_settings_once(fresh):
    line = memory.tune()
    assert line.startswith("malloc: freed memory kept for reuse")
    assert fresh == [(-3, 32 * 2**20), (-1, 512 * 2**20), (-2, 64 * 2**20)]  # mmap, trim threshold, top pad
    assert memory.tune() == line and len(fresh) == 3  # once per process


def test_a_users_malloc_variable_is_respected(fresh, monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    assert memory.tune() == "malloc: left as set by you (MALLOC_ARENA_MAX)" and fresh == []


def test_another_c_library_is_left_alone(fresh, monkeypatch):
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert memory.tune() == "malloc: not glibc, left as it is" and fresh == []


def test_a_refused_option_is_said(fresh, monkeypatch):
    monkeypatch.setattr(memory.ctypes, "CDLL", lambda name: type("LibC", (), {"mallopt": staticmethod(lambda o, v: 0)}))
    assert memory.tune() == "malloc: glibc refused mallopt option(s) [-3, -1, -2]"
