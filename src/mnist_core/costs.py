"""What a model's architecture costs: parameters, multiply-adds, FLOPs and bytes.

These figures depend on the layers and tensor shapes alone, never on the
weights or on running the model on data, so :func:`cost_report` counts each
architecture once per process (:func:`architecture_key`). Conventions shown to
users: **MACs** are fvcore's count (one multiply-add counts as one);
**FLOPs** are ``2 x MACs``, the convention most blog posts quote
(``torch.utils.flop_counter`` gives the same figure); **fp32 weights** are the
bytes of every parameter and buffer stored as float32. fvcore is imported
lazily: importing it is slow, and pages that only evaluate should not pay for
it. Accuracy, latency and throughput (running the model) live in
:mod:`mnist_core.metrics`.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

INPUT_SHAPE = (1, 1, 28, 28)
FP32_BYTES = 4


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not); shared parameters count once."""
    return sum(p.numel() for p in model.parameters())


def weights_bytes(model: nn.Module) -> int:
    """Size of the "fp32 weights": every parameter and buffer as float32.

    Floating tensors count 4 bytes per element whatever their current dtype, so the
    figure compares architectures, not precisions; integer buffers (batch-norm's
    ``num_batches_tracked``) count at their real size, as ``state_dict`` stores them.
    """
    total = 0
    for tensor in (*model.parameters(), *model.buffers()):
        per_element = FP32_BYTES if tensor.is_floating_point() else tensor.element_size()
        total += tensor.numel() * per_element
    return total


def file_bytes(path: str | os.PathLike[str]) -> int:
    """Size of a checkpoint on disk, in bytes; raises FileNotFoundError if absent."""
    return Path(path).stat().st_size


def _cpu_eval_copy(model: nn.Module) -> nn.Module:
    """A CPU copy in eval mode, so counting never mutates the caller's model."""
    clone = copy.deepcopy(model)
    return clone.to("cpu").eval()


def count_macs(model: nn.Module, input_shape: tuple[int, ...] = INPUT_SHAPE) -> int:
    """Multiply-accumulates for one forward pass of a zero input of ``input_shape``.

    Counted by fvcore's ``FlopCountAnalysis`` (one multiply-add = 1) on a CPU copy of
    the model in eval mode, so the model may live on a GPU or be training. Operators
    fvcore does not count (max-pool, ReLU, slicing) add 0; that is their real cost
    class (no multiply-adds), not an error, so their warnings are silenced.
    """
    with warnings.catch_warnings():
        # fvcore's import touches torch.jit.script, deprecated in recent torch.
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn import FlopCountAnalysis

    clone = _cpu_eval_copy(model)
    with torch.no_grad():
        analysis = FlopCountAnalysis(clone, torch.zeros(input_shape))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return int(analysis.total())


@dataclass(frozen=True)
class CostReport:
    """What one forward pass of a single image costs, and what the weights weigh."""

    parameters: int
    macs: int  # fvcore count, one multiply-add = 1, for one (1, 1, 28, 28) image
    flops: int  # 2 x macs, the convention most blog posts quote
    weights_bytes: int  # fp32 weights: parameters and buffers as float32

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the fields."""
        return dataclasses.asdict(self)


def cost_report(model: nn.Module) -> CostReport:
    """Parameters, MACs, FLOPs and fp32 weight size of ``model`` for one 28x28 image.

    They depend on the architecture alone, not on the weights: each is
    counted once per process (fvcore's trace takes a fraction of a second)
    and kept by :func:`architecture_key`.
    """
    key = architecture_key(model)
    with _COSTS_LOCK:
        known = _COSTS.get(key)
    if known is not None:
        return known
    macs = count_macs(model)
    report = CostReport(
        parameters=count_parameters(model),
        macs=macs,
        flops=2 * macs,
        weights_bytes=weights_bytes(model),
    )
    with _COSTS_LOCK:
        _COSTS[key] = report
    return report


def architecture_key(model: nn.Module) -> tuple[Any, ...]:
    """What the costs depend on: the layers (their repr) and every tensor's name, shape and dtype."""
    tensors = tuple((name, tuple(t.shape), t.dtype) for name, t in model.state_dict().items())
    return (type(model).__qualname__, repr(model), tensors)


_COSTS: dict[tuple[Any, ...], CostReport] = {}  # architecture_key -> its costs (a few hundred bytes each)
_COSTS_LOCK = threading.Lock()
