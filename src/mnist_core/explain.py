"""Which pixels of the 28x28 input made the model say what it said.

Two classic saliency maps, both ``(28, 28)`` float32 in [0, 1] (1: the pixel
that matters most for the class explained):

* **input gradients** (for MLPs): how strongly the class score reacts to
  each pixel, ``|d logit / d pixel|``, averaged over a few slightly noisy
  copies of the input (SmoothGrad) so the map is not speckled;
* **occlusion** (for CNNs, whose gradients are patchy after max pooling):
  cover a small square with background, one position at a time, and record
  how much the class's lead over the runner-up (its logit margin) shrinks;
  each pixel gets the mean of the squares that cover it. The margin, not the
  probability: a confident model's probability stays at 100% whatever is
  covered, and the map would be blank.

Neither changes the model: gradients are taken with respect to the input
only (``torch.autograd.grad``), so no parameter's ``.grad`` is touched, and
the model stays in eval mode (it may be shared between threads).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .errors import ConfigError

METHODS = ("auto", "gradient", "occlusion")
PATCH = 4  # occlusion square, pixels
SMOOTH_SAMPLES = 16
SMOOTH_NOISE = 0.15  # noise std for SmoothGrad, as a fraction of the input's value range


def method_for(model: nn.Module) -> str:
    """ "occlusion" for a model with convolutions, else "gradient"."""
    return "occlusion" if any(isinstance(m, nn.Conv2d) for m in model.modules()) else "gradient"


def saliency(model: nn.Module, x: torch.Tensor, label: int | None = None, method: str = "auto") -> np.ndarray:
    """Saliency of ``label`` (default: the predicted class) for one input ``x`` ``(1, 1, 28, 28)``.

    Returns float32 ``(28, 28)`` in [0, 1]; all zeros when nothing matters
    (e.g. a constant model).
    """
    if method not in METHODS:
        raise ConfigError("method", f"{method!r} is not one of {', '.join(METHODS)}")
    if x.ndim != 4 or tuple(x.shape) != (1, 1, 28, 28):
        raise ValueError(f"saliency explains one image of shape (1, 1, 28, 28), got {tuple(x.shape)}")
    if any(m.training for m in model.modules()):
        raise ValueError("The model is in training mode: explain a model in eval mode.")
    device = _device(model)
    x = x.detach().to(device, torch.float32)
    if label is None:
        with torch.inference_mode():
            label = int(model(x).argmax(1))
    if not 0 <= label <= 9:
        raise ConfigError("label", "a label must be a digit 0-9")
    chosen = method_for(model) if method == "auto" else method
    raw = _occlusion(model, x, label) if chosen == "occlusion" else _gradient(model, x, label)
    return _unit(raw)


def _gradient(model: nn.Module, x: torch.Tensor, label: int) -> np.ndarray:
    """SmoothGrad: mean ``|d logit[label] / d x|`` over noisy copies of ``x``."""
    gen = torch.Generator().manual_seed(0)
    spread = float(x.max() - x.min()) or 1.0
    noise = torch.randn((SMOOTH_SAMPLES, 1, 28, 28), generator=gen).to(x.device) * SMOOTH_NOISE * spread
    noise[0] = 0.0  # the input itself is one of the samples
    with torch.enable_grad():
        inputs = (x + noise).requires_grad_(True)
        score = model(inputs)[:, label].sum()
        (grad,) = torch.autograd.grad(score, inputs)
    return grad.abs().mean(dim=0)[0].cpu().numpy()


def _occlusion(model: nn.Module, x: torch.Tensor, label: int) -> np.ndarray:
    """Mean shrinking of the label's logit margin when a ``PATCH`` square over each pixel is blanked."""
    background = float(x.min())  # normalised value of an empty pixel (0 ink)
    positions = [(top, left) for top in range(29 - PATCH) for left in range(29 - PATCH)]
    batch = x.repeat(len(positions), 1, 1, 1)
    for i, (top, left) in enumerate(positions):
        batch[i, 0, top : top + PATCH, left : left + PATCH] = background
    with torch.inference_mode():
        base = _margin(model(x).float(), label)[0]
        margins = _margin(model(batch).float(), label)
    fall = (base - margins).clamp(min=0.0).cpu().numpy()
    total = np.zeros((28, 28), np.float64)
    count = np.zeros((28, 28), np.float64)
    for value, (top, left) in zip(fall, positions, strict=True):
        total[top : top + PATCH, left : left + PATCH] += value
        count[top : top + PATCH, left : left + PATCH] += 1
    return total / count


def _margin(logits: torch.Tensor, label: int) -> torch.Tensor:
    """``logits[:, label]`` minus the largest other logit, per row."""
    others = logits.clone()
    others[:, label] = -torch.inf
    return logits[:, label] - others.max(dim=1).values


def _unit(raw: np.ndarray) -> np.ndarray:
    peak = float(raw.max())
    if not np.isfinite(peak) or peak <= 0:
        return np.zeros((28, 28), np.float32)
    return np.clip(raw / peak, 0.0, 1.0).astype(np.float32)


def _device(model: nn.Module) -> torch.device:
    tensor = next(iter(model.parameters()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def overlay(pixels: np.ndarray, heat: np.ndarray, scale: int = 8, strength: float = 0.75) -> np.ndarray:
    """The digit in gray with the saliency in red-yellow on top: uint8 ``(28*scale, 28*scale, 3)``.

    ``pixels`` and ``heat`` are ``(28, 28)`` in [0, 1]; each pixel becomes a
    ``scale x scale`` block (no smoothing, so the 28x28 grid stays visible).
    """
    if pixels.shape != (28, 28) or heat.shape != (28, 28):
        raise ValueError(f"overlay takes two (28, 28) arrays, got {pixels.shape} and {heat.shape}")
    gray = 0.55 * np.clip(pixels, 0.0, 1.0)[..., None] * np.ones(3)
    hot = np.stack([np.ones_like(heat), np.clip(heat * 1.5 - 0.5, 0.0, 1.0), np.zeros_like(heat)], axis=-1)
    alpha = (strength * np.clip(heat, 0.0, 1.0))[..., None]
    rgb = (1.0 - alpha) * gray + alpha * hot
    big = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
    return (np.clip(big, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def enlarge(pixels: np.ndarray, scale: int = 8) -> np.ndarray:
    """A ``(28, 28)`` image in [0, 1] as uint8 ``(28*scale, 28*scale)``, blocky (no smoothing)."""
    big = np.repeat(np.repeat(np.clip(pixels, 0.0, 1.0), scale, axis=0), scale, axis=1)
    return (big * 255.0).round().astype(np.uint8)
