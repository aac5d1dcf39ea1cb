"""The choices made before a run starts: threads and OpenMP wait policy, precision; pure functions
over simulated machines (a busy and a quiet one, CPUs with and without bf16), never timed."""

from __future__ import annotations

import os
import sys

import pytest
from omegaconf import OmegaConf

from cnnzoo import threads
from cnnzoo.errors import ConfigError
from cnnzoo.training import precision

STAT = "cpu  {t} 0 0 0 0 0 0 0 0 0\ncpu0 {a} 0 0 {ia} 0 0 0 0 0 0\ncpu1 {b} 0 0 {ib} 0 0 0 0 0 0\nintr 1\n"


def stat(a: int, ia: int, b: int, ib: int) -> str:
    return STAT.format(t=a + b, a=a, ia=ia, b=b, ib=ib)


def test_busy_cores_from_two_proc_stat_readings():
    # cpu0 busy the whole interval, cpu1 idle: one core busy
    assert threads.busy_cores(stat(100, 100, 50, 100), stat(200, 100, 50, 200), [0, 1]) == pytest.approx(1.0)
    assert threads.busy_cores(stat(100, 100, 50, 100), stat(100, 200, 50, 200), [0, 1]) == 0.0
    assert threads.busy_cores(stat(1, 1, 1, 1), stat(1, 1, 1, 1), [0, 1]) == 0.0  # no time passed: quiet


def test_quiet_machine_keeps_torchs_default():
    choice = threads.choose(cores=2, busy=0.1)
    assert (choice.threads, choice.wait_policy, choice.env()) == (None, None, {})
    assert "torch's default" in choice.reason


@pytest.mark.parametrize(("cores", "busy", "expected"), [(2, 1.0, 1), (2, 0.7, 1), (2, 2.0, 1), (16, 3.2, 13)])
def test_busy_machine_gets_one_thread_per_free_core_and_passive_wait(cores, busy, expected):
    choice = threads.choose(cores, busy)
    assert (choice.threads, choice.wait_policy) == (expected, "PASSIVE")
    assert choice.env() == {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": str(expected)}


def test_threads_setting_overrides_the_count():
    assert threads.choose(2, 1.0, threads=2).wait_policy == "PASSIVE"  # more threads than free cores
    assert threads.choose(2, 0.0, threads=2).env() == {"OMP_NUM_THREADS": "2"}
    assert threads.threads_from_argv(["model=asl_cnn", "threads=3"]) == 3
    assert threads.threads_from_argv(["++threads=1"]) == 1 and threads.threads_from_argv(["threads=null"]) is None


def test_configure_sets_the_environment_before_torch_and_respects_the_users(monkeypatch):
    monkeypatch.setattr(threads, "sample_busy", lambda cpus, seconds=0.05: float(len(cpus)))  # all busy
    monkeypatch.setattr(threads, "usable_cpus", lambda: [0, 1])
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # "not imported yet" (restored after the test)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's own choice stays
    choice = threads.configure()
    assert choice.threads == 1 and os.environ["OMP_NUM_THREADS"] == "1" and os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


CPUINFO = "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx2 avx512f {extra}\n\nprocessor\t: 1\n"


def test_bf16_flags_are_read_from_cpuinfo_text():
    assert precision.cpu_bf16_flags(CPUINFO.format(extra="avx512_bf16")) == ["avx512_bf16"]
    assert precision.cpu_bf16_flags(CPUINFO.format(extra="amx_bf16 amx_tile avx512_bf16")) == ["amx_bf16", "avx512_bf16"]
    assert precision.cpu_bf16_flags(CPUINFO.format(extra="avx512_fp16")) == []
    assert precision.cpu_bf16_flags("") == []


@pytest.mark.parametrize(("key", "device", "cuda_bf16", "extra", "expected"), [
    ("fp32", "cpu", False, "avx512_bf16", "32-true"),
    ("bf16", "cpu", False, "", "bf16-mixed"),
    ("auto", "cpu", False, "avx512_bf16", "bf16-mixed"),
    ("auto", "cpu", False, "amx_bf16", "bf16-mixed"),
    ("auto", "cpu", False, "avx2", "32-true"),  # a CPU without bf16
    ("auto", "cuda", True, "", "bf16-mixed"),
    ("auto", "cuda", False, "avx512_bf16", "32-true"),
])
def test_precision_choice(key, device, cuda_bf16, extra, expected):
    value, reason = precision.resolve(key, device, cuda_bf16, CPUINFO.format(extra=extra))
    assert value == expected and "\n" not in reason


def test_auto_says_why_in_one_line():
    assert precision.resolve("auto", "cpu", cpuinfo=CPUINFO.format(extra="x"))[1] == \
        "auto: the CPU has neither amx_bf16 nor avx512_bf16"


def test_unknown_precision_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match=r"^precision='fp16': expected one of fp32, bf16, auto$"):
        precision.resolve("fp16", "cpu")


def test_configure_precision_sets_the_trainer_and_logs_one_line(monkeypatch):
    monkeypatch.setattr(precision, "read_cpuinfo", lambda: CPUINFO.format(extra="sse4"))  # simulated: no bf16
    cfg = OmegaConf.create({"precision": "auto", "trainer": {"accelerator": "cpu"}})
    line = precision.configure_precision(cfg)
    assert cfg.trainer.precision == "32-true" and line == "precision: 32-true on cpu (auto: the CPU has neither " \
        "amx_bf16 nor avx512_bf16)"
    given = OmegaConf.create({"precision": "fp32", "trainer": {"accelerator": "cpu", "precision": "bf16-mixed"}})
    assert "as given" in precision.configure_precision(given) and given.trainer.precision == "bf16-mixed"
    clash = OmegaConf.create({"precision": "bf16", "trainer": {"accelerator": "cpu", "precision": "16-mixed"}})
    with pytest.raises(ConfigError, match="set one of them"):
        precision.configure_precision(clash)
