"""Learning from a correction: a fine-tuned copy, honest before/after figures, the original untouched."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest
import torch

from mnist_core import online
from mnist_core.config import RunConfig
from mnist_core.data import DataBundle, Split, load_data
from mnist_core.errors import ConfigError
from mnist_core.infer import predict_batch
from mnist_core.metrics import evaluate
from mnist_core.train import train

# A CNN with batch norm, like the quick default model, small enough to train in a second.
CFG = RunConfig(model="cnn", cnn_channels=(4, 8), hidden=(16,), epochs=3, batch_size=50, lr=3e-3)
# Fine-tuning on the drawing alone (no re-drawn views, no memory): the defaults' views are tested on their
# own below, the memory (the default, without fine-tuning) in test_memory.py.
FAST = online.CorrectionSettings(
    steps=15, lr=1e-3, replay_size=16, replay_weight=1.0, eval_size=0, views=0, memory=False
)


@pytest.fixture(scope="module")
def data(synthetic_data_dir: Path) -> DataBundle:
    return load_data(root=synthetic_data_dir)


@pytest.fixture(scope="module")
def model(data: DataBundle) -> torch.nn.Module:
    return train(CFG, data).model


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def a_wrong_label(model: torch.nn.Module, x: torch.Tensor) -> int:
    """A label the model does not give ``x``: teaching it is a real correction."""
    return (int(predict_batch(model, x).argmax()) + 1) % 10


def test_correction_teaches_the_example_and_leaves_the_model_untouched(model, data) -> None:
    x = data.val.tensors()[0][:1]
    label = a_wrong_label(model, x)
    before = snapshot(model)
    grads = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    result = online.learn(model, x, label, data.train, data.test, FAST)
    assert result.labels == (label,)
    assert result.predicted_before != (label,) and result.predicted_after == (label,)
    assert result.learned
    assert result.prob_after[0] > result.prob_before[0]
    # The cached, shared model: same weights and buffers, still in eval mode, its gradients untouched.
    after = model.state_dict()
    assert [k for k in before if not torch.equal(before[k], after[k])] == []
    assert not model.training
    for p, g in zip(model.parameters(), grads, strict=True):
        assert (p.grad is None and g is None) or torch.equal(p.grad, g)
    # The new weights are different and load into a fresh model of the same configuration.
    assert any(not torch.equal(before[k], result.state_dict[k]) for k in before)
    assert set(result.state_dict) == set(before)


def test_batch_norm_statistics_are_kept(model, data) -> None:
    """Fine-tuning runs in eval mode: batch statistics of one drawing must not replace MNIST's."""
    x = data.val.tensors()[0][:1]
    result = online.learn(model, x, a_wrong_label(model, x), data.train, data.test, FAST)
    for key, value in model.state_dict().items():
        if "running_" in key or "num_batches" in key:
            assert torch.equal(value, result.state_dict[key]), key


def test_before_and_after_figures_are_consistent(model, data) -> None:
    x = data.val.tensors()[0][1:2]
    result = online.learn(model, x, a_wrong_label(model, x), data.train, data.test, FAST)
    x_test, y_test = data.test.tensors()
    assert result.before.accuracy == evaluate(model, x_test, y_test).accuracy
    assert result.before.n == result.after.n == len(y_test)
    tuned = copy.deepcopy(model)
    tuned.load_state_dict(result.state_dict)
    after = predict_batch(tuned.eval(), x_test).argmax(1)
    before = predict_batch(model, x_test).argmax(1)
    assert result.after.accuracy == pytest.approx(float((after == y_test).float().mean()))
    assert result.flipped == int(((before == y_test) & (after != y_test)).sum())
    assert result.fixed == int(((before != y_test) & (after == y_test)).sum())
    assert result.accuracy_drop_points == pytest.approx(
        100 * (result.before.accuracy - result.after.accuracy)
    )


def test_it_stops_once_the_example_is_learned_unless_told_not_to(model, data) -> None:
    x = data.val.tensors()[0][:1]
    label = a_wrong_label(model, x)
    early = online.learn(model, x, label, data.train, data.test, dataclasses.replace(FAST, steps=200))
    assert early.steps < 200
    never = dataclasses.replace(FAST, steps=7, stop_at=1.0)
    full = online.learn(model, x, label, data.train, data.test, never)
    assert full.steps == 7


