"""Hand-derived gradients of a plain ReLU MLP: a training step without autograd.

For ``[CenterCrop,] Flatten, Linear, ReLU, ..., Linear`` trained with the mean
cross-entropy, backpropagation is a few matrix products. Written out, a step
issues about half as many operations as autograd's graph (no graph to build,
no saved tensors, no engine), and the gradients go into buffers allocated once.
That overhead is most of a small step: at batch 1 on 784-512-10 (two CPU
cores) a whole step with the fused Adam took 0.57 ms against autograd's 0.72 ms.

At batch 1 on a CPU the big matrix-vector products are split in two
(:func:`linear`, :func:`back_through`): MKL runs a lone matrix-vector product
on one core, and as a batch of two half-matrices both cores share it. At
larger batches on a CPU those two products run oneDNN's float32 kernel
rather than MKL's, where this torch has it: on the 2-core AMD host
(AVX-512) it is 1.1-1.8x faster at these shapes, and whole training steps
of 784-1024-1024-10 at batch 64 and 128 ran 1.10-1.14x faster (paired).

The optimizer's update runs its fused kernel directly (:func:`direct_step`):
``Optimizer.step`` spends as long in Python around the kernel as the kernel
itself takes on a small model.

With mixed precision (``RunConfig.amp``) the same step runs its products
in bfloat16, as autocast would, while the weights, their gradients and the
optimizer stay float32. On the AVX-512-BF16 host, whole steps of
784-1024-1024-10 ran 1.42x (batch 64), 1.59x (128) and 1.81x (512) faster
than in float32 (paired). Against autocast through autograd they were
1.2-1.6x faster at batch 64-512 on both bench models, and 1.5-2.0x at batch
1, where bfloat16 is still slower than float32 (0.59-0.62x).

Any other model (dropout, batch norm, other activations, convolutions)
trains through autograd: see :func:`PlainMLP.of`. Gradients equal
autograd's to float32 rounding, and autocast's to bfloat16 rounding
(``tests/unit/test_backprop.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..models import CenterCrop

SPLIT_MIN = 1 << 19  # weights with this many elements or more (784x1024: 802,816) are split at batch 1


def _onednn_linear() -> Callable[..., torch.Tensor] | None:
    """oneDNN's ``X @ W.T + B`` (the kernel Inductor uses on a CPU), or None where this torch lacks it."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._linear_pointwise.default
    except (AttributeError, RuntimeError):
        return None


def _onednn_dtypes() -> tuple[torch.dtype, ...]:
    """The dtypes oneDNN's kernel takes here: float32, and bfloat16 where oneDNN supports it on this CPU."""
    try:
        bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        bf16 = False
    return (torch.float32, torch.bfloat16) if bf16 else (torch.float32,)


ONEDNN_LINEAR = _onednn_linear()
ONEDNN_DTYPES = _onednn_dtypes()


