"""Part 1: seconds per epoch of our engine against a blog-style reference pipeline.

The reference is written the way the blog did it: a torchvision dataset with
per-sample ToImage/ToDtype/Normalize, a shuffling DataLoader, a plain loop with
``torch.optim.Adam`` and PyTorch's default math settings. Batch 1 is timed over
a few thousand steps and extrapolated to an epoch, and its step is split into parts.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import v2

from mnist_core import fast
from mnist_core.config import RunConfig
from mnist_core.data import NORMALIZATION, load_data, load_split
from mnist_core.device import resolve_device, synchronize
from mnist_core.fast.backprop import PlainMLP
from mnist_core.fast.precision import configure_math
from mnist_core.fast.step import buffered_update
from mnist_core.models import build_model
from mnist_core.train import train
from mnist_core.train_step import make_optimizer

from .timing import timed
from .whole_runs import median_range

MODELS = {"784-512-10": (512,), "784-1024-1024-10": (1024, 1024)}
BATCH_ONE_STEPS = 3000
WARM_UP_STEPS = 200  # untimed steps before an extrapolated measurement
TORCH_DEFAULT_PRECISION = "highest"  # torch.get_float32_matmul_precision() in a fresh process


# -- 1. training: ours against the reference ----------------------------------------
def bench_device() -> torch.device:
    """Where parts 1 and 2 run: a CUDA GPU when there is one (data resident there), else the CPU."""
    return resolve_device("auto")


def model_config(model: tuple[int, ...] | RunConfig) -> RunConfig:
    """The configuration of a row: an MLP's hidden widths, or a whole configuration (a CNN's)."""
    return model if isinstance(model, RunConfig) else RunConfig(hidden=model)


def ours_epoch_s(
    hidden: tuple[int, ...] | RunConfig, batch: int, root: Path, steps: int | None, amp: bool = False
) -> float:
    """One epoch of our engine on all 60k training images (no validation split); ``amp``: bfloat16.

    ``hidden``: an MLP's widths, or the configuration of any model (a CNN).

    With ``steps``, the epoch is extrapolated from ``steps`` steps timed after
    :data:`WARM_UP_STEPS` untimed ones, so one-off costs (building the
    model, the first kernel calls) are not multiplied by the extrapolation.
    """
    cfg = model_config(hidden).replace(batch_size=batch, epochs=1, val_fraction=0.0, amp=amp)
    data = load_data(root=root, val_fraction=0.0)
    per_epoch = math.ceil(len(data.train) / batch)
    warm = _warm_up(steps, per_epoch)
    count, clock = {"n": 0}, {"start": 0.0, "end": 0.0}

    def stop() -> bool:  # polled before each step
        count["n"] += 1
        if count["n"] == warm + 1:
            clock["start"] = time.perf_counter()
        if steps is not None and count["n"] > warm + steps:
            clock["end"] = time.perf_counter()
            return True
        return False

    start = time.perf_counter()
    train(cfg, data, should_stop=stop)
    if steps is None:
        return time.perf_counter() - start
    timed_steps = min(steps, count["n"] - warm)  # fewer when the epoch is shorter than the ask
    end = clock["end"] or time.perf_counter()
    return (end - clock["start"]) / max(timed_steps, 1) * per_epoch


def _warm_up(steps: int | None, per_epoch: int) -> int:
    """Untimed steps before ``steps`` timed ones: :data:`WARM_UP_STEPS`, or what an epoch leaves room for."""
    return 0 if steps is None else max(0, min(WARM_UP_STEPS, per_epoch - steps - 1))


def reference_epoch_s(
    hidden: tuple[int, ...] | RunConfig, batch: int, root: Path, steps: int | None
) -> float:
    """The blog's way: per-sample transforms, a DataLoader, a plain Adam loop, PyTorch's defaults.

    The blog set no math options, so the reference runs on PyTorch's default
    float32 matmul precision ("highest"), whatever our engine set before it,
    and its model is built as plain PyTorch lays it out (the fast path off).
    """
    torch.set_float32_matmul_precision(TORCH_DEFAULT_PRECISION)
    device = bench_device()
    loader = reference_loader(root, batch)
    fast.set_enabled(False)
    try:
        model = build_model(model_config(hidden)).to(device)
    finally:
        fast.set_enabled(None)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    warm = _warm_up(steps, len(loader))
    start = time.perf_counter()
    for i, (x, y) in enumerate(loader):
        if steps is not None and i == warm:
            synchronize(device)
            start = time.perf_counter()  # as for ours: one-off costs are not extrapolated
        if steps is not None and i >= warm + steps:
            break
        x, y = x.to(device), y.to(device)  # each batch copied to the device, as the blog's loop did
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    synchronize(device)
    elapsed = time.perf_counter() - start
    return elapsed if steps is None else elapsed / steps * len(loader)


def reference_loader(root: Path, batch: int) -> DataLoader:
    """The blog's data path: torchvision's MNIST, per-sample ToImage/ToDtype/Normalize, shuffled."""
    mean, std = NORMALIZATION["mnist"]
    transform = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize([mean], [std])])
    dataset = datasets.MNIST(str(root), train=True, download=False, transform=transform)
    return DataLoader(dataset, batch_size=batch, shuffle=True)


def batch_one_parts(hidden: tuple[int, ...], root: Path, steps: int = 300) -> dict[str, dict[str, float]]:
    """Where a batch-1 step goes: median ms of each part, for our engine and for the reference.

    Forward, backward and the optimizer step are timed one image at a time,
    each side with its own math setting, optimizer and backward (ours:
    :func:`configure_math` for batch 1, :func:`make_optimizer` and the
    hand-derived :class:`PlainMLP` step, whose backward includes the loss,
    with the engine's update (:func:`mnist_core.fast.step.buffered_update`: the
    fused kernel called directly, its state kept out of the subnormal range);
    the reference: PyTorch's defaults, a plain Adam, autograd with the loss
    in the forward and zero_grad in the backward). The reference's "data" is
    one item of its DataLoader.
    """
    device = bench_device()
    x_all, y_all = (t.to(device) for t in load_split("mnist", True, root).tensors())
    out: dict[str, dict[str, float]] = {}
    for side in ("ours", "reference"):
        cfg = RunConfig(hidden=hidden, batch_size=1)
        model = build_model(cfg).to(device).train()
        if side == "ours":
            configure_math(device.type, batch_size=1)
            optimizer = make_optimizer(cfg, model)
        else:
            torch.set_float32_matmul_precision(TORCH_DEFAULT_PRECISION)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        forward, backward = _ours_halves(model) if side == "ours" else _reference_halves(model, optimizer)
        update = buffered_update(optimizer) if side == "ours" else optimizer.step
        parts: dict[str, list[float]] = {"forward": [], "backward": [], "optimizer": []}
        warm_up = 50
        for i in range(warm_up + steps):
            x, y = x_all[i : i + 1], y_all[i : i + 1]
            t0 = time.perf_counter()
            carried = forward(x, y)
            synchronize(device)
            t1 = time.perf_counter()
            backward(carried, y)
            synchronize(device)
            t2 = time.perf_counter()
            update()
            synchronize(device)
            t3 = time.perf_counter()
            if i >= warm_up:
                for key, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2), strict=True):
                    parts[key].append(seconds)
        out[side] = {key: statistics.median(v) * 1000 for key, v in parts.items()}
    items = iter(reference_loader(root, 1))
    next(items)
    out["reference"]["data"] = statistics.median(timed(lambda: next(items), steps)) * 1000
    return out


_Halves = tuple[Callable[[torch.Tensor, torch.Tensor], Any], Callable[[Any, torch.Tensor], Any]]


def _ours_halves(model: torch.nn.Module) -> _Halves:
    """Our engine's forward and backward of a plain MLP (hand-derived; the loss is in the backward)."""
    mlp = PlainMLP.of(model)
    assert mlp is not None, "our engine trains these MLPs by hand"
    return (lambda x, _y: mlp.forward(x)), mlp.backward


