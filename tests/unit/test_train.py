"""The training loop on generated data: learning, callbacks, stop, resume."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from mnist_core.config import RunConfig, lenet5
from mnist_core.data import load_data
from mnist_core.errors import ConfigError
from mnist_core.train import ProgressEvent, _Batches, epoch_permutation, train
from mnist_core.train_step import autocast_for as train_autocast
from mnist_core.train_step import make_optimizer


@pytest.fixture
def data(synthetic_data_dir):
    return load_data("mnist", 0.1, 0, synthetic_data_dir)


SMALL = RunConfig(hidden=(64,), epochs=2, batch_size=32, lr=3e-3)


def test_learns_and_reports_epochs(data):
    events: list[ProgressEvent] = []
    result = train(SMALL, data, on_progress=events.append, progress_every=5)
    epochs = [e for e in events if e.kind == "epoch"]
    steps = [e for e in events if e.kind == "step"]
    assert result.status == "completed"
    assert [e.epoch for e in epochs] == [1, 2]
    assert epochs[-1].val_acc is not None and epochs[-1].val_acc > 0.6  # 10 classes: chance is 0.1
    assert epochs[-1].step == epochs[-1].total_steps == 2 * math.ceil(900 / 32)
    assert steps[0].step == 5 and all(b.step > a.step for a, b in itertools.pairwise(steps))
    assert steps[-1].loss < steps[0].loss
    assert all(e.samples_per_s > 0 and e.elapsed_s > 0 and e.lr == pytest.approx(3e-3) for e in steps)
    assert epochs[-1].samples == 2 * 900 and epochs[-1].eta_s == 0
    assert [(h["kind"], h["step"]) for h in result.history] == [(e.kind, e.step) for e in events]
    assert not result.model.training


def test_every_step_point_counts_its_images(data):
    result = train(SMALL.replace(epochs=1), data, progress_every=5)  # 29 steps: 5 x 5 + a tail of 4
    steps = [h for h in result.history if h["kind"] == "step"]
    assert sum(h["n"] for h in steps) == 900  # a tail of at least half a window is a point too


def test_a_tiny_tail_is_not_a_noisy_point_but_counts_in_the_epoch_mean(data):
    events = []
    result = train(SMALL.replace(epochs=1, lr=1e-12), data, progress_every=7, on_progress=events.append)
    steps = [h for h in result.history if h["kind"] == "step"]
    assert [h["n"] for h in steps] == [7 * 32] * 4  # 29 steps: the 1-step tail is not plotted
    epoch = next(e for e in events if e.kind == "epoch")
    # With a learning rate of ~0 every batch sees the same model: the epoch's mean
    # accuracy must be the accuracy over all 900 images, tail included.
    from mnist_core.metrics import evaluate

    x, y = data.train.tensors()
    assert epoch.train_acc == pytest.approx(evaluate(result.model, x, y).accuracy, abs=1e-6)


def test_time_based_progress_when_no_interval(data, monkeypatch):
    monkeypatch.setattr("mnist_core.train.PROGRESS_INTERVAL_S", 0.0)
    events: list[ProgressEvent] = []
    train(SMALL.replace(epochs=1), data, on_progress=events.append)
    assert sum(e.kind == "step" for e in events) == math.ceil(900 / 32)


def test_stop_between_steps_keeps_state(data):
    calls = {"n": 0}

    def stop_after_ten() -> bool:
        calls["n"] += 1
        return calls["n"] > 10

    saved = []
    result = train(SMALL, data, should_stop=stop_after_ten, on_checkpoint=saved.append)
    assert result.status == "stopped"
    assert result.state.epoch == 0 and result.state.step_in_epoch == 10
    assert saved and saved[-1].step_in_epoch == 10


def test_resume_matches_uninterrupted_run(data):
    """Stopping after 1 epoch and resuming gives the same weights as one run."""
    cfg = SMALL.replace(schedule="cosine")
    full = train(cfg, data)
    states = []
    first = train(cfg.replace(), data, on_checkpoint=states.append, should_stop=lambda: len(states) >= 1)
    assert first.status == "stopped" and first.state.epoch == 1
    resumed = train(cfg, data, resume=first.state)
    assert resumed.status == "completed" and resumed.state.epoch == 2
    for key, value in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=1e-4, atol=1e-5)
    assert [h["epoch"] for h in resumed.history if h["kind"] == "epoch"] == [1, 2]


def test_resume_mid_epoch(data):
    cfg = SMALL.replace(epochs=1)
    full = train(cfg, data)
    calls = {"n": 0}

    def stop_at_13() -> bool:
        calls["n"] += 1
        return calls["n"] > 13

    part = train(cfg, data, should_stop=stop_at_13)
    assert part.state.step_in_epoch == 13
    rest = train(cfg, data, resume=part.state)
    for key, value in full.model.state_dict().items():
        torch.testing.assert_close(rest.model.state_dict()[key], value, rtol=1e-4, atol=1e-5)


def test_batches_are_the_permutations_slices_across_gathers(data, monkeypatch):
    """Batches come from gathers of a few batches; any batch, in any order, is the permutation's slice."""
    monkeypatch.setattr("mnist_core.train.GATHER_ROWS", 100)  # 3 batches of 32 a gather
    perm = epoch_permutation(len(data.train), 0, 0)
    batches = _Batches(data.train, perm, 32)
    order = [0, 1, 2, 3, 28, 5, 4, 13, 14, 27, 2]  # across gathers, back and forth, the short last one
    for i in order:
        x, y = batches.get(i)
        ex, ey = data.train.rows(perm[i * 32 : (i + 1) * 32])
        assert torch.equal(x, ex) and torch.equal(y, ey)
        assert len(y) == (900 - 28 * 32 if i == 28 else 32)