def test_an_example_already_known_takes_no_step(model, data) -> None:
    x_val = data.val.tensors()[0]
    probs = predict_batch(model, x_val)
    surest = int(probs.max(1).values.argmax())
    x, label = x_val[surest : surest + 1], int(probs[surest].argmax())
    settings = online.CorrectionSettings(stop_at=0.5, steps=80, memory=False)
    result = online.learn(model, x, label, data.train, data.test, settings)
    assert result.steps == 0
    assert all(torch.equal(v, result.state_dict[k]) for k, v in model.state_dict().items())
    assert result.flipped == result.fixed == 0


@pytest.mark.parametrize("strategy", online.STRATEGIES)
def test_every_strategy_learns_and_is_deterministic(model, data, strategy: str) -> None:
    x = data.val.tensors()[0][2:3]
    label = a_wrong_label(model, x)
    settings = dataclasses.replace(FAST, strategy=strategy, views=3)
    one = online.learn(model, x, label, data.train, data.test, settings)
    two = online.learn(model, x, label, data.train, data.test, settings)
    assert one.learned
    assert all(torch.equal(one.state_dict[k], two.state_dict[k]) for k in one.state_dict)


def test_replay_strategies_need_training_images(model, data) -> None:
    x = data.val.tensors()[0][:1]
    empty = Split(data.train.x, data.train.y, torch.zeros(0, dtype=torch.int64))
    with pytest.raises(ConfigError, match="replay"):
        online.learn(model, x, 3, empty, data.test, online.CorrectionSettings(strategy="distill"))
    alone = online.CorrectionSettings(strategy="example", steps=5, stop_at=1.0, memory=False)
    result = online.learn(model, x, a_wrong_label(model, x), empty, data.test, alone)
    assert result.steps == 5


def test_several_examples_at_once(model, data) -> None:
    """The "my handwriting" set: many drawings, each with its own label."""
    x, y = data.val.tensors()
    x, y = x[:6], [(int(v) + 1) % 10 for v in y[:6]]
    settings = dataclasses.replace(FAST, steps=30, lr=3e-3, replay_weight=4.0)
    result = online.learn(model, x, y, data.train, data.test, settings)
    assert result.labels == tuple(y)
    assert sum(a == t for a, t in zip(result.predicted_after, y, strict=True)) >= 4
    details = result.details()
    assert details["examples"] == 6 and "learned" in details and "label" not in details


def test_details_and_summary_for_the_saved_version(model, data) -> None:
    x = data.val.tensors()[0][:1]
    label = a_wrong_label(model, x)
    result = online.learn(model, x, label, data.train, data.test, FAST)
    details = result.details()
    json.dumps(details)  # goes into run.json
    assert details["label"] == label and details["settings"]["strategy"] == "distill"
    assert details["flipped_right_to_wrong"] == result.flipped
    parent = {"test_accuracy": 0.5, "val_accuracy": 0.4, "parameters": 123, "misclassified": [1, 2]}
    summary = result.summary(parent)
    json.dumps(summary)
    assert summary["test_accuracy"] == result.after.accuracy
    assert summary["parameters"] == 123  # cost figures are the parent's: same architecture
    assert summary["val_accuracy"] is None  # not measured again
    assert parent["test_accuracy"] == 0.5  # the parent's dict is not modified


def test_a_sampled_evaluation_does_not_pretend_to_be_the_test_accuracy(model, data) -> None:
    test = Split(data.train.x, data.train.y.clone(), None)  # the 1000 training images as a "test" split
    test = Split(test.x.repeat(3, 1, 1, 1), test.y.repeat(3), None)  # 3000 images
    x = data.val.tensors()[0][:1]
    settings = online.CorrectionSettings(steps=3, stop_at=1.0, eval_size=2000, memory=False)
    result = online.learn(model, x, a_wrong_label(model, x), data.train, test, settings)
    assert result.before.n == 2000
    summary = result.summary({"test_accuracy": 0.9})
    assert "test_accuracy" not in summary and summary["sample_accuracy"] == result.after.accuracy


