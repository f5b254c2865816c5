"""The float32 matmul precision: chosen once per process, never saved and restored around a run.

Measured on a 2-core AVX-512 CPU: float32 matmuls through oneDNN ("medium"
precision) trained an epoch at batch 64 in 1.48 s instead of 1.86 s
(784-512-10) and 6.11 s instead of 7.37 s (784-1024-1024-10), and stay
float32-accurate there. On CPUs where "medium" really computes in bfloat16,
the check below keeps PyTorch's full precision.

``torch.set_float32_matmul_precision`` is process-wide. Setting it for the
length of each run and putting the previous value back (as this project
once did) is wrong when runs overlap: the first to end puts back a value
the other is still training on, and the last leaves the first one's. So
:func:`ensure_math` chooses it once, at the first run that trains with the
fast path on, and every run after that sets the same value again (the same
for all: nothing to put back, however runs overlap; and a benchmark's own
setting in between does not leak into a run). With the fast path off it
changes nothing.

What that costs: a batch of one row trains faster on "highest" (MKL's
matrix-vector kernels; under "medium" every product, ``addmv`` included,
runs oneDNN's). 784-512-10 at batch 1 took 35.4 s an epoch against 46.5 s
on "medium" (784-1024-1024-10 the same on both), and on 2026-12-05 the
fast path's batch-1 steps of 784-512-10 took 1.20x the CPU time on
"medium" (median of 6 paired turns, range 0.91-1.62, load average 24-42 on
2 cores: noisy). Batch-1 runs used to get "highest" for themselves; one
setting per process cannot, and the default batch (64) is the one it
serves. A process that only predicts never trains, so it keeps PyTorch's
own "highest" (a drawing in 0.11 ms instead of 0.19-0.33 ms).
"""

from __future__ import annotations

import functools
import threading

import torch

_lock = threading.Lock()
_chosen: str | None = None  # the precision ensure_math set in this process


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


def fastest_exact(device_type: str = "cpu", batch_size: int | None = None) -> str:
    """The fastest float32 matmul precision that stays float32-accurate for this device (and batch).

    On CUDA "high" (TF32). On a CPU "medium" (oneDNN's kernels) when a
    measured matmul agrees with float64 to 1e-5 (checked once per process),
    else "highest"; and "highest" for a batch of one row, where MKL's
    matrix-vector kernels are faster (the benchmark times both).
    """
    if device_type == "cuda":
        return "high"
    if batch_size == 1 or not _medium_is_exact():
        return "highest"
    return "medium"


def configure_math(device_type: str = "cpu", batch_size: int | None = None) -> str:
    """Set :func:`fastest_exact` now and return it: for the benchmark and scripts, which own their process.

    Training does not call this: it calls :func:`ensure_math`.
    """
    precision = fastest_exact(device_type, batch_size)
    torch.set_float32_matmul_precision(precision)
    return precision


def ensure_math(device_type: str = "cpu") -> str:
    """The process's float32 matmul precision, set to :func:`fastest_exact` the first time (fast path on).

    Idempotent and thread-safe: the first call with the fast path on
    chooses it for ``device_type``; every call with the fast path on sets
    that same value. Returns what is in force (what a run records). With the
    fast path off, PyTorch's setting is left as it is.
    """
    global _chosen
    from . import enabled  # the package's switch (imported here: the package imports this module lazily)

    if enabled():
        with _lock:
            if _chosen is None:
                _chosen = fastest_exact(device_type)
            torch.set_float32_matmul_precision(_chosen)
    return torch.get_float32_matmul_precision()