def test_resume_inside_a_gather(data, monkeypatch):
    monkeypatch.setattr("mnist_core.train.GATHER_ROWS", 160)  # 5 batches a gather; stop after 13
    test_resume_mid_epoch(data)


@pytest.mark.parametrize(
    "cfg",
    [
        lenet5(epochs=1, batch_size=64),
        RunConfig(
            model="cnn", hidden=(32,), cnn_channels=(8, 16), epochs=1, augment=True, schedule="onecycle"
        ),
        RunConfig(hidden=(32, 32), optimizer="sgd", lr=0.05, batch_norm=True, dropout=0.2, epochs=1),
        RunConfig(hidden=(32,), optimizer="adamw", weight_decay=0.01, crop=20, activation="gelu", epochs=1),
    ],
    ids=["lenet", "cnn-augment-onecycle", "sgd-bn-dropout", "adamw-crop20"],
)
def test_config_variants_train(data, cfg):
    result = train(cfg, data)
    last = [h for h in result.history if h["kind"] == "epoch"][-1]
    assert result.status == "completed"
    assert math.isfinite(last["loss"]) and last["val_acc"] > 0.2


@pytest.mark.parametrize(
    "cfg",
    [RunConfig(hidden=(64,), epochs=2, batch_size=32, lr=3e-3, amp=True),
     RunConfig(model="cnn", hidden=(32,), cnn_channels=(8, 16), epochs=2, amp=True)],
    ids=["mlp", "cnn"],
)
def test_mixed_precision_runs_its_forward_in_bfloat16_and_keeps_float32_weights(data, cfg):
    seen: set[torch.dtype] = set()
    result = train(cfg, data, on_progress=lambda _e: None)
    model = result.model.train()
    handle = model[-1].register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
    try:
        with train_autocast(cfg, torch.device("cpu"))():
            model(data.train.x[:4])
        model(data.train.x[:4])  # outside the training step: float32
    finally:
        handle.remove()
    assert seen == {torch.bfloat16, torch.float32}
    assert all(p.dtype == torch.float32 for p in result.model.parameters())
    assert all(v.dtype == torch.float32 for state in result.state.optimizer["state"].values()
               for v in state.values() if v.is_floating_point())
    last = [h for h in result.history if h["kind"] == "epoch"][-1]
    assert math.isfinite(last["loss"]) and last["val_acc"] > 0.5  # it learns like the float32 run


def test_without_mixed_precision_nothing_is_autocast():
    seen: set[torch.dtype] = set()
    model = torch.nn.Linear(3, 2)
    model.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
    with train_autocast(RunConfig(), torch.device("cpu"))():
        model(torch.ones(1, 3))
    assert seen == {torch.float32}


def test_batch_size_one_runs(data):
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 50

    result = train(RunConfig(hidden=(16,), batch_size=1, epochs=1), data, should_stop=stop)
    assert result.state.step_in_epoch == 50


def test_batch_larger_than_training_set_is_refused(data):
    with pytest.raises(ConfigError, match="batch_size"):
        train(RunConfig(batch_size=5000), data)


def test_fused_optimizer_is_used_on_cpu():
    model = torch.nn.Linear(4, 2)
    for name in ("adam", "adamw", "sgd"):
        opt = make_optimizer(RunConfig(optimizer=name), model)
        assert opt.defaults.get("fused") is True, name


def test_epoch_permutation_is_seeded():
    a = epoch_permutation(100, seed=1, epoch=0)
    assert torch.equal(a, epoch_permutation(100, seed=1, epoch=0))
    assert not torch.equal(a, epoch_permutation(100, seed=1, epoch=1))
    assert sorted(a.tolist()) == list(range(100))


def test_same_seed_same_result(data):
    a = train(SMALL.replace(epochs=1), data)
    b = train(SMALL.replace(epochs=1), data)
    for key, value in a.model.state_dict().items():
        torch.testing.assert_close(b.model.state_dict()[key], value)


def test_a_stopped_run_counts_the_epochs_it_ran_a_fraction_of_one_included(data):
    """Its time per epoch divides by the epochs done, not by a whole number of them."""
    calls = {"n": 0}

    def stop_in_the_second_epoch() -> bool:
        calls["n"] += 1
        return calls["n"] > 29 + 10  # 29 steps per epoch

    stopped = train(SMALL, data, should_stop=stop_in_the_second_epoch)
    assert stopped.status == "stopped" and stopped.epochs_run == pytest.approx(1 + 10 / 29)
    assert train(SMALL.replace(epochs=1), data).epochs_run == 1
    resumed = train(SMALL, data, resume=stopped.state)
    assert resumed.epochs_run == 2


def test_a_stopped_runs_time_per_epoch_is_over_the_epochs_it_ran(runs_dir, synthetic_data_dir):
    from mnist_core.pipeline import run_training

    events: list[ProgressEvent] = []
    info = run_training(
        SMALL.replace(epochs=3), runs_dir=runs_dir, data_root=synthetic_data_dir, progress_every=1,
        on_progress=events.append, should_stop=lambda: bool(events) and events[-1].step >= 29 + 15,
    )  # fmt: skip
    s = info.summary
    assert info.status == "stopped" and s["epochs_done"] == 1
    ran = events[-1].step / 29
    assert 1.5 <= ran < 2 and s["time_per_epoch_s"] == pytest.approx(s["train_time_s"] / ran)
