"""The fast CPU path: everything that trains faster than plain PyTorch by leaning on its internals.

What it owns: the hand-derived backward of a plain ReLU MLP and oneDNN's
product (:mod:`.backprop`), the fused optimizer kernel called directly and
the optimizer state kept out of the subnormal range (:mod:`.optstate`), the
float32 matmul precision chosen once per process (:mod:`.precision`), and
the one seam the training loop calls, :func:`make_step` (:mod:`.step`),
which falls back to autograd with a warning when a private torch call
fails. The training step's private torch calls are made here and nowhere
else.

What it may import: torch, and from the core only :mod:`mnist_core.models`
(to recognise a model), :mod:`mnist_core.config` (``RunConfig``) and
:mod:`mnist_core.errors`. Nothing in it imports the training loop, storage
or the UI; the training loop imports it.

The switch: :func:`enabled` is False when the environment variable
``MNIST_LAB_FAST_PATH`` is ``0``, ``off``, ``false`` or ``no`` (read at each
call, so a test may set it), or when the process turned it off with
``set_enabled(False)``; ``set_enabled(None)`` goes back to the environment.
Off, every run trains through autograd with PyTorch's own ``Optimizer.step``
and leaves the matmul precision as PyTorch has it: slower, the same results
to float32 rounding. Other speed
tricks elsewhere in the core (the CNN's) check :func:`enabled` too.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn
    from torch.optim import Optimizer

    from ..config import RunConfig
    from .step import AutogradStep, StepFn

ENV_VAR = "MNIST_LAB_FAST_PATH"
OFF_WORDS = frozenset({"0", "off", "false", "no"})

_setting: bool | None = None  # set_enabled's; None: the environment decides


def enabled() -> bool:
    """Whether the fast path may be used: the process's setting, else the environment (on by default)."""
    if _setting is not None:
        return _setting
    return os.environ.get(ENV_VAR, "").strip().lower() not in OFF_WORDS


def set_enabled(on: bool | None) -> None:
    """Turn the fast path on or off for this whole process; None: back to ``MNIST_LAB_FAST_PATH``.

    A run takes the setting when it starts: one already training keeps its step.
    """
    global _setting
    _setting = on


# The seam. The submodules import torch and mnist_core.models, so they load at the first call:
# a module that only asks enabled() (models.py among them) imports nothing more.


def make_step(cfg: RunConfig, model: nn.Module, optimizer: Optimizer, autograd: AutogradStep) -> StepFn:
    """The fast training step (the caller checks the switch): see :func:`.step.make_step`."""
    from .step import make_step as fast_step

    return fast_step(cfg, model, optimizer, autograd)


def ensure_math(device_type: str = "cpu") -> str:
    """The process's float32 matmul precision, chosen once: see :func:`.precision.ensure_math`.

    On a CPU, also glibc's heap thresholds, once (:func:`.heap.keep_freed_memory`).
    """
    from .heap import keep_freed_memory
    from .precision import ensure_math as ensure

    if device_type == "cpu":
        keep_freed_memory()
    return ensure(device_type)
