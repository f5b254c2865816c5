"""The seam: :func:`make_step` builds the fast training step, or hands the model to autograd.

A plain ReLU MLP backpropagates by hand (:class:`~.backprop.PlainMLP`,
1.3-1.4x faster a step at batch 1, the same from batch 64 up in float32;
with ``cfg.amp`` its products run in bfloat16, as autocast's would, 1.2-2x
faster than autocast through autograd) and runs a fused Adam's kernel
without ``Optimizer.step``'s Python around it (:func:`~.backprop.direct_step`).
Any other model trains through the caller's autograd step. Either way the
optimizer's state is kept out of the subnormal range (:func:`~.optstate.flushing`).

The hand-made step calls private torch functions (oneDNN's
``_linear_pointwise``, ``aten.threshold_backward``, ``_foreach_copy_``,
``_foreach_add_``/``_foreach_sub_``, ``_fused_adam_``/``_fused_adamw_``)
that a torch upgrade may rename or change. When one fails with an
AttributeError, TypeError or RuntimeError while the step is set up or in
its first :data:`GUARDED_CALLS` calls (the first that reach every one of
them), the run warns once and trains on through autograd from that step:
only gradient buffers (and the step counts, put back) were touched.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn

from ..config import RunConfig
from .backprop import PlainMLP, direct_step
from .optstate import flushing

StepFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
Update = Callable[[], None]
AutogradStep = Callable[[Update], StepFn]  # the caller's autograd step, around a given optimizer update

FALLBACK_ERRORS = (AttributeError, TypeError, RuntimeError)
# The first call binds the fused kernel through optimizer.step; the second runs the kernel itself.
GUARDED_CALLS = 2


def buffered_update(optimizer: torch.optim.Optimizer) -> Update:
    """The update of a step whose gradients stay in fixed buffers (:class:`PlainMLP`'s).

    The fused kernel called directly (:func:`direct_step`), its state kept out
    of the subnormal range (:func:`flushing`).
    """
    return flushing(direct_step(optimizer), optimizer)


def make_step(
    cfg: RunConfig, model: nn.Module, optimizer: torch.optim.Optimizer, autograd: AutogradStep
) -> StepFn:
    """One training step ``(x, y) -> (loss, logits)``: by hand for a plain ReLU MLP, else ``autograd``'s.

    ``autograd(update)`` is the caller's step through autograd with
    ``update`` as its optimizer update; it is also what a failing private
    torch call falls back to, with ``optimizer.step`` (the switch-off path).
    """
    try:
        mlp = PlainMLP.of(model, torch.bfloat16 if cfg.amp else None)
        if mlp is None:
            return autograd(flushing(optimizer.step, optimizer))
        update = buffered_update(optimizer)
    except FALLBACK_ERRORS as err:
        _warn(err)
        return autograd(optimizer.step)

    def by_hand(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        acts = mlp.forward(x)
        loss = mlp.backward(acts, y)
        update()
        return loss, acts[-1]

    return _Guarded(by_hand, lambda: autograd(optimizer.step))


class _Guarded:
    """``fast`` every step; if one of its first :data:`GUARDED_CALLS` calls fails, ``fallback()`` instead."""

    def __init__(self, fast: StepFn, fallback: Callable[[], StepFn]) -> None:
        self.step, self.fallback = fast, fallback
        self.calls = 0

    @property
    def __name__(self) -> str:  # the step it runs: "by_hand", or "with_autograd" once fallen back
        return self.step.__name__  # type: ignore[attr-defined]

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.calls >= GUARDED_CALLS:
            return self.step(x, y)
        try:
            out = self.step(x, y)
        except FALLBACK_ERRORS as err:
            _warn(err)
            self.step, self.calls = self.fallback(), GUARDED_CALLS
            return self.step(x, y)
        self.calls += 1
        return out


def _warn(err: BaseException) -> None:
    warnings.warn(
        f"The fast CPU training path failed ({type(err).__name__}: {err}), probably after a PyTorch upgrade; "
        "this run trains on through autograd, slower but with the same results "
        "(set MNIST_LAB_FAST_PATH=0 to skip the fast path).",
        RuntimeWarning,
        stacklevel=3,
    )
