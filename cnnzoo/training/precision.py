"""The ``precision`` key: fp32, bf16 or auto, mapped to the Lightning trainer's ``precision``.

Why this module exists: bf16 mixed precision (``torch.autocast`` with bfloat16: convolutions and
matrix products in bf16; weights, BatchNorm statistics, the loss and the optimizer state in fp32,
so checkpoints stay fp32 and load anywhere) is faster only where the hardware computes bf16
natively: CPUs with AMX-BF16 or AVX512-BF16, CUDA GPUs that support it.  ``auto`` picks it there
and fp32 elsewhere, and says which and why in one log line.  Detection reads ``/proc/cpuinfo``'s
flags through :func:`cpu_bf16_flags`, a function of the text, so a CPU without bf16 can be simulated.
"""

from __future__ import annotations

from pathlib import Path

from cnnzoo.errors import ConfigError

CHOICES = {"fp32": "32-true", "bf16": "bf16-mixed", "auto": None}
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_bf16_flags(cpuinfo: str) -> list[str]:
    """The bf16 flags (``amx_bf16``, ``avx512_bf16``) in ``/proc/cpuinfo`` text's first ``flags`` line."""
    line = next((line for line in cpuinfo.splitlines() if line.split(":")[0].strip() in ("flags", "Features")), "")
    flags = set(line.partition(":")[2].split())
    return [flag for flag in BF16_FLAGS if flag in flags]


def read_cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def resolve(precision: str, device: str, cuda_bf16: bool = False, cpuinfo: str = "") -> tuple[str, str]:
    """(Lightning precision, reason) for the ``precision`` key on ``device`` (``cpu`` or ``cuda``)."""
    if precision not in CHOICES:
        raise ConfigError(f"precision={precision!r}: expected one of {', '.join(CHOICES)}")
    if precision != "auto":
        return CHOICES[precision], f"precision={precision}"
    if device == "cuda":
        return ("bf16-mixed", "auto: this CUDA GPU supports bf16") if cuda_bf16 else \
            ("32-true", "auto: this CUDA GPU has no bf16 support")
    flags = cpu_bf16_flags(cpuinfo)
    if flags:
        return "bf16-mixed", f"auto: the CPU has {' and '.join(flags)}"
    return "32-true", f"auto: the CPU has neither {' nor '.join(BF16_FLAGS)}"


def trainer_device(accelerator: str | None) -> str:
    """``cuda`` or ``cpu``: where a trainer with this ``accelerator`` runs."""
    import torch

    if accelerator in ("gpu", "cuda"):
        return "cuda"
    return "cuda" if accelerator in (None, "auto") and torch.cuda.is_available() else "cpu"


def configure_precision(cfg) -> str:
    """Set ``cfg.trainer.precision`` from ``cfg.precision`` (a ``trainer.precision`` given with the
    default ``precision=fp32`` is kept); returns the one line to log."""
    import torch
    from omegaconf import open_dict

    key = cfg.get("precision") or "fp32"
    given = cfg.trainer.get("precision")
    if key == "fp32" and given is not None:
        return f"precision: trainer.precision={given} (as given)"
    device = trainer_device(cfg.trainer.get("accelerator"))
    cuda_bf16 = device == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    value, reason = resolve(key, device, cuda_bf16, read_cpuinfo() if device == "cpu" else "")
    if given is not None and str(given) != value:
        raise ConfigError(f"precision={key} gives trainer.precision={value} but trainer.precision={given} is given; "
                          "set one of them")
    with open_dict(cfg):
        cfg.trainer.precision = value
    return f"precision: {value} on {device} ({reason})"
