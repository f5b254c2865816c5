"""The hand-written MLP step gives autograd's gradients, and only takes the models it can do."""

from __future__ import annotations

import copy
import types

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from mnist_core.config import RunConfig
from mnist_core.fast import backprop
from mnist_core.fast.backprop import ONEDNN_LINEAR, SPLIT_MIN, PlainMLP, back_through, direct_step, linear
from mnist_core.models import build_model
from mnist_core.train_step import make_optimizer, make_scheduler, make_step


@pytest.fixture(autouse=True)
def _fast_path_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests check the fast path itself: on, even in CI's second pass with MNIST_LAB_FAST_PATH=0."""
    monkeypatch.delenv("MNIST_LAB_FAST_PATH", raising=False)


class _Recording(TorchFunctionMode):
    """Notes the name of every torch function called inside it."""

    def __init__(self, calls: list[str]) -> None:
        super().__init__()
        self.calls = calls

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.calls.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


def batch(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def autograd_grads(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor
) -> tuple[float, list[torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    return loss.item(), [p.grad.clone() for p in model.parameters()]  # type: ignore[union-attr]


@pytest.mark.parametrize("hidden", [(32,), (64, 16, 8), (1024, 1024)])  # the last is split at batch 1
@pytest.mark.parametrize("n", [1, 7, 64])
@pytest.mark.parametrize("crop", [28, 20])
def test_gradients_and_loss_are_autograds(hidden: tuple[int, ...], n: int, crop: int) -> None:
    model = build_model(RunConfig(hidden=hidden, crop=crop))
    x, y = batch(n)
    loss, expected = autograd_grads(model, x, y)
    mlp = PlainMLP.of(model)
    assert mlp is not None
    acts = mlp.forward(x)
    torch.testing.assert_close(acts[-1], model(x).detach())
    assert mlp.backward(acts, y).item() == pytest.approx(loss, rel=1e-6)
    got = [p.grad for p in model.parameters()]
    assert len(got) == len(expected) == 2 * (len(hidden) + 1)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-7)
        assert g.abs().sum() > 0  # every layer got a gradient, not zeros left from setup


@pytest.mark.parametrize("shape", [(1024, 784), (1024, 1024), (2048, 256)])
def test_a_split_product_is_the_whole_product(shape: tuple[int, int]) -> None:
    """At batch 1 a big weight is used as two halves of rows: the same output, bitwise for the forward."""
    gen = torch.Generator().manual_seed(3)
    weight, bias = torch.randn(*shape, generator=gen), torch.randn(shape[0], generator=gen)
    x, g = torch.randn(1, shape[1], generator=gen), torch.randn(1, shape[0], generator=gen)
    assert weight.numel() >= SPLIT_MIN
    assert torch.equal(linear(x, weight, bias), torch.addmm(bias, x, weight.t()))
    exact = (g.double() @ weight.double()).float()  # sums of ~1000 terms of size ~1: float32 rounds at ~1e-5
    assert back_through(g, weight).shape == (1, shape[1])
    torch.testing.assert_close(back_through(g, weight), exact, rtol=1e-5, atol=2e-4)
    torch.testing.assert_close(g @ weight, exact, rtol=1e-5, atol=2e-4)  # the unsplit product rounds as much


@pytest.mark.parametrize(
    ("rows", "shape"),
    [(1, (1024, 784)), (2, (1024, 784)), (1, (512, 784)), (1, (1023, 1024))],
    ids=["batch 1, big", "batch 2", "small weight", "odd rows"],
)
def test_only_a_big_matrix_vector_product_is_split(rows: int, shape: tuple[int, int]) -> None:
    """Split or not, the product is right; it is split only for one row against a big, even weight."""
    weight, bias, x = torch.randn(*shape), torch.randn(shape[0]), torch.randn(rows, shape[1])
    split = rows == 1 and shape == (1024, 784)
    calls: list[str] = []
    with _Recording(calls):
        out = linear(x, weight, bias)
    assert ("baddbmm" in calls) == split
    exact = (torch.addmm(bias.double(), x.double(), weight.double().t())).float()
    torch.testing.assert_close(out, exact, rtol=1e-5, atol=2e-4)  # sums of ~1000 terms of size ~1


def test_a_bfloat16_matrix_vector_product_is_not_split() -> None:
    """Split in two, a bfloat16 product was no faster (71-89 against 78-95 us), so it stays whole."""
    weight, bias, x = torch.randn(1024, 784), torch.randn(1024), torch.randn(1, 784)
    weight, bias, x = weight.bfloat16(), bias.bfloat16(), x.bfloat16()
    calls: list[str] = []
    with _Recording(calls):
        out = linear(x, weight, bias)
    assert "baddbmm" not in calls and out.dtype == torch.bfloat16
    assert torch.equal(out, torch.addmm(bias, x, weight.t()))


ONEDNN = "_linear_pointwise.default"


@pytest.mark.skipif(ONEDNN_LINEAR is None, reason="this torch has no oneDNN linear kernel")
@pytest.mark.parametrize("rows", [2, 64, 512])
@pytest.mark.parametrize("shape", [(1024, 784), (1024, 1024), (10, 1024)])
def test_a_batch_runs_onednns_kernel_and_rounds_as_mkl_does(rows: int, shape: tuple[int, int]) -> None:
    """Both products of a batch on a CPU go to oneDNN; each is the exact product to float32 rounding."""
    gen = torch.Generator().manual_seed(rows)
    weight, bias = torch.randn(*shape, generator=gen), torch.randn(shape[0], generator=gen)
    x, g = torch.randn(rows, shape[1], generator=gen), torch.randn(rows, shape[0], generator=gen)
    calls: list[str] = []
    with _Recording(calls):
        out, back = linear(x, weight, bias), back_through(g, weight)
    assert calls.count(ONEDNN) == 2 and "addmm" not in calls and "mm" not in calls
    exact_out = torch.addmm(bias.double(), x.double(), weight.double().t())
    exact_back = g.double() @ weight.double()
    pairs = ((out, torch.addmm(bias, x, weight.t()), exact_out), (back, g @ weight, exact_back))
    for got, mkl, exact in pairs:
        assert got.shape == mkl.shape and got.dtype == torch.float32
        error, mkl_error = (got.double() - exact).abs().max(), (mkl.double() - exact).abs().max()
        assert error <= 4 * mkl_error + 1e-6, (error, mkl_error)


@pytest.mark.parametrize("rows", [1, 64])
def test_batch_one_and_other_dtypes_stay_with_torchs_own_products(rows: int) -> None:
    """oneDNN takes float32 and bfloat16 batches: one row is split or addmm'd; float64 gets addmm and mm."""
    dtype = torch.float32 if rows == 1 else torch.float64
    weight, bias = torch.randn(512, 784, dtype=dtype), torch.randn(512, dtype=dtype)
    x, g = torch.randn(rows, 784, dtype=dtype), torch.randn(rows, 512, dtype=dtype)
    calls: list[str] = []
    with _Recording(calls):
        out, back = linear(x, weight, bias), back_through(g, weight)
    assert ONEDNN not in calls and "addmm" in calls and "mm" in calls
    torch.testing.assert_close(out, torch.addmm(bias, x, weight.t()))
    torch.testing.assert_close(back, g @ weight)


def test_without_onednn_a_batch_uses_addmm_and_mm(monkeypatch: pytest.MonkeyPatch) -> None:
    """A torch built without oneDNN (no kernel found) trains through torch's own products."""
    monkeypatch.setattr(backprop, "ONEDNN_LINEAR", None)
    weight, bias, x, g = torch.randn(1024, 784), torch.randn(1024), torch.randn(8, 784), torch.randn(8, 1024)
    calls: list[str] = []
    with _Recording(calls):
        out, back = linear(x, weight, bias), back_through(g, weight)
    assert ONEDNN not in calls and "addmm" in calls and "mm" in calls
    assert torch.equal(out, torch.addmm(bias, x, weight.t())) and torch.equal(back, g @ weight)


def test_off_the_cpu_nothing_is_split() -> None:
    """A GPU's matrix-vector product already uses the whole device (here the shape-only "meta" device)."""
    weight, bias, x = (torch.empty(*s, device="meta") for s in ((1024, 784), (1024,), (1, 784)))
    calls: list[str] = []
    with _Recording(calls):
        out = linear(x, weight, bias)
        back = back_through(torch.empty(1, 1024, device="meta"), weight)
    assert "baddbmm" not in calls and "bmm" not in calls
    assert out.shape == (1, 1024) and back.shape == (1, 784)


def test_dead_units_pass_no_gradient() -> None:
    """A unit whose ReLU is off passes nothing back, as in autograd (which also gives 0 at exactly 0)."""
    model = build_model(RunConfig(hidden=(16,)))
    with torch.no_grad():
        model[1].bias[:8] = -1e6  # units 0-7 are off for any image
    x, y = batch(5)
    _, expected = autograd_grads(model, x, y)
    mlp = PlainMLP.of(model)
    assert mlp is not None
    mlp.backward(mlp.forward(x), y)
    assert model[1].weight.grad is not None
    assert (model[1].weight.grad[:8] == 0).all() and (model[1].weight.grad[8:] != 0).any()
    torch.testing.assert_close(model[1].weight.grad, expected[0])


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_steps_end_at_autograds_weights(optimizer: str) -> None:
    """Twenty steps (batches of 1 and 16) of each path from the same weights end at the same weights."""
    cfg = RunConfig(hidden=(32, 16), optimizer=optimizer, lr=1e-2, weight_decay=1e-3)
    ours, theirs = build_model(cfg), build_model(cfg)
    step = make_step(cfg, ours, make_optimizer(cfg, ours))
    assert step.__name__ == "by_hand"
    reference = make_optimizer(cfg, theirs)
    for i in range(20):
        x, y = batch(1 if i % 2 else 16, seed=i)
        loss, logits = step(x, y)
        expected_logits = theirs(x)
        expected = F.cross_entropy(expected_logits, y)
        reference.zero_grad()
        expected.backward()
        reference.step()
        torch.testing.assert_close(loss, expected.detach())
        torch.testing.assert_close(logits, expected_logits.detach())
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert not torch.equal(ours[1].weight, build_model(cfg)[1].weight), "the steps changed the weights"


@pytest.mark.parametrize(
    "cfg",
    [
        RunConfig(hidden=(32,), dropout=0.2),
        RunConfig(hidden=(32,), batch_norm=True),
        RunConfig(hidden=(32,), activation="tanh"),
        RunConfig(model="cnn", cnn_channels=(4,), hidden=(16,)),
    ],
    ids=["dropout", "batch norm", "tanh", "cnn"],
)
def test_other_models_train_through_autograd(cfg: RunConfig) -> None:
    model = build_model(cfg)
    assert PlainMLP.of(model) is None
    assert make_step(cfg, model, make_optimizer(cfg, model)).__name__ == "with_autograd"


def autocast_grads(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """The loss, the logits and the gradients of a bfloat16 autocast step through autograd."""
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
        loss = F.cross_entropy(logits, y)
    loss.backward()
    return loss.detach(), logits.detach(), [p.grad.clone() for p in model.parameters()]  # type: ignore[union-attr]


@pytest.mark.parametrize("hidden", [(32,), (1024, 1024)])
@pytest.mark.parametrize("n", [1, 7, 64])
def test_mixed_precision_gradients_are_autocasts(hidden: tuple[int, ...], n: int) -> None:
    """With bfloat16 products, the step computes what autocast does, and rounds no worse.

    Autocast and PlainMLP round the same bfloat16 products; the bias
    gradients differ, as ours are summed in float32 (autocast sums in
    bfloat16). Products left in float32 would miss autocast's logits and
    deep gradients by far more than the 1% of each gradient's scale allowed.
    """
    cfg = RunConfig(hidden=hidden)
    x, y = batch(n)
    loss, logits, expected = autocast_grads(build_model(cfg), x, y)
    _, exact = autograd_grads(build_model(cfg).double(), x.double(), y)
    model = build_model(cfg)
    mlp = PlainMLP.of(model, torch.bfloat16)
    assert mlp is not None
    acts = mlp.forward(x)
    assert all(a.dtype == torch.bfloat16 for a in acts)
    assert torch.equal(acts[-1], logits)
    assert mlp.backward(acts, y).item() == pytest.approx(loss.item(), rel=1e-6)
    for p, e, t in zip(model.parameters(), expected, exact, strict=True):
        g = p.grad
        assert g is not None and g.dtype == torch.float32 and g.abs().sum() > 0
        scale = t.abs().max().item()
        torch.testing.assert_close(g, e, rtol=0, atol=0.01 * scale)
        error, autocast_error = (g.double() - t).abs().max(), (e.double() - t).abs().max()
        assert error <= 1.1 * autocast_error + 1e-3 * scale, (error, autocast_error)


def test_mixed_precision_trains_by_hand_and_keeps_float32_weights() -> None:
    """``amp`` takes the hand-written step: bfloat16 products, float32 weights that learn."""
    cfg = RunConfig(hidden=(64,), amp=True, lr=1e-2)
    model = build_model(cfg)
    step = make_step(cfg, model, make_optimizer(cfg, model))
    assert step.__name__ == "by_hand"
    x, y = batch(32)
    calls: list[str] = []
    with _Recording(calls):
        first, logits = step(x, y)
    assert logits.dtype == torch.bfloat16
    if torch.bfloat16 in backprop.ONEDNN_DTYPES:
        assert calls.count(ONEDNN) == 3  # two forward products and one input gradient
    for _ in range(30):
        loss, _ = step(x, y)
    assert loss.item() < 0.5 * first.item()
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in model.parameters())  # type: ignore[union-attr]


def test_frozen_parameters_train_through_autograd() -> None:
    model = build_model(RunConfig(hidden=(32,)))
    model[1].weight.requires_grad_(False)
    assert PlainMLP.of(model) is None


class _Counted:
    """Counts the calls of ``optimizer.step``, wrapped on the instance (a method, as schedulers expect)."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.calls, real = 0, optimizer.step

        def step(_self: torch.optim.Optimizer) -> None:
            self.calls += 1
            real()

        optimizer.step = types.MethodType(step, optimizer)  # type: ignore[method-assign]


_Twins = tuple[list[torch.optim.Optimizer], list[torch.nn.Module], list[object], _Counted]


def _twin_runs(optimizer: str) -> _Twins:
    """Two equal models, their optimizers (the first one's steps counted) and one-cycle schedules.

    The schedule moves the learning rate and Adam's beta1 on every step.
    """
    cfg = RunConfig(hidden=(48, 16), optimizer=optimizer, lr=1e-2, weight_decay=1e-2, schedule="onecycle")
    models = [build_model(cfg), build_model(cfg)]
    for m in models:
        for p in m.parameters():
            p.grad = torch.zeros_like(p)
    optimizers = [make_optimizer(cfg, m) for m in models]
    counted = _Counted(optimizers[0])
    schedulers = [make_scheduler(cfg, o, 40) for o in optimizers]
    return optimizers, models, schedulers, counted


def _same_grads(models: list[torch.nn.Module], seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        g = torch.randn(a.shape, generator=gen)
        a.grad.copy_(g)  # type: ignore[union-attr]  # into the buffer, as PlainMLP writes them
        b.grad.copy_(g)  # type: ignore[union-attr]


def _assert_same_state(optimizers: list[torch.optim.Optimizer], models: list[torch.nn.Module]) -> None:
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert torch.equal(a, b)
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(optimizers[0].state[a][key], optimizers[1].state[b][key]), key


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_direct_step_is_the_optimizers_step_bit_for_bit(optimizer: str) -> None:
    """Direct kernel calls under a changing lr and beta1 end at optimizer.step's weights and state exactly."""
    optimizers, models, schedulers, counted = _twin_runs(optimizer)
    update = direct_step(optimizers[0])
    betas = set()
    for i in range(30):
        _same_grads(models, seed=i)
        update()
        optimizers[1].step()
        for s in schedulers:
            s.step()  # type: ignore[attr-defined]
        betas.add(optimizers[0].param_groups[0]["betas"][0])
    _assert_same_state(optimizers, models)
    assert counted.calls == 1, "only the first step (which creates the state) goes through optimizer.step"
    assert len(betas) > 10, "the schedule moved beta1, and the direct calls followed it"


def test_direct_step_binds_again_after_a_load_or_a_new_gradient_buffer() -> None:
    """A resumed optimizer's state, or a replaced .grad, is picked up: nothing stale is updated."""
    optimizers, models, _, counted = _twin_runs("adam")
    update = direct_step(optimizers[0])

    def both_step(seeds: range) -> None:
        for i in seeds:
            _same_grads(models, seed=i)
            update()
            optimizers[1].step()

    both_step(range(5))
    optimizers[0].load_state_dict(copy.deepcopy(optimizers[1].state_dict()))  # new tensors, equal values
    both_step(range(5, 10))
    assert counted.calls == 2
    _assert_same_state(optimizers, models)
    first = next(models[0].parameters())
    first.grad = first.grad.clone()  # type: ignore[union-attr]
    both_step(range(10, 13))
    assert counted.calls == 3
    _assert_same_state(optimizers, models)


def test_direct_step_goes_through_the_optimizer_while_a_second_group_is_there() -> None:
    optimizers, _, _, counted = _twin_runs("adam")
    update = direct_step(optimizers[0])
    update()  # binds
    extra = torch.nn.Parameter(torch.ones(3))
    extra.grad = torch.ones(3)
    optimizers[0].add_param_group({"params": [extra]})
    update()
    update()
    assert counted.calls == 3
    assert optimizers[0].state[extra]["step"] == 2 and not torch.equal(extra, torch.ones(3))


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: torch.optim.SGD(ps, lr=0.1, fused=True),
        lambda ps: torch.optim.Adam(ps, foreach=True),
        lambda ps: torch.optim.Adam(ps, fused=True, amsgrad=True),
        lambda ps: torch.optim.Adam(ps, fused=True, lr=torch.tensor(1e-3)),
        lambda ps: torch.optim.Adam([{"params": ps[:2]}, {"params": ps[2:], "lr": 1e-4}], fused=True),
    ],
    ids=["sgd", "foreach", "amsgrad", "tensor lr", "two groups"],
)
def test_direct_step_leaves_other_optimizers_to_their_own_step(make) -> None:  # type: ignore[no-untyped-def]
    optimizer = make(list(build_model(RunConfig(hidden=(8,))).parameters()))
    assert direct_step(optimizer) == optimizer.step


def test_direct_step_leaves_an_optimizer_with_hooks_to_its_own_step() -> None:
    optimizer = make_optimizer(RunConfig(hidden=(8,)), build_model(RunConfig(hidden=(8,))))
    assert direct_step(optimizer) != optimizer.step
    optimizer.register_step_post_hook(lambda *_: None)
    assert direct_step(optimizer) == optimizer.step
