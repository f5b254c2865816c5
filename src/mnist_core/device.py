"""Device choice and the CPU math settings that make small models fast.

Measured on a 2-core CPU (see ../shared/STACK.md and the benchmark): float32
matmuls through oneDNN ("medium" precision) are 1.4-2x faster per epoch and
still float32-accurate there. On CPUs where "medium" really computes in
bfloat16 (AMX), the start-up check below keeps full precision.
"""

from __future__ import annotations

import functools

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
def configure_math(device_type: str = "cpu") -> str:
    """Pick the fastest float32 matmul precision that stays float32-accurate.

    On CUDA that is "high" (TF32). On a CPU, "medium" when a measured matmul
    agrees with float64 to 1e-5, else "highest". Returns the precision in
    force; the check runs once per process and device type.
    """
    if device_type == "cuda":
        torch.set_float32_matmul_precision("high")
        return "high"
    torch.set_float32_matmul_precision("medium")
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(256, 256, generator=gen)
    b = torch.randn(256, 256, generator=gen)
    exact = a.double() @ b.double()
    error = ((a @ b).double() - exact).abs().max() / exact.abs().max()
    if error > 1e-5:  # bfloat16 would give ~1e-3
        torch.set_float32_matmul_precision("highest")
        return "highest"
    return "medium"
