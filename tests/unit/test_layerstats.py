"""mnist_core.layerstats on small models whose answers are known, and in the training loop."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mnist_core import layerstats
from mnist_core.config import RunConfig
from mnist_core.data import load_data
from mnist_core.train import train


def tiny_mlp(activation: nn.Module) -> nn.Sequential:
    """4 pixels (a 2x2 image) -> 3 hidden units -> 2 logits; hidden unit 1 is dead by construction."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), activation, nn.Linear(3, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0.0, 0, 0, 0], [3.0, 0, 0, 4.0]]))
        model[1].bias.copy_(torch.tensor([0.0, -1.0, 0.0]))  # unit 1: zero weights, negative bias
        model[3].weight.copy_(torch.tensor([[1.0, -1.0, 0.5], [0.0, 2.0, -1.0]]))
        model[3].bias.zero_()
    return model


def sgd_step(model: nn.Module, rec: layerstats.LayerStatsRecorder, x: torch.Tensor, y: torch.Tensor, lr):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    rec.before_step()
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    grads = [p.grad.clone() for p in (model[1].weight, model[3].weight)]
    opt.step()
    rec.after_step(x)
    return grads


def test_gradient_norm_update_ratio_and_a_unit_dead_by_construction() -> None:
    model = tiny_mlp(nn.ReLU())
    before = [model[1].weight.detach().clone(), model[3].weight.detach().clone()]
    rec = layerstats.LayerStatsRecorder(model)
    x, y = torch.rand(16, 1, 2, 2) + 0.1, torch.randint(0, 2, (16,))  # positive pixels: units 0, 2 active
    grads = sgd_step(model, rec, x, y, lr=0.1)
    hidden, out = rec.take()
    assert hidden["name"] == "layer 1 (4→3)" and out["name"] == "output (3→2)"
    for stat, g, w in zip((hidden, out), grads, before, strict=True):
        assert stat["grad_norm"] == pytest.approx(float(g.norm()), rel=1e-5)
        assert stat["update_ratio"] == pytest.approx(0.1 * float(g.norm()) / float(w.norm()), rel=1e-4)  # SGD
    assert hidden["dead_share"] == pytest.approx(1 / 3)
    assert out["dead_share"] is None and hidden["saturated_share"] is None  # logits; ReLU
    assert rec.take() is None  # nothing probed since
    assert model.training and not model[2]._forward_hooks  # mode restored, hooks removed


def test_only_the_step_after_an_event_is_probed() -> None:
    model = tiny_mlp(nn.ReLU())
    rec = layerstats.LayerStatsRecorder(model, budget=1.0)
    x, y = torch.rand(8, 1, 2, 2), torch.randint(0, 2, (8,))
    sgd_step(model, rec, x, y, lr=0.1)
    first = rec.latest
    sgd_step(model, rec, x, y, lr=0.1)  # not armed: not measured
    assert rec.latest is first
    rec.take()
    assert rec.armed and rec.latest is None


def test_a_unit_active_on_one_of_the_last_batches_is_not_dead() -> None:
    model = tiny_mlp(nn.ReLU())
    rec = layerstats.LayerStatsRecorder(model, budget=1.0)
    y = torch.zeros(4, dtype=torch.long)
    with torch.no_grad():
        model[1].bias.copy_(torch.tensor([-10.0, -10.0, -10.0]))
    sgd_step(model, rec, torch.zeros(4, 1, 2, 2), y, lr=0.0)
    assert rec.take()[0]["dead_share"] == 1.0  # all silent on the only batch seen
    sgd_step(model, rec, torch.full((4, 1, 2, 2), 5.0), y, lr=0.0)  # unit 0: 5 - 10 < 0; unit 2: 35 - 10
    assert rec.take()[0]["dead_share"] == pytest.approx(2 / 3)  # unit 2 woke on the last batches
    for _ in range(layerstats.WINDOW):
        sgd_step(model, rec, torch.zeros(4, 1, 2, 2), y, lr=0.0)
        stats = rec.take()
    assert stats[0]["dead_share"] == 1.0  # silent for the whole window again


@pytest.mark.parametrize(
    ("activation", "scale", "share", "ratio"),
    [(nn.Tanh(), 100.0, 2 / 3, 0.0), (nn.Sigmoid(), 0.0, 0.0, None)],
)
def test_saturated_tanh_and_sigmoid_units(activation: nn.Module, scale: float, share: float, ratio) -> None:
    model = tiny_mlp(activation)
    with torch.no_grad():
        model[1].weight.mul_(scale)  # tanh: units 0 and 2 pushed to +-1 (unit 1 sits at tanh(-1))
    rec = layerstats.LayerStatsRecorder(model)
    sgd_step(model, rec, torch.rand(32, 1, 2, 2) + 0.5, torch.zeros(32, dtype=torch.long), lr=0.0)
    hidden, _ = rec.take()
    assert hidden["saturated_share"] == pytest.approx(share) and hidden["dead_share"] is None
    assert hidden["update_ratio"] == ratio  # lr 0: no update; zero weights: no ratio


