"""The fast path's switch, and its fallback to autograd when a private torch call fails."""

from __future__ import annotations

import warnings

import pytest
import torch

from mnist_core import fast
from mnist_core.config import RunConfig
from mnist_core.data import load_data
from mnist_core.fast import backprop, optstate, precision
from mnist_core.fast import step as fast_step
from mnist_core.train import train


@pytest.fixture(autouse=True)
def _fast_path_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests check the fast path itself: on, even in CI's second pass with MNIST_LAB_FAST_PATH=0."""
    monkeypatch.delenv("MNIST_LAB_FAST_PATH", raising=False)


CFG = RunConfig(hidden=(16,), batch_size=16, epochs=1, val_fraction=0.0, optimizer="adam")
FALLBACK = "fast CPU training path failed"


@pytest.fixture
def data(synthetic_data_dir):
    return load_data(root=synthetic_data_dir, val_fraction=0.0)


def _plain(data, monkeypatch):
    """The run with the fast path off, as CI's second pass trains it."""
    with monkeypatch.context() as m:
        m.setenv("MNIST_LAB_FAST_PATH", "0")
        return train(CFG, data, progress_every=4)


def _same_run(a, b, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    assert a.status == b.status == "completed"
    losses_a = [p["loss"] for p in a.history if p["kind"] == "step"]
    losses_b = [p["loss"] for p in b.history if p["kind"] == "step"]
    assert len(losses_a) == len(losses_b) > 0
    assert losses_a == pytest.approx(losses_b, rel=rtol, abs=atol)
    for name, value in a.state.model.items():
        torch.testing.assert_close(value, b.state.model[name], rtol=rtol, atol=atol)
    steps_a = [s["step"] for s in a.state.optimizer["state"].values()]
    steps_b = [s["step"] for s in b.state.optimizer["state"].values()]
    assert steps_a == steps_b  # a step that failed half-way was not counted twice


@pytest.mark.parametrize("value", ["0", "off", "OFF", "false", " no "])
def test_the_environment_turns_the_fast_path_off(monkeypatch, value):
    assert fast.enabled()
    monkeypatch.setenv("MNIST_LAB_FAST_PATH", value)
    assert not fast.enabled()


def test_the_process_setting_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("MNIST_LAB_FAST_PATH", "1")
    assert fast.enabled()
    fast.set_enabled(False)
    assert not fast.enabled()
    monkeypatch.setenv("MNIST_LAB_FAST_PATH", "0")
    fast.set_enabled(True)
    assert fast.enabled()
    fast.set_enabled(None)  # back to the environment
    assert not fast.enabled()


def test_switched_off_no_fast_path_function_runs_and_results_match(data, monkeypatch):
    with_fast = train(CFG, data, progress_every=4)
    calls: list[str] = []

    def spy(module, name):
        real = getattr(module, name)

        def wrapper(*args, **kwargs):
            calls.append(name)
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    spy(fast, "make_step")
    spy(fast_step, "make_step")
    spy(backprop.PlainMLP, "of")
    spy(backprop, "direct_step")
    spy(optstate, "flush_subnormal_state")
    spy(precision, "fastest_exact")
    spy(torch, "set_float32_matmul_precision")
    plain = _plain(data, monkeypatch)
    assert calls == []
    _same_run(plain, with_fast)


def _raises(error: type[Exception]):
    def broken(*_args, **_kwargs):
        raise error("this torch has changed")

    return broken


@pytest.mark.parametrize(
    "breakage",
    ["threshold_backward gone", "oneDNN product signature", "fused kernel signature", "setup"],
)
def test_a_failing_private_torch_call_falls_back_to_autograd(data, monkeypatch, breakage):
    plain = _plain(data, monkeypatch)
    if breakage == "threshold_backward gone":  # used by the hand-made backward only
        monkeypatch.setattr(torch.ops.aten, "threshold_backward", _raises(AttributeError))
    elif breakage == "oneDNN product signature":
        if backprop.ONEDNN_LINEAR is None:
            pytest.skip("this torch has no oneDNN linear kernel")
        monkeypatch.setattr(backprop, "ONEDNN_LINEAR", _raises(TypeError))
    elif breakage == "fused kernel signature":  # reached at the second step, after a bound first one
        monkeypatch.setattr(backprop, "_fused_kernel", lambda _optimizer: _raises(TypeError))
    else:
        monkeypatch.setattr(backprop.PlainMLP, "of", _raises(AttributeError))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        broken = train(CFG, data, progress_every=4)
    fallback = [w for w in caught if FALLBACK in str(w.message)]
    assert len(fallback) == 1 and fallback[0].category is RuntimeWarning
    assert "MNIST_LAB_FAST_PATH=0" in str(fallback[0].message)
    _same_run(broken, plain)


def test_an_error_after_the_first_steps_is_not_hidden(data, monkeypatch):
    """A genuine failure later in a run still fails the run: only setup and the first steps fall back."""
    from mnist_core.train import _Loop

    real = _Loop.__init__

    def init(self, *args, **kwargs):
        real(self, *args, **kwargs)
        step, calls = self.step, []

        def failing_later(x, y):
            calls.append(1)
            if len(calls) == fast_step.GUARDED_CALLS + 2:
                monkeypatch.setattr(torch.ops.aten, "threshold_backward", _raises(RuntimeError))
            return step(x, y)

        self.step = failing_later

    monkeypatch.setattr(_Loop, "__init__", init)
    with pytest.raises(RuntimeError, match="this torch has changed"):
        train(CFG, data, progress_every=4)


def test_the_benchmark_times_both_sides_in_turns(synthetic_data_dir):
    from benchmarks.fast_path import fast_path_speedup

    row = fast_path_speedup(synthetic_data_dir, (8,), 16, repeats=2, steps=3, warm=2)
    assert row["steps"] == 3 and row["speedup_cpu"] > 0 and row["speedup_wall"] > 0
    assert row["on_cpu_ms_per_step"] > 0 and row["off_cpu_ms_per_step"] > 0
    assert fast.enabled()  # the turns' setting is given back
