"""Flushing the optimizer's subnormal state changes no weight, and keeps the state out of that range."""

from __future__ import annotations

import pytest
import torch

from mnist_core.config import RunConfig
from mnist_core.fast import optstate
from mnist_core.fast.optstate import HEADROOM, flush_subnormal_state, flushing
from mnist_core.models import build_model
from mnist_core.train_step import make_optimizer, make_step


@pytest.fixture(autouse=True)
def _fast_path_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests check the fast path itself: on, even in CI's second pass with MNIST_LAB_FAST_PATH=0."""
    monkeypatch.delenv("MNIST_LAB_FAST_PATH", raising=False)


TINY = torch.finfo(torch.float32).tiny
LIMIT = TINY * HEADROOM


def subnormal(t: torch.Tensor) -> int:
    return int(((t != 0) & (t.abs() < TINY)).sum())


def state_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [v for s in optimizer.state.values() for v in s.values() if v.dim() > 0]


OPTIMIZERS = {
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-3, fused=True),
    "adam, fast second moment": lambda ps: torch.optim.Adam(ps, lr=1e-3, betas=(0.85, 0.9), foreach=True),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1, fused=True),
    "sgd": lambda ps: torch.optim.SGD(ps, lr=1e-2, momentum=0.9),
}


def sparse_run(make, flush: bool, steps: int = 1100) -> tuple[torch.Tensor, torch.optim.Optimizer, int]:
    """A weight whose first half gets a gradient once, then zeros; the second half a gradient every step.

    Returns the weight, the optimizer and the most subnormal state entries seen after any step.
    """
    weight = torch.nn.Parameter(torch.linspace(-1, 1, 2000))
    optimizer = make([weight])
    step = flushing(optimizer.step, optimizer) if flush else optimizer.step
    gen = torch.Generator().manual_seed(0)
    most = 0
    for i in range(steps):
        grad = torch.randn(2000, generator=gen) * 1e-3
        if i:
            grad[:1000] = 0
        weight.grad = grad
        step()
        most = max(most, sum(subnormal(t) for t in state_tensors(optimizer)))
    return weight.detach(), optimizer, most


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_flushing_changes_no_weight_and_leaves_no_subnormal_state(name: str) -> None:
    plain_weight, plain, plain_most = sparse_run(OPTIMIZERS[name], flush=False)
    weight, flushed, most = sparse_run(OPTIMIZERS[name], flush=True)
    assert plain_most > 500, "the plain run must sink into the subnormal range, or this tests nothing"
    assert most == 0  # after every single step, not only after a flush
    assert torch.equal(weight, plain_weight)
    for kept, before in zip(state_tensors(flushed), state_tensors(plain), strict=True):
        differs = kept != before
        assert differs.any() == (before.abs() < LIMIT).any()  # what is below the limit is what changed
        assert torch.all(before[differs].abs() < LIMIT)
        assert torch.all(kept[differs] == 0)


def test_flush_keeps_scalars_nan_and_infinity() -> None:
    weight = torch.nn.Parameter(torch.zeros(6))
    optimizer = torch.optim.Adam([weight], fused=True)
    weight.grad = torch.ones(6)
    optimizer.step()
    state = optimizer.state[weight]
    inf = float("inf")
    state["exp_avg"].copy_(torch.tensor([float("nan"), inf, -inf, 1e-36, -1e-36, 2 * LIMIT]))
    state["step"].fill_(1e-40)  # a scalar, left alone however small
    flush_subnormal_state(optimizer)
    kept = state["exp_avg"]
    assert torch.isnan(kept[0]) and kept[1] == inf and kept[2] == -inf
    assert kept[3] == 0 and kept[4] == 0 and kept[5] == pytest.approx(2 * LIMIT, rel=1e-6)
    assert state["step"].item() != 0


def test_flushing_flushes_every_so_many_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(optstate, "flush_subnormal_state", lambda opt: calls.append("flush"))
    step = flushing(lambda: calls.append("step"), torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))]))
    for _ in range(2 * optstate.FLUSH_EVERY + 1):
        step()
    assert calls.count("step") == 2 * optstate.FLUSH_EVERY + 1
    flush_at = [i for i, c in enumerate(calls) if c == "flush"]
    assert flush_at == [optstate.FLUSH_EVERY, 2 * optstate.FLUSH_EVERY + 1]  # right after steps 32 and 64


@pytest.mark.parametrize("activation", ["relu", "tanh"])  # the hand-derived step, and autograd's
def test_training_steps_flush_their_state(activation: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's step at batch 1 on images with a blank half: the same weights as without the flush."""
    gen = torch.Generator().manual_seed(1)
    images = torch.rand(1000, 1, 28, 28, generator=gen)
    images[:, :, :14] = 0  # the top rows are always blank: their first-layer gradients are zero
    images[0, :, :14] = 1  # but for the first image, which gives them a first moment to decay
    labels = torch.randint(0, 10, (1000,), generator=gen)

    def run(every: int) -> tuple[list[torch.Tensor], torch.optim.Optimizer]:
        monkeypatch.setattr(optstate, "FLUSH_EVERY", every)
        cfg = RunConfig(hidden=(64,), batch_size=1, activation=activation)
        torch.manual_seed(0)
        model = build_model(cfg)
        optimizer = make_optimizer(cfg, model)
        step = make_step(cfg, model, optimizer)
        for i in range(1000):
            step(images[i : i + 1], labels[i : i + 1])
        return [p.detach().clone() for p in model.parameters()], optimizer

    every = optstate.FLUSH_EVERY
    plain_weights, plain = run(10**9)
    weights, flushed = run(every)
    assert sum(subnormal(t) for t in state_tensors(plain)) > 100
    assert sum(subnormal(t) for t in state_tensors(flushed)) == 0
    assert all(torch.equal(a, b) for a, b in zip(weights, plain_weights, strict=True))
