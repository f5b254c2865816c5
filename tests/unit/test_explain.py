"""Saliency maps: the right method per model, shapes and ranges, known answers, the model untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mnist_core import explain
from mnist_core.config import RunConfig
from mnist_core.errors import ConfigError
from mnist_core.models import build_model

BACKGROUND = -0.4242  # normalised value of an empty MNIST pixel


def digit() -> torch.Tensor:
    """A vertical bar of ink in columns 12-15, rows 4-23, on background: ``(1, 1, 28, 28)``."""
    x = torch.full((1, 1, 28, 28), BACKGROUND)
    x[..., 4:24, 12:16] = 2.8
    return x


def linear_model(weights: torch.Tensor) -> nn.Module:
    """logits = W x: the gradient of class c with respect to the input is exactly W[c]."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(weights.reshape(10, 784))
    return model.eval()


def test_method_follows_the_architecture() -> None:
    assert explain.method_for(build_model(RunConfig(model="cnn"))) == "occlusion"
    assert explain.method_for(build_model(RunConfig(hidden=(32,)))) == "gradient"


@pytest.mark.parametrize("cfg", [RunConfig(hidden=(32,)), RunConfig(model="cnn", cnn_channels=(4, 8))])
def test_map_is_28x28_in_unit_range_and_the_model_is_untouched(cfg: RunConfig) -> None:
    model = build_model(cfg).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    heat = explain.saliency(model, digit())
    assert heat.shape == (28, 28) and heat.dtype == np.float32
    assert heat.min() >= 0.0 and heat.max() == pytest.approx(1.0)
    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())


def test_input_gradients_of_a_linear_model_are_its_weights() -> None:
    weights = torch.zeros(10, 28, 28)
    weights[3, 5:10, 5:10] = 2.0
    weights[3, 20, 20] = -4.0  # sign does not matter, size does
    heat = explain.saliency(linear_model(weights), digit(), label=3, method="gradient")
    expected = weights[3].abs().numpy() / 4.0
    np.testing.assert_allclose(heat, expected, atol=1e-6)


def test_occlusion_finds_the_pixels_the_class_depends_on() -> None:
    weights = torch.zeros(10, 28, 28)
    weights[1, 4:24, 12:16] = 0.5  # class 1 is "ink in the bar"
    model = linear_model(weights)
    heat = explain.saliency(model, digit(), label=1, method="occlusion")
    on_bar = heat[4:24, 12:16].mean()
    far = heat[:, :6].max()
    assert on_bar > 0.3 and far == 0.0


def test_default_label_is_the_prediction() -> None:
    weights = torch.zeros(10, 28, 28)
    weights[7, 4:24, 12:16] = 1.0
    weights[2, 0:4, 0:4] = 1.0
    model = linear_model(weights)
    assert np.array_equal(explain.saliency(model, digit(), method="gradient"),
                          explain.saliency(model, digit(), label=7, method="gradient"))  # fmt: skip


def test_a_constant_model_gives_an_empty_map() -> None:
    heat = explain.saliency(linear_model(torch.zeros(10, 28, 28)), digit(), label=0)
    assert not heat.any()


def test_bad_calls_are_refused() -> None:
    model = build_model(RunConfig(hidden=(8,)))
    with pytest.raises(ValueError, match="training mode"):
        explain.saliency(model.train(), digit())
    model.eval()
    with pytest.raises(ValueError, match="one image"):
        explain.saliency(model, torch.zeros(2, 1, 28, 28))
    with pytest.raises(ConfigError, match="method"):
        explain.saliency(model, digit(), method="lime")
    with pytest.raises(ConfigError, match="digit"):
        explain.saliency(model, digit(), label=12)


def test_overlay_and_enlarge_make_blocky_images() -> None:
    pixels = np.zeros((28, 28), np.float32)
    pixels[10:18, 13:15] = 1.0
    heat = np.zeros((28, 28), np.float32)
    heat[0, 0] = 1.0
    image = explain.overlay(pixels, heat, scale=4)
    assert image.shape == (112, 112, 3) and image.dtype == np.uint8
    assert tuple(image[0, 0]) != tuple(image[0, 8])  # the hot pixel is coloured
    assert image[0, 0, 0] > image[0, 0, 2]  # red, not blue
    big = explain.enlarge(pixels, 3)
    assert big.shape == (84, 84) and big[30, 39] == 255 and big[0, 0] == 0
    with pytest.raises(ValueError, match="28, 28"):
        explain.overlay(pixels[:27], heat)