def _by_onednn(rows: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether a product of ``rows`` (more than one) with ``weight`` runs oneDNN's kernel."""
    cpu = rows.device.type == "cpu" and rows.dtype == weight.dtype and rows.dtype in ONEDNN_DTYPES
    return ONEDNN_LINEAR is not None and len(rows) > 1 and cpu


def _halves(rows: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether ``rows`` times ``weight`` is a big float32 matrix-vector product on a CPU, split in two."""
    big = weight.numel() >= SPLIT_MIN and len(weight) % 2 == 0
    return len(rows) == 1 and big and weight.device.type == "cpu" and weight.dtype == torch.float32


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``x @ weight.T + bias``, as ``nn.Linear``; at batch 1 the weight's two halves of rows in parallel.

    At batch 1 each output is the same dot product as in ``addmm``, and on
    this stack the result is bitwise ``addmm``'s (tested). With the weights
    out of cache (as in a training step), 2 cores: 1024x1024 261 -> 157 us,
    1024x784 241 -> 141 us; in cache, 1024x784 83 -> 70 us.

    At larger batches on a CPU, oneDNN's kernel instead (equal to ``addmm``
    to float32 rounding; 64x784 by 784x1024, in cache: 0.75 -> 0.56 ms). At
    batch 1 it was slower in the training loop (0.84-0.93x, paired).
    """
    if _by_onednn(x, weight):
        return ONEDNN_LINEAR(x, weight, bias, "none", [], "")
    if not _halves(x, weight):
        return torch.addmm(bias, x, weight.t())
    out = len(weight)
    halves = weight.view(2, out // 2, -1).transpose(1, 2)
    return torch.baddbmm(bias.view(2, 1, out // 2), x.expand(2, 1, -1), halves).view(1, out)


def back_through(g: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``g @ weight``, the gradient at a Linear's input; at batch 1 the two halves' products summed.

    At batch 1, out of cache, 2 cores: 1024x1024 206 -> 142 us, 1024x784
    195 -> 119 us. At larger batches on a CPU, oneDNN's kernel, as in :func:`linear`.
    """
    if _by_onednn(g, weight):
        return ONEDNN_LINEAR(g, weight.t(), None, "none", [], "")
    if not _halves(g, weight):
        return torch.mm(g, weight)
    out = len(weight)
    return torch.bmm(g.view(2, 1, out // 2), weight.view(2, out // 2, -1)).sum(0)


class PlainMLP:
    """Forward and backward of a plain ReLU MLP, gradients written into ``p.grad``."""

    def __init__(
        self,
        model: nn.Sequential,
        crop: CenterCrop | None,
        linears: list[nn.Linear],
        compute: torch.dtype | None = None,
    ) -> None:
        self.crop, self.linears = crop, linears
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        self.params = [t for layer in linears for t in (layer.weight, layer.bias)]
        # Each layer's weight and bias as the products take them: the parameters themselves, or
        # copies in the compute dtype that each forward refreshes.
        self.operands = self.params
        if compute is not None and compute != self.params[0].dtype:
            self.operands = [torch.empty_like(t, dtype=compute) for t in self.params]

    @classmethod
    def of(cls, model: nn.Module, compute: torch.dtype | None = None) -> PlainMLP | None:
        """A :class:`PlainMLP` over ``model``'s own parameters, or None when it is not one.

        ``compute``: the dtype of the products (bfloat16 for mixed precision,
        as autocast); None, the parameters' own. The activations' gradients
        follow it; the parameters' gradients stay in the parameters' dtype.
        """
        if not isinstance(model, nn.Sequential):
            return None
        layers = list(model)
        crop = layers.pop(0) if layers and type(layers[0]) is CenterCrop else None
        if not layers or type(layers.pop(0)) is not nn.Flatten or len(layers) % 2 == 0:
            return None
        linears = layers[::2]
        if any(type(m) is not nn.Linear or m.bias is None for m in linears):
            return None
        if any(type(m) is not nn.ReLU for m in layers[1::2]):
            return None
        if not all(p.requires_grad for p in model.parameters()):
            return None
        return cls(model, crop, linears, compute)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The input of every Linear layer (flattened images, then each ReLU's output) and the logits."""
        if self.crop is not None:
            x = self.crop(x)
        operands = self.operands
        if operands is not self.params:
            torch._foreach_copy_(operands, self.params)
        acts = [x.flatten(1).to(operands[0].dtype)]
        last = len(self.linears) - 1
        for i in range(len(self.linears)):
            h = linear(acts[-1], operands[2 * i], operands[2 * i + 1])
            acts.append(h.relu_() if i < last else h)
        return acts

    @torch.no_grad()
    def backward(self, acts: list[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of ``acts[-1]`` against ``y`` (returned); its gradients set in ``p.grad``."""
        logits = acts[-1].float()  # the loss in float32, as autocast computes it
        loss = F.cross_entropy(logits, y)
        # d(mean CE)/d(logits) = (softmax - one_hot(y)) / batch
        g = torch.softmax(logits, 1)
        g.scatter_add_(1, y.unsqueeze(1), torch.full_like(g[:, :1], -1.0))
        if len(y) > 1:
            g.div_(len(y))
        g = g.to(acts[-1].dtype)
        for i in range(len(self.linears) - 1, -1, -1):
            layer, a = self.linears[i], acts[i]
            assert layer.weight.grad is not None and layer.bias.grad is not None
            if len(y) == 1:  # an outer product: a broadcast multiply is half the time of a matmul
                torch.mul(g.t(), a, out=layer.weight.grad)
                layer.bias.grad.copy_(g[0])
            else:
                if g.dtype == layer.weight.grad.dtype:
                    torch.mm(g.t(), a, out=layer.weight.grad)
                else:  # a bfloat16 product, rounded to bfloat16 as autocast's, then widened
                    layer.weight.grad.copy_(torch.mm(g.t(), a))
                torch.sum(g, 0, out=layer.bias.grad)
            if i:  # through the ReLU whose output is acts[i] (zero where it was not positive), as autograd
                g = torch.ops.aten.threshold_backward(back_through(g, self.operands[2 * i]), a, 0)
        return loss


def direct_step(optimizer: torch.optim.Optimizer) -> Callable[[], None]:
    """``optimizer.step`` for gradients kept in fixed buffers; a fused Adam or AdamW runs its kernel directly.

    Before its kernel, ``Optimizer.step`` runs hooks, a profiler record, and
    gathers and groups the tensors by device again on every call. In the
    batch-1 loop on 784-512-10 (two CPU cores) that made a step 1.16-1.23x
    slower (medians of paired runs; 0.44 against 0.36 ms a step in one).
    For a fused Adam or AdamW with one parameter group and, when this is
    called, none of what the direct call leaves out (amsgrad, maximize,
    capturable, differentiable, a tensor learning rate, a gradient scaler,
    step hooks on the optimizer), the returned function increments the step
    counters and runs the same kernel with the group's current settings, so
    a scheduler's changes to the learning rate and betas apply. The first
    call goes through ``optimizer.step`` (which creates the state) and binds
    its tensors; so does any call after ``load_state_dict``, after a
    gradient buffer was replaced, or while there is more than one group.
    Weights and state equal ``optimizer.step``'s bit for bit
    (``tests/unit/test_backprop.py``). Any other optimizer gets
    ``optimizer.step`` itself.
    """
    kernel = _fused_kernel(optimizer)
    if kernel is None:
        return optimizer.step
    bound: dict[str, Any] = {}

    def step() -> None:
        group = optimizer.param_groups[0]
        if not _still_bound(bound, optimizer, group):
            optimizer.step()
            bound.clear()
            bound.update(_bind(optimizer, group))
            return
        beta1, beta2 = group["betas"]
        with torch.no_grad():
            torch._foreach_add_(bound["steps"], 1)
            try:
                kernel(
                    bound["params"], bound["grads"], bound["exp_avgs"], bound["exp_avg_sqs"], [],
                    bound["steps"], lr=group["lr"], beta1=beta1, beta2=beta2,
                    weight_decay=group["weight_decay"], eps=group["eps"], amsgrad=False, maximize=False,
                )  # fmt: skip
            except (AttributeError, TypeError, RuntimeError):
                torch._foreach_sub_(bound["steps"], 1)  # the step did not happen: autograd may redo it
                raise

    return step


def _fused_kernel(optimizer: torch.optim.Optimizer) -> Callable[..., Any] | None:
    """The fused kernel ``optimizer.step`` would run for all its parameters, or None when it may do more."""
    names = {torch.optim.Adam: "_fused_adam_", torch.optim.AdamW: "_fused_adamw_"}
    kernel = getattr(torch, names.get(type(optimizer), ""), None)
    if kernel is None or len(optimizer.param_groups) != 1:
        return None
    group = optimizer.param_groups[0]
    flags = ("amsgrad", "maximize", "capturable", "differentiable")
    if group.get("fused") is not True or any(group.get(flag) for flag in flags):
        return None
    if isinstance(group["lr"], torch.Tensor) or getattr(optimizer, "grad_scale", None) is not None:
        return None
    hooks = ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks")
    if any(getattr(optimizer, name, None) for name in hooks):
        return None
    params = group["params"]
    if len({(p.device, p.dtype) for p in params}) != 1:
        return None  # optimizer.step would call the kernel once per device and dtype
    return kernel


def _bind(optimizer: torch.optim.Optimizer, group: dict[str, Any]) -> dict[str, Any]:
    params = list(group["params"])
    states = [optimizer.state[p] for p in params]
    return {
        "state": optimizer.state, "group": group, "params": params, "grads": [p.grad for p in params],
        "exp_avgs": [s["exp_avg"] for s in states], "exp_avg_sqs": [s["exp_avg_sq"] for s in states],
        "steps": [s["step"] for s in states],
    }  # fmt: skip


def _still_bound(bound: dict[str, Any], optimizer: torch.optim.Optimizer, group: dict[str, Any]) -> bool:
    """Whether ``bound`` still holds the optimizer's state, its only group and every gradient buffer."""
    if not bound or bound["state"] is not optimizer.state or bound["group"] is not group:
        return False
    if len(optimizer.param_groups) != 1:
        return False
    return all(p.grad is g for p, g in zip(bound["params"], bound["grads"], strict=True))