def test_eval_subset_is_fixed_and_sized(data) -> None:
    test = Split(data.train.x.repeat(3, 1, 1, 1), data.train.y.repeat(3), None)  # 3000 images
    x1, y1 = online.eval_subset(test, 2000)
    x2, y2 = online.eval_subset(test, 2000)
    assert x1.shape == (2000, 1, 28, 28) and torch.equal(y1, y2) and torch.equal(x1, x2)
    assert len(online.eval_subset(test, 0)[1]) == 3000


def test_a_cached_baseline_is_used_when_it_matches(model, data, monkeypatch: pytest.MonkeyPatch) -> None:
    x_test, y_test = data.test.tensors()
    baseline = evaluate(model, x_test, y_test)
    calls = []
    real = online.evaluate
    monkeypatch.setattr(online, "evaluate", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = data.val.tensors()[0][:1]
    online.learn(model, x, a_wrong_label(model, x), data.train, data.test, FAST, before=baseline)
    assert len(calls) == 1  # only the fine-tuned model was evaluated


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"strategy": "magic"}, "strategy"),
        ({"steps": -1}, "steps"),
        ({"reach": 0.0}, "reach"),
        ({"reach": 1.5}, "reach"),
        ({"memory": "yes"}, "memory"),
        ({"steps": 2.5}, "steps"),
        ({"lr": 0}, "lr"),
        ({"lr": 2.0}, "lr"),
        ({"stop_at": 0.0}, "stop_at"),
        ({"replay_size": 0}, "replay_size"),
        ({"replay_weight": -1.0}, "replay_weight"),
        ({"views": -1}, "views"),
        ({"view_share": 1.5}, "view_share"),
        ({"layers": "middle"}, "layers"),
        ({"eval_size": 500}, "eval_size"),
        ({"lr": True}, "lr"),
    ],
)
def test_settings_are_validated(changes: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        online.CorrectionSettings(**changes)


def test_settings_use_the_run_configs_validators_and_words() -> None:
    """The same integer check was written in config.py and online.py, with two wordings."""
    with pytest.raises(ConfigError, match=r"5000 is out of range \[0, 1000\]"):
        online.CorrectionSettings(steps=5000)
    with pytest.raises(ConfigError, match=r"expected an integer, got 2\.5"):
        online.CorrectionSettings(steps=2.5)
    with pytest.raises(ConfigError, match=r"0\.0 is out of range \(0\.0, 1\.0\]"):
        online.CorrectionSettings(stop_at=0.0)


def test_bad_examples_are_config_errors(model, data) -> None:
    x = data.val.tensors()[0][:2]
    with pytest.raises(ConfigError, match="labels"):
        online.learn(model, x, [1], data.train, data.test, FAST)
    with pytest.raises(ConfigError, match="digit"):
        online.learn(model, x[:1], 10, data.train, data.test, FAST)
    with pytest.raises(ConfigError, match="examples"):
        online.learn(model, torch.zeros(1, 28, 28), 1, data.train, data.test, FAST)


def test_views_are_learned_and_stop_on_the_views(model, data) -> None:
    """With re-drawn views the stop waits for them too: more steps than for the drawing alone."""
    x = data.val.tensors()[0][4:5]
    label = a_wrong_label(model, x)
    plain = dataclasses.replace(FAST, steps=100, stop_at=0.5)
    alone = online.learn(model, x, label, data.train, data.test, plain)
    views = dataclasses.replace(plain, views=8, view_share=1.0)
    one = online.learn(model, x, label, data.train, data.test, views)
    two = online.learn(model, x, label, data.train, data.test, views)
    assert alone.learned and one.learned
    assert one.steps > alone.steps
    assert all(torch.equal(one.state_dict[k], two.state_dict[k]) for k in one.state_dict)


def test_last_layer_only_leaves_the_rest_untouched(model, data) -> None:
    x = data.val.tensors()[0][:1]
    settings = dataclasses.replace(FAST, layers="last", lr=3e-3, steps=5, stop_at=1.0)
    result = online.learn(model, x, a_wrong_label(model, x), data.train, data.test, settings)
    last = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)][-1]
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, result.state_dict[k])}
    assert changed == {f"{last}.weight", f"{last}.bias"}
