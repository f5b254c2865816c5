"""The fast path's inference (issue 28): the same logits and predictions as the model as trained."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from mnist_core import costs, fast, metrics
from mnist_core.config import RunConfig, lenet5, quick_default
from mnist_core.metrics import EVAL_BATCH, FAST_EVAL_BATCH, evaluate, inference_plan, latency_report
from mnist_core.models import build_model, for_inference

CNNS = {"quick": quick_default(), "cnn 32-64": RunConfig(model="cnn", hidden=(128,)), "lenet-5": lenet5()}


@pytest.fixture
def fast_switch() -> Iterator[None]:
    yield
    fast.set_enabled(None)


def trained_like(cfg: RunConfig) -> nn.Module:
    """An eval-mode model whose batch norms hold statistics far from the defaults (so folding matters)."""
    model = build_model(cfg).eval()
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) * 2 - 1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
    return model


def images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, 28, 28, generator=gen), torch.randint(0, 10, (n,), generator=gen)


@pytest.mark.parametrize("name", list(CNNS))
def test_fast_logits_match_the_model_as_trained(name: str, fast_switch: None) -> None:
    fast.set_enabled(True)  # on, even where the suite runs with MNIST_LAB_FAST_PATH=0
    model = trained_like(CNNS[name])
    x, _ = images(64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    engine = for_inference(model)
    assert engine is not model
    with torch.inference_mode():
        plain, quick = model(x), engine(x)
    torch.testing.assert_close(quick, plain, rtol=1e-4, atol=1e-5)
    assert torch.equal(quick.argmax(1), plain.argmax(1))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the model itself is untouched
    if name != "lenet-5":  # the modern style: every batch norm folded into its convolution
        assert not any(isinstance(m, nn.BatchNorm2d) for m in engine.modules())


@pytest.mark.parametrize("name", ["quick", "lenet-5"])
def test_fast_evaluation_matches_the_plain_one(name: str, fast_switch: None) -> None:
    model = trained_like(CNNS[name])
    x, y = images(600)
    fast.set_enabled(False)
    plain = evaluate(model, x, y)
    assert inference_plan(model) == (model, EVAL_BATCH)
    fast.set_enabled(True)
    quick = evaluate(model, x, y)
    assert inference_plan(model)[1] == FAST_EVAL_BATCH
    assert quick.predictions == plain.predictions
    assert quick.confusion == plain.confusion and quick.misclassified == plain.misclassified
    assert quick.loss == pytest.approx(plain.loss, rel=1e-5)
    assert quick.confidences == pytest.approx(plain.confidences, abs=1e-5)


def test_without_the_fast_path_or_for_an_mlp_inference_runs_the_model_itself(fast_switch: None) -> None:
    mlp = build_model(RunConfig()).eval()
    assert for_inference(mlp) is mlp
    cnn = trained_like(quick_default())
    fast.set_enabled(False)
    assert for_inference(cnn) is cnn
    assert build_model(quick_default())[0].weight.is_contiguous()  # no channels-last either
    fast.set_enabled(True)
    assert for_inference(cnn.train()) is cnn  # a training model is never folded


def test_latency_report_takes_a_throughput_already_measured() -> None:
    model = trained_like(quick_default())
    x, _ = images(8)
    report = latency_report(model, x, warmup=1, repeats=3, throughput=1234.5)
    assert report.batch_throughput == 1234.5 and report.repeats == 3


def test_costs_are_counted_once_per_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    counted: list[int] = []
    real = costs.count_macs
    monkeypatch.setattr(costs, "count_macs", lambda m: counted.append(1) or real(m))
    first = metrics.cost_report(build_model(RunConfig(hidden=(24, 7))).eval())
    again = metrics.cost_report(build_model(RunConfig(hidden=(24, 7), seed=5)).eval())  # other weights
    assert again == first and len(counted) == 1
    other = metrics.cost_report(build_model(RunConfig(hidden=(24, 8))).eval())
    assert len(counted) == 2 and other.parameters != first.parameters