def _reference_halves(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> _Halves:
    """The blog's forward (with the loss) and backward (with zero_grad), through autograd."""

    def backward(loss: torch.Tensor, _y: torch.Tensor) -> None:
        optimizer.zero_grad()
        loss.backward()

    return (lambda x, y: F.cross_entropy(model(x), y)), backward


def bench_training(root: Path, batches: list[int], repeats: int, bf16: bool = False) -> list[dict[str, Any]]:
    """Part 1's rows; with ``bf16``, our engine once more in mixed precision (``RunConfig.amp``)."""
    rows = []
    for name, hidden in MODELS.items():
        for batch in batches:
            steps = BATCH_ONE_STEPS if batch == 1 else None
            ours, ref, mixed = [], [], []
            for _ in range(repeats):  # alternated, so a slow spell of a shared host hits every side
                ours.append(ours_epoch_s(hidden, batch, root, steps))
                ref.append(reference_epoch_s(hidden, batch, root, steps))
                if bf16:
                    mixed.append(ours_epoch_s(hidden, batch, root, steps, amp=True))
            rows.append({
                "model": name, "batch": batch, "ours_s": median_range(ours), "reference_s": median_range(ref),
                "speedup": statistics.median(ref) / statistics.median(ours),
                "ours_samples_per_s": 60_000 / statistics.median(ours),
                "extrapolated_from_steps": steps,
            })
            if batch == 1:
                rows[-1]["parts_ms"] = batch_one_parts(hidden, root)
            if mixed:
                rows[-1]["ours_bf16_s"] = median_range(mixed)
    return rows
