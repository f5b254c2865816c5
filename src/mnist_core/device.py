"""Device choice and the CPU math settings that make small models fast.

Measured on a 2-core AVX-512 CPU: float32 matmuls through oneDNN ("medium"
precision) trained an epoch at batch 64 in 1.48 s instead of 1.86 s
(784-512-10) and 6.11 s instead of 7.37 s (784-1024-1024-10), and stay
float32-accurate there; at batch 1, MKL ("highest") is faster. On CPUs
where "medium" really computes in bfloat16, the check below keeps full
precision.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch

from .errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda, then mps, then cpu; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "'cuda' was asked for but no CUDA GPU is available; use 'auto' or 'cpu'")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device", "'mps' was asked for but MPS is not available; use 'auto' or 'cpu'")
    if name != "cpu":
        raise ConfigError("device", f"unknown device {name!r}; use auto, cpu, cuda or mps")
    return torch.device(name)


@functools.cache
def _medium_is_exact() -> bool:
    """Whether "medium" float32 matmuls agree with float64 to 1e-5 here (bfloat16 would give ~1e-3)."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        gen = torch.Generator().manual_seed(0)
        a = torch.randn(256, 256, generator=gen)
        b = torch.randn(256, 256, generator=gen)
        exact = a.double() @ b.double()
        error = ((a @ b).double() - exact).abs().max() / exact.abs().max()
    finally:
        torch.set_float32_matmul_precision(previous)
    return bool(error <= 1e-5)


def configure_math(device_type: str = "cpu", batch_size: int | None = None) -> str:
    """Pick the fastest float32 matmul precision that stays float32-accurate; returns it.

    On CUDA that is "high" (TF32). On a CPU, "medium" (oneDNN's kernels)
    when a measured matmul agrees with float64 to 1e-5 (checked once per
    process), else "highest". One exception: a batch of one row trains
    faster on "highest" (MKL's matrix-vector kernels): 784-512-10 at batch 1
    took 35.4 s an epoch against 46.5 s on "medium", 784-1024-1024-10 the
    same on both, while from batch 2 up "medium" was as fast or up to 1.5x
    faster (:func:`benchmarks.bench.ours_epoch_s` under each setting, 2-core CPU).

    The setting is process-wide: two runs training at once with different
    rules share the last one set; both are float32-exact, so only speed
    differs.
    """
    if device_type == "cuda":
        precision = "high"
    elif batch_size == 1 or not _medium_is_exact():
        precision = "highest"
    else:
        precision = "medium"
    torch.set_float32_matmul_precision(precision)
    return precision


@contextlib.contextmanager
def run_math(device_type: str = "cpu", batch_size: int | None = None) -> Iterator[str]:
    """:func:`configure_math` for the length of a run (yields the precision), then the previous one back.

    Between runs a process keeps PyTorch's own setting ("highest"), the
    faster one for a single drawing: MLP 784-512-10 predicted in 0.11 ms
    instead of 0.19-0.33 ms on "medium".
    """
    previous = torch.get_float32_matmul_precision()
    try:
        yield configure_math(device_type, batch_size)
    finally:
        torch.set_float32_matmul_precision(previous)


def synchronize(device: torch.device) -> None:
    """Wait for ``device``'s queued work (CUDA runs asynchronously): a clock read after it is honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
