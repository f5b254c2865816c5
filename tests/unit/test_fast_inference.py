"""The fast path's inference (issue 28): the same logits and predictions as the model as trained."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from mnist_core import costs, fast, models
from mnist_core import train as train_module
from mnist_core.config import RunConfig, lenet5, quick_default
from mnist_core.data import load_data
from mnist_core.metrics import EVAL_BATCH, FAST_EVAL_BATCH, evaluate, inference_plan, latency_report
from mnist_core.models import build_model, for_inference, for_training
from mnist_core.train import train

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


@pytest.mark.parametrize("name", [*CNNS, "cropped"])
def test_fast_conv_stages_run_in_onednn_layout_from_8_images(name: str, fast_switch: None) -> None:
    """From 8 images a batch runs the conv stages as oneDNN tensors, one image as it is: same logits."""
    fast.set_enabled(True)
    cfg = CNNS.get(name) or RunConfig(model="cnn", cnn_channels=(8, 16), hidden=(32,), crop=20)
    model = trained_like(cfg)
    engine = for_inference(model)
    first_conv = next(m for m in engine if isinstance(m, nn.Conv2d))
    seen: list[bool] = []
    first_conv.register_forward_hook(lambda _m, args, _o: seen.append(args[0].is_mkldnn))
    for n in (1, models.ONEDNN_MIN_BATCH - 1, models.ONEDNN_MIN_BATCH, 64):
        x, _ = images(n)
        with torch.inference_mode():
            torch.testing.assert_close(engine(x), model(x), rtol=1e-4, atol=1e-5)
    assert seen == [False, False, True, True]
    assert not any(p.requires_grad for p in engine.parameters())


def test_a_layer_hook_of_the_model_does_not_fire_in_fast_evaluation(fast_switch: None) -> None:
    """A probe hooked on a layer (the Inside view's, maybe from another thread) sees only its own passes."""
    fast.set_enabled(True)
    model = trained_like(quick_default())
    seen: list[bool] = []
    conv = next(m for m in model if isinstance(m, nn.Conv2d))  # folded from a copy that keeps its hooks
    conv.register_forward_hook(lambda _m, _a, out: seen.append(out.is_mkldnn))
    x, y = images(64)
    evaluate(model, x, y)
    assert seen == []
    with torch.inference_mode():
        model(x[:2])
    assert seen == [False]


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
    first = costs.cost_report(build_model(RunConfig(hidden=(24, 7))).eval())
    again = costs.cost_report(build_model(RunConfig(hidden=(24, 7), seed=5)).eval())  # other weights
    assert again == first and len(counted) == 1
    other = costs.cost_report(build_model(RunConfig(hidden=(24, 8))).eval())
    assert len(counted) == 2 and other.parameters != first.parameters



def _conv_stage_kinds(model: nn.Module) -> list[str]:
    return [type(m).__name__ for m in model if isinstance(m, nn.ReLU | nn.MaxPool2d)]


def test_fast_cnn_trains_with_the_max_pool_before_the_relu_to_the_same_gradients(fast_switch: None) -> None:
    """Fast: a modern CNN's training forward runs conv, BN, pool, ReLU (the ReLU on a quarter of the values).

    Max-pooling commutes with ReLU, so the loss and every gradient are those of the plain order;
    the trained modules are the model's own, which keeps its order (what Inside and the saved run see).
    """
    cfg = quick_default()
    x, y = images(32)
    out = {}
    for on in (True, False):
        fast.set_enabled(on)
        model = build_model(cfg).train()
        net = for_training(model)
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        out[on] = (model, net, loss.detach(), {k: p.grad for k, p in model.named_parameters()})
    model, net = out[True][0], out[True][1]
    assert _conv_stage_kinds(net)[:2] == ["MaxPool2d", "ReLU"]
    assert _conv_stage_kinds(model)[:2] == ["ReLU", "MaxPool2d"]  # the model itself as built
    assert {id(p) for p in net.parameters()} == {id(p) for p in model.parameters()}
    assert out[False][1] is out[False][0]  # fast path off: the model itself
    torch.testing.assert_close(out[True][2], out[False][2], rtol=1e-5, atol=1e-6)
    for name, grad in out[True][3].items():
        torch.testing.assert_close(grad, out[False][3][name], rtol=1e-4, atol=1e-6, msg=name)


def test_for_training_leaves_models_without_a_relu_before_a_pool_alone(fast_switch: None) -> None:
    fast.set_enabled(True)
    for cfg in (lenet5(), RunConfig(hidden=(32,))):
        model = build_model(cfg)
        assert for_training(model) is model


def test_training_runs_the_relu_after_the_pool_and_ends_as_the_plain_order_does(
    fast_switch: None, synthetic_data_dir: Path
) -> None:
    """train() runs :func:`for_training`'s order; the weights it ends with are the plain order's."""
    cfg = RunConfig(model="cnn", cnn_channels=(4, 8), hidden=(16,), batch_size=50, epochs=1)
    data = load_data(root=synthetic_data_dir)
    fast.set_enabled(True)
    calls: list[str] = []
    real_build = models.build_model

    def watched(c: RunConfig, seed: int | None = None) -> nn.Module:
        model = real_build(c, seed)
        for m in model[:4]:  # conv, BN, ReLU, pool: record the order the step calls them in
            m.register_forward_hook(lambda mod, _i, _o: calls.append(type(mod).__name__))
        return model

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module, "build_model", watched)
        fast_weights = train(cfg, data, layer_stats=False).model.state_dict()
    assert calls[:4] == ["Conv2d", "BatchNorm2d", "MaxPool2d", "ReLU"]
    fast.set_enabled(False)
    plain_weights = train(cfg, data, layer_stats=False).model.state_dict()
    for name, tensor in fast_weights.items():
        torch.testing.assert_close(tensor, plain_weights[name], rtol=1e-3, atol=1e-4, msg=name)