def test_a_conv_channel_is_a_unit() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), nn.Flatten(), nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[[[1.0, 1.0], [1.0, 1.0]]], [[[-1.0, -1.0], [-1.0, -1.0]]]]))
        model[0].bias.zero_()
    rec = layerstats.LayerStatsRecorder(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    x = torch.rand(5, 1, 2, 2) + 0.1
    rec.before_step()
    F.cross_entropy(model(x), torch.zeros(5, dtype=torch.long)).backward()
    opt.step()
    rec.after_step(x)
    conv, out = rec.take()
    assert conv["name"] == "conv 1 (1→2, 2x2)" and conv["dead_share"] == 0.5  # channel 1 never fires
    assert out["name"] == "output (2→2)"


def test_probes_stay_within_their_share_of_the_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # A probe slow against the time between events (a loaded machine, events every step) is skipped
    # until the time spent in probes is back under the budget.
    clock = {"now": 0.0}

    def tick() -> float:  # every reading of the clock is half a second later
        clock["now"] += 0.5
        return clock["now"]

    monkeypatch.setattr(layerstats.time, "perf_counter", tick)
    model = tiny_mlp(nn.ReLU())
    rec = layerstats.LayerStatsRecorder(model, budget=0.1)
    x, y = torch.rand(8, 1, 2, 2), torch.randint(0, 2, (8,))
    probed = []
    for _ in range(60):
        rec.before_step()
        F.cross_entropy(model(x), y).backward()
        rec.after_step(x)
        probed.append(rec.take() is not None)
    assert probed[0] and not probed[1]  # the first probe took 1 s: the next waits for 10 s to pass
    assert 2 <= sum(probed) < 10
    assert rec.spent <= 0.1 * (clock["now"] - rec.started) + 1.0  # at most one probe over the budget


# -- in the training loop ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(synthetic_data_dir):
    return load_data("mnist", 0.1, 0, synthetic_data_dir)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])  # relu: the hand-written fast path
def test_every_step_point_of_the_history_has_the_layers_and_training_is_unchanged(
    data, activation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(layerstats, "BUDGET", 1.0)  # every event probed, however slow this machine
    cfg = RunConfig(hidden=(32, 16), epochs=1, batch_size=64, activation=activation, seed=3)
    events = []
    result = train(cfg, data, progress_every=5, on_progress=events.append)
    plain = train(cfg, data, progress_every=5, layer_stats=False)
    for a, b in zip(result.model.parameters(), plain.model.parameters(), strict=True):
        assert torch.equal(a, b)  # the probe does not change what is learned
    steps = [p for p in result.history if p["kind"] == "step"]
    assert steps and all(len(p["layers"]) == 3 for p in steps)
    assert all(p["layers"] is None for p in result.history if p["kind"] == "epoch")
    assert [e.layers for e in events if e.kind == "step"] == [p["layers"] for p in steps]
    first = steps[0]["layers"]
    assert [s["name"] for s in first] == ["layer 1 (784→32)", "layer 2 (32→16)", "output (16→10)"]
    assert all(s["grad_norm"] > 0 and 0 < s["update_ratio"] < 1 for s in first)
    hidden = first[0]["dead_share"] if activation == "relu" else first[0]["saturated_share"]
    assert hidden is not None and 0.0 <= hidden <= 1.0
    assert all(p.get("layers") is None for p in plain.history)
    assert not any(math.isnan(s["grad_norm"]) for p in steps for s in p["layers"])


@pytest.mark.parametrize("activation", [nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.GELU()])
def test_live_statistics_and_the_inside_view_count_the_same_units(activation: nn.Module) -> None:
    """One definition (mnist_core.layer_units): on one batch both give the same dead/saturated shares."""
    from mnist_core import internals

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 16), activation, nn.Linear(16, 2))
    with torch.no_grad():
        model[1].bias[:5] = -100.0  # 5 of 16 units pinned at a bound (a ReLU: silent)
    x = torch.randn(layerstats.PROBE_ROWS, 1, 2, 2)
    rec = layerstats.LayerStatsRecorder(model)
    sgd_step(model, rec, x, torch.zeros(len(x), dtype=torch.long), lr=0.0)
    live, _ = rec.take()
    inside = internals.inspect_model(model, x).layers[0]
    assert (live["dead_share"], live["saturated_share"]) == (inside.dead_share, inside.saturated_share)
    if isinstance(activation, nn.GELU):  # neither dead nor saturated
        assert live["dead_share"] is None and live["saturated_share"] is None
    else:
        assert (live["dead_share"] or live["saturated_share"]) == pytest.approx(5 / 16)


def test_a_history_summarised_per_layer_and_an_old_one_without_statistics() -> None:
    def point(grad: float, dead: float | None, with_layers: bool = True) -> dict:
        layers = [
            {"name": "layer 1 (4→3)", "grad_norm": grad, "update_ratio": None, "dead_share": dead,
             "saturated_share": None},
            {"name": "output (3→2)", "grad_norm": 10 * grad, "update_ratio": 1e-3, "dead_share": None,
             "saturated_share": None},
        ]  # fmt: skip
        return {"kind": "step", "epoch": 1, "loss": 1.0, "train_acc": 0.5, "n": 8,
                **({"layers": layers} if with_layers else {})}  # fmt: skip

    history = [point(1.0, 0.0), point(3.0, None), {"kind": "epoch", "epoch": 1}, point(2.0, 1.0)]
    found = layerstats.recorded([point(0.0, 0.0, with_layers=False), *history])
    assert found is not None and found.points == 3
    first, out = found.layers
    assert (first.name, first.grad_norm, first.dead_share) == ("layer 1 (4→3)", 2.0, 0.5)
    assert first.update_ratio is None
    assert out.grad_norm == 20.0 and out.update_ratio == 1e-3
    assert layerstats.recorded([point(1.0, 0.0, with_layers=False)]) is None  # trained before they existed
    assert layerstats.recorded([]) is None
