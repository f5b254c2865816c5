"""Device choice, and waiting for a device's queued work.

The float32 matmul precision, once set here around each run, is chosen once
per process by the fast path: :mod:`mnist_core.fast.precision`.
"""

from __future__ import annotations

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


def synchronize(device: torch.device) -> None:
    """Wait for ``device``'s queued work (CUDA runs asynchronously): a clock read after it is honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
