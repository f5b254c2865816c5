"""How one training step is built: the optimizer, the learning-rate schedule, autocast and the step function.

:func:`make_optimizer` picks Adam/AdamW/SGD with the fused kernel where the
device has one, :func:`make_scheduler` the per-step schedule over the whole
run, :func:`autocast_for` the bfloat16 autocast of ``cfg.amp``, and
:func:`make_step` the ``(x, y) -> (loss, logits)`` step the loop calls: the
fast path's (:mod:`mnist_core.fast`) when it is on, else
:func:`autograd_step`. Nothing here loops, times or reports progress; that is
:mod:`mnist_core.train`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import fast
from .config import RunConfig
from .errors import ConfigError


def make_optimizer(cfg: RunConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Adam/AdamW/SGD with the fused kernel when the device has one.

    Fused steps avoid one kernel per parameter and the allocator churn of the
    for-loop path: 1.2-3.6x faster steps on a CPU (see the benchmark).
    """
    opts: dict[str, Any] = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    if cfg.optimizer == "sgd":
        cls: type[torch.optim.Optimizer] = torch.optim.SGD
        opts["momentum"] = cfg.momentum
    else:
        cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    try:
        return cls(model.parameters(), fused=True, **opts)
    except (RuntimeError, TypeError):  # no fused kernel for this device/dtype
        return cls(model.parameters(), foreach=True, **opts)


AutocastFn = Callable[[], contextlib.AbstractContextManager[Any]]


def autocast_for(cfg: RunConfig, device: torch.device) -> AutocastFn:
    """What a forward pass through autograd runs under: bfloat16 autocast when ``cfg.amp``, else nothing.

    Weights, gradients and the optimizer stay float32; autocast runs matmuls
    and convolutions in bfloat16 and keeps the loss in float32, so no gradient
    scaling is needed. Measured when the plain MLPs still took this path, on
    2 AVX-512-BF16 cores (``python -m benchmarks --parts 1 --bf16``),
    seconds per epoch float32 -> bfloat16: 784-512-10 at batch 64 2.03 ->
    1.99, at 512 1.07 -> 0.60; 784-1024-1024-10 at 64 8.9 -> 6.9, at 512
    4.1 -> 3.6. At batch 1 it costs more than it saves (a step of 784-512-10
    timed alone: 0.65 -> 1.05 ms). Plain ReLU MLPs now run their bfloat16
    products by hand (:class:`PlainMLP`), faster still.
    """
    if not cfg.amp:
        return contextlib.nullcontext
    if not torch.amp.is_autocast_available(device.type):
        raise ConfigError("amp", f"mixed precision (bfloat16) is not available on {device.type}; turn it off")
    return functools.partial(torch.autocast, device.type, dtype=torch.bfloat16)


StepFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def make_step(cfg: RunConfig, model: nn.Module, optimizer: torch.optim.Optimizer) -> StepFn:
    """One training step ``(x, y) -> (loss, logits)``: forward, backward and the optimizer's update.

    With the fast path on (:func:`mnist_core.fast.enabled`), :func:`mnist_core.fast.make_step`:
    a plain ReLU MLP backpropagates by hand, any other model through
    :func:`autograd_step`, and a private torch call that fails falls back to
    autograd with a warning. Off, :func:`autograd_step` with ``optimizer.step``.
    """
    autocast = autocast_for(cfg, next(model.parameters()).device)  # first: it refuses amp where bf16 is not

    def autograd(update: Callable[[], None]) -> StepFn:
        return autograd_step(model, optimizer, autocast, update)

    if fast.enabled():
        return fast.make_step(cfg, model, optimizer, autograd)
    return autograd(optimizer.step)


def autograd_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, autocast: AutocastFn, update: Callable[[], None]
) -> StepFn:
    """The plain step: forward under ``autocast``, the mean cross-entropy, ``backward``, then ``update``."""

    def with_autograd(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast():
            logits = model(x)
            loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        update()
        return loss.detach(), logits.detach()

    return with_autograd


def make_scheduler(
    cfg: RunConfig, optimizer: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Per-step learning-rate schedule over the whole run, or None."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total_steps)
    return None
