"""Part 2: the machine's limit: sustained matmul GFLOP/s, the epoch bound it sets, Adam's memory traffic."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from mnist_core.config import RunConfig
from mnist_core.costs import count_macs, count_parameters
from mnist_core.device import synchronize
from mnist_core.fast.backprop import back_through
from mnist_core.fast.precision import configure_math
from mnist_core.models import build_model

from .timing import timed, timed_in_turn
from .training import MODELS, bench_device

ADAM_BYTES_PER_PARAM = 28  # a fused Adam step reads weight, gradient, both moments; writes three back


# -- 2. the machine's limit ------------------------------------------------------------
def matmul_gflops(
    size: int = 1024, bursts: int = 10, per_burst: int = 5, dtype: torch.dtype = torch.float32
) -> float:
    """Sustained GFLOP/s of a square matmul (2 n^3 FLOPs each) in ``dtype``: the best of ``bursts``.

    Each burst times ``per_burst`` matmuls back to back (sustained, not one
    lucky call); the best burst is the machine's limit, since a busy
    neighbour can only make a burst slower. (A median under load once gave
    96 GFLOP/s where the quiet machine does 400+, and every "ours/bound"
    ratio came out flattering.) Bursts of torch's ``a @ b`` and of the
    engine's product (:func:`~mnist_core.fast.backprop.back_through`, oneDNN's
    kernel on a CPU) take turns, and the best of either counts: the bound
    is the fastest matmul this torch has, not just the one we use.
    """
    device = bench_device()
    configure_math(device.type)
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))

    def bursts_of(product: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        def burst() -> None:
            for _ in range(per_burst):
                product(a, b)
            synchronize(device)

        return burst

    products = {"torch": bursts_of(torch.mm), "engine": bursts_of(back_through)}
    for burst in products.values():
        burst()  # warm-up
    seconds = timed_in_turn(products, bursts)
    return 2 * size**3 * per_burst / min(min(s) for s in seconds.values()) / 1e9


def copy_gb_s(nbytes: int, bursts: int = 10, per_burst: int = 5) -> float:
    """Best sustained memory traffic, GB/s read + written, copying between two buffers of ``nbytes`` in all.

    Sized like an optimizer's working set, this says whether that set is
    served from the caches or from main memory, and how fast.
    """
    device = bench_device()
    src = torch.ones(max(1, nbytes // 8), device=device)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)

    def burst() -> None:
        for _ in range(per_burst):
            dst.copy_(src)
        synchronize(device)

    return 2 * src.nbytes * per_burst / min(timed(burst, bursts)) / 1e9


def machine_limits(bf16: bool = False) -> dict[str, Any]:
    """Float32 matmul GFLOP/s ("gflops"), the copy speed of each model's Adam working set in GB/s
    ("adam_gb_s": 16 bytes a parameter: weights, gradients, two moments), and with ``bf16`` the
    bfloat16 matmul's GFLOP/s ("gflops_bf16"). Part 1 measures them before and after training
    and keeps the best.
    """
    limits: dict[str, Any] = {"gflops": matmul_gflops()}
    limits["adam_gb_s"] = {name: copy_gb_s(16 * parameter_count(h)) for name, h in MODELS.items()}
    if bf16:
        limits["gflops_bf16"] = matmul_gflops(dtype=torch.bfloat16)
    return limits


def parameter_count(hidden: tuple[int, ...]) -> int:
    return count_parameters(build_model(RunConfig(hidden=hidden)))


def optimizer_floor_s(hidden: tuple[int, ...], batch: int, gb_s: float, images: int = 60_000) -> float:
    """The memory traffic of an epoch's Adam steps alone, at ``gb_s``: a floor the matmul bound ignores.

    Each step reads every weight, its gradient and both moments, and writes
    three of them back (:data:`ADAM_BYTES_PER_PARAM` bytes per parameter),
    however small the batch.
    """
    return math.ceil(images / batch) * ADAM_BYTES_PER_PARAM * parameter_count(hidden) / (gb_s * 1e9)


def epoch_bound_s(hidden: tuple[int, ...], gflops: float, images: int = 60_000) -> float:
    """Training does ~3x the forward FLOPs (forward, grad of inputs, grad of weights)."""
    forward_flops = 2 * count_macs(build_model(RunConfig(hidden=hidden)))
    return 3 * forward_flops * images / (gflops * 1e9)
