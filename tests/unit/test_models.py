"""Tests for mnist_core.models: layer shapes, exact parameter counts, forward passes, seeding."""

from __future__ import annotations

import io
import itertools

import pytest
import torch
from torch import nn

from mnist_core.config import ACTIVATIONS, RunConfig, lenet5, quick_default
from mnist_core.errors import ConfigError
from mnist_core.models import CenterCrop, build_model


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def linear_shapes(model: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]


def images(n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- MLP shapes and counts


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("width", [16, 128, 512])
def test_mlp_linear_layers_follow_depth_and_width(depth: int, width: int) -> None:
    model = build_model(RunConfig(hidden=(width,) * depth))
    expected = list(itertools.pairwise([784, *([width] * depth), 10]))
    assert linear_shapes(model) == expected
    # One activation between each pair of linear layers, none after the logits.
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == depth
    assert isinstance(list(model.children())[-1], nn.Linear)


def test_mlp_mixed_widths() -> None:
    model = build_model(RunConfig(hidden=(300, 100, 50)))
    assert linear_shapes(model) == [(784, 300), (300, 100), (100, 50), (50, 10)]


@pytest.mark.parametrize(
    ("hidden", "count"),
    [
        ((512,), 407_050),
        ((512, 512), 669_706),
        ((512, 512, 512), 932_362),
        ((128,), 101_770),
        ((256,), 203_530),
        ((1024,), 814_090),
        ((512, 256, 120, 84), 575_102),  # the blog's MLP-5
    ],
    ids=lambda v: str(v),
)
def test_mlp_parameter_counts_match_the_blog(hidden: tuple[int, ...], count: int) -> None:
    assert n_params(build_model(RunConfig(hidden=hidden))) == count


def test_lenet5_has_44426_parameters() -> None:
    model = build_model(lenet5())
    assert n_params(model) == 44_426
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 6, (5, 5), (0, 0)),
        (6, 16, (5, 5), (0, 0)),
    ]
    assert linear_shapes(model) == [(256, 120), (120, 84), (84, 10)]
    assert sum(isinstance(m, nn.AvgPool2d) for m in model.modules()) == 2
    assert sum(isinstance(m, nn.Tanh) for m in model.modules()) == 4


def test_crop20_mlp_counts_and_maps_full_images() -> None:
    model = build_model(RunConfig(hidden=(1024, 1024), crop=20))
    assert n_params(model) == 400 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 10 + 10
    assert linear_shapes(model)[0] == (400, 1024)
    assert isinstance(model[0], CenterCrop)
    assert model(images(3)).shape == (3, 10)


def test_center_crop_keeps_the_middle() -> None:
    x = torch.arange(28 * 28, dtype=torch.float32).reshape(1, 1, 28, 28)
    out = CenterCrop(20)(x)
    assert out.shape == (1, 1, 20, 20)
    assert torch.equal(out, x[..., 4:24, 4:24])


def test_crop20_mlp_ignores_the_border() -> None:
    model = build_model(RunConfig(hidden=(32,), crop=20)).eval()
    x = images(2)
    y = x.clone()
    y[..., :4, :] = 5.0
    y[..., :, -4:] = -5.0
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(y))


# ---------------------------------------------------------------- options run forward


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize(("dropout", "batch_norm"), [(0.0, False), (0.5, False), (0.0, True), (0.3, True)])
def test_every_mlp_option_builds_and_runs(activation: str, dropout: float, batch_norm: bool) -> None:
    model = build_model(
        RunConfig(hidden=(64, 32), activation=activation, dropout=dropout, batch_norm=batch_norm)
    )
    kinds = {type(m) for m in model.modules()}
    assert (nn.Dropout in kinds) == (dropout > 0)
    assert (nn.BatchNorm1d in kinds) == batch_norm
    assert {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[activation] in kinds
    x = images(4)
    model.train()
    out = model(x)
    assert out.shape == (4, 10) and torch.isfinite(out).all()
    out.sum().backward()
    model.eval()
    with torch.no_grad():
        first, second = model(x), model(x)
    assert first.shape == (4, 10)
    assert torch.equal(first, second)  # eval mode: dropout off, batch norm uses running stats


def test_dropout_is_active_in_train_mode_only() -> None:
    model = build_model(RunConfig(hidden=(256,), dropout=0.5))
    x = images(8)
    model.train()
    assert not torch.equal(model(x), model(x))


@pytest.mark.parametrize("crop", [28, 20])
@pytest.mark.parametrize(
    ("cfg", "flat"),
    [
        (
            RunConfig(model="cnn", cnn_style="modern", cnn_channels=(32, 64), hidden=(128,)),
            {28: 64 * 7 * 7, 20: 64 * 5 * 5},
        ),
        (
            RunConfig(model="cnn", cnn_style="modern", cnn_channels=(8, 8, 8, 8), hidden=()),
            {28: 8 * 1, 20: 8 * 1},
        ),
        (
            RunConfig(model="cnn", cnn_style="modern", cnn_channels=(4, 8, 16), hidden=(32, 16)),
            {28: 16 * 9, 20: 16 * 4},
        ),
        (lenet5(), {28: 16 * 4 * 4, 20: 16 * 2 * 2}),
        (lenet5(hidden=()), {28: 256, 20: 64}),
        (quick_default(), {28: 32 * 7 * 7, 20: 32 * 5 * 5}),
    ],
    ids=["modern-32-64", "modern-4-stages", "modern-3-stages", "lenet5", "lenet-no-dense", "quick-default"],
)
def test_cnn_forward_shapes(cfg: RunConfig, flat: dict[int, int], crop: int) -> None:
    model = build_model(cfg.replace(crop=crop))
    assert linear_shapes(model)[0][0] == flat[crop]
    assert linear_shapes(model)[-1][1] == 10
    x = images(5)
    model.train()
    assert model(x).shape == (5, 10)
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (5, 10)


def test_modern_cnn_uses_batch_norm_relu_and_max_pool() -> None:
    model = build_model(quick_default())
    kinds = [type(m) for m in model.modules()]
    assert kinds.count(nn.Conv2d) == 2 and kinds.count(nn.BatchNorm2d) == 2 and kinds.count(nn.MaxPool2d) == 2
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) and c.bias is None for c in convs)


@pytest.mark.parametrize(
    "cfg", [quick_default(), lenet5(), RunConfig(model="cnn", hidden=(128,))], ids=lambda c: c.label()
)
def test_cnn_weights_are_channels_last_and_compute_the_same_function(
    cfg: RunConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MNIST_LAB_FAST_PATH", raising=False)  # channels-last is the fast path's (on here)
    model = build_model(cfg).eval()
    convs = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert not all(w.is_contiguous() for w in convs)
    plain = build_model(cfg).to(memory_format=torch.contiguous_format).eval()
    x = images(6)
    with torch.no_grad():
        assert torch.allclose(model(x), plain(x), atol=1e-5)
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        buffer.seek(0)
        fresh = build_model(cfg.replace(seed=cfg.seed + 1)).eval()
        fresh.load_state_dict(torch.load(buffer, weights_only=True))
        assert torch.equal(fresh(x), model(x))


def test_mlp_weights_keep_the_plain_layout() -> None:
    assert all(p.is_contiguous() for p in build_model(RunConfig(hidden=(32,))).parameters())


@pytest.mark.parametrize(
    "cfg",
    [
        lenet5(cnn_channels=(6, 16, 32)),
        lenet5(cnn_channels=(6, 16, 32), crop=20),
        lenet5(crop=20, cnn_channels=(4,) * 3),
    ],
    ids=["lenet-3-stages-28", "lenet-3-stages-20", "lenet-3-small-20"],
)
def test_too_many_conv_stages_for_the_crop_raise_config_error(cfg: RunConfig) -> None:
    with pytest.raises(ConfigError) as err:
        build_model(cfg)
    assert err.value.field == "cnn_channels"


def test_conv_stage_limit_is_in_the_config() -> None:
    with pytest.raises(ConfigError) as err:
        RunConfig(model="cnn", cnn_channels=(8,) * 5)
    assert err.value.field == "cnn_channels"


# ---------------------------------------------------------------- seeding


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize(
    "cfg", [RunConfig(hidden=(64, 32)), lenet5(), quick_default()], ids=lambda c: c.label()
)
def test_same_config_and_seed_give_identical_weights(cfg: RunConfig) -> None:
    assert _same_weights(build_model(cfg), build_model(cfg))
    assert _same_weights(build_model(cfg, seed=7), build_model(cfg.replace(seed=7)))
    assert not _same_weights(build_model(cfg, seed=1), build_model(cfg, seed=2))
    assert not _same_weights(build_model(cfg.replace(seed=1)), build_model(cfg.replace(seed=2)))


def test_build_model_does_not_disturb_the_global_rng() -> None:
    torch.manual_seed(123)
    expected = torch.rand(8)
    torch.manual_seed(123)
    build_model(RunConfig(hidden=(64,), seed=999))
    build_model(lenet5(), seed=5)
    assert torch.equal(torch.rand(8), expected)


def test_build_model_is_not_affected_by_the_global_rng() -> None:
    torch.manual_seed(1)
    a = build_model(RunConfig(hidden=(32,)))
    torch.manual_seed(2)
    torch.rand(100)
    b = build_model(RunConfig(hidden=(32,)))
    assert _same_weights(a, b)


def test_models_are_fresh_objects() -> None:
    cfg = RunConfig(hidden=(16,))
    a, b = build_model(cfg), build_model(cfg)
    assert a is not b
    with torch.no_grad():
        next(a.parameters()).add_(1.0)
    assert not _same_weights(a, b)
