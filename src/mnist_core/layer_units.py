"""A model's weight layers and their units, and when a unit counts as dead or saturated: one definition.

Shared by :mod:`mnist_core.internals` (a finished run, on test images),
:mod:`mnist_core.internals_drawing` (one drawing), :mod:`mnist_core.layerstats`
(while training) and :mod:`mnist_core.probes` (readouts per layer), so the
Train page, the Runs page's Inside view and the CLI count the same thing:

- a *weight layer* is an ``nn.Linear`` or ``nn.Conv2d``, in the order the
  forward pass meets them (the model's leaf modules in registration order);
- its *unit* is an output feature (linear) or a channel (conv: all its
  positions together);
- *dead*: a unit after a ReLU that is never above zero on the images seen;
- *saturated*: a unit after tanh or sigmoid within :data:`SATURATION_MARGIN`
  of a bound on at least :data:`SATURATED_FRACTION` of its values.
"""

from __future__ import annotations

import math

import torch
from torch import nn

SATURATION_MARGIN = 0.01  # tanh: |y| > 0.99; sigmoid: y < 0.01 or y > 0.99
SATURATED_FRACTION = 0.9
ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.ReLU: "relu",
    nn.GELU: "gelu",
    nn.Tanh: "tanh",
    nn.Sigmoid: "sigmoid",
}
SATURATING = ("tanh", "sigmoid")

WeightLayer = nn.Linear | nn.Conv2d


def leaves(model: nn.Module) -> list[nn.Module]:
    """The modules that do the work (no containers), in the order they were registered: the forward order."""
    return [m for m in model.modules() if not list(m.children())]


def sequence(model: nn.Module) -> list[nn.Module]:
    """The modules of a (nested) ``nn.Sequential`` in the order they run: a model read module by module.

    Reading a model this way needs no hooks and changes nothing (cached
    models are shared between threads); other containers cannot be read so.
    """
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"Layer by layer reading needs an nn.Sequential model, not {type(model).__name__}.")
    out: list[nn.Module] = []
    for m in model:
        out.extend(sequence(m) if isinstance(m, nn.Sequential) else [m])
    return out


def weight_positions(modules: list[nn.Module]) -> list[int]:
    """Where the weight layers are among ``modules``."""
    return [i for i, m in enumerate(modules) if isinstance(m, WeightLayer)]


def activation_after(modules: list[nn.Module], start: int) -> tuple[int, str | None]:
    """Where the activation between ``modules[start]`` and the next weight layer is, and its name.

    ``(start, None)`` when there is none (the output layer).
    """
    for i in range(start + 1, len(modules)):
        m = modules[i]
        if isinstance(m, WeightLayer):
            break
        for cls, name in ACTIVATIONS.items():
            if isinstance(m, cls):
                return i, name
    return start, None


def layer_shape(layer: WeightLayer) -> tuple[str, int, int]:
    """``(kind, n_in, n_out)``: ``"linear"`` features or ``"conv"`` channels."""
    if isinstance(layer, nn.Conv2d):
        return "conv", layer.in_channels, layer.out_channels
    return "linear", layer.in_features, layer.out_features


def layer_name(index: int, kind: str, n_in: int, n_out: int, activation: str | None) -> str:
    """The long name, for views of one layer at a time: ``layer 2: linear 1024→1024, relu``.

    The output layer says ``(logits)`` instead of an activation.
    """
    arrow = f"{n_in}→{n_out}"
    what = f"conv {arrow} channels" if kind == "conv" else f"linear {arrow}"
    return f"layer {index}: {what}" + (f", {activation}" if activation else " (logits)")


def short_layer_name(index: int, layer: WeightLayer, last: bool) -> str:
    """The short name, for a legend of every layer (the live charts, the history).

    ``layer 1 (784→512)``, ``conv 1 (1→32, 5x5)``, ``output (512→10)``.
    """
    if isinstance(layer, nn.Conv2d):
        k = "x".join(str(s) for s in layer.kernel_size)
        return f"conv {index} ({layer.in_channels}→{layer.out_channels}, {k})"
    return f"{'output' if last else f'layer {index}'} ({layer.in_features}→{layer.out_features})"


def by_unit(output: torch.Tensor) -> torch.Tensor:
    """A layer's output ``(B, units)`` or ``(B, channels, H, W)`` as ``(units, B * H * W)``."""
    out = output.detach()
    return out.transpose(0, 1).reshape(out.shape[1], -1)


def active(values: torch.Tensor) -> torch.Tensor:
    """``(units,)`` bool: which units of ``values`` ``(units, n)`` are above zero at least once."""
    return (values > 0).any(dim=1)


def saturated_counts(values: torch.Tensor, activation: str | None) -> torch.Tensor | None:
    """``(units,)`` int64: how many of each unit's values ``(units, n)`` sit at a bound.

    None unless ``activation`` is tanh or sigmoid.
    """
    if activation == "tanh":
        return (values.abs() > 1 - SATURATION_MARGIN).sum(dim=1)
    if activation == "sigmoid":
        return ((values < SATURATION_MARGIN) | (values > 1 - SATURATION_MARGIN)).sum(dim=1)
    return None


def dead_share(ever_active: torch.Tensor) -> float:
    """Share of units never active (``ever_active`` ``(units,)`` bool)."""
    return float((~ever_active).float().mean())


def saturated_share(counts: torch.Tensor, values_per_unit: int) -> float:
    """Share of units whose saturated values (``counts`` ``(units,)``) reach :data:`SATURATED_FRACTION`."""
    share = counts.double() / max(1, values_per_unit)
    return float((share >= SATURATED_FRACTION).double().mean())


def unit_pictures(first: WeightLayer) -> tuple[str, torch.Tensor] | None:
    """The first layer's units as pictures: ``("mlp", (units, side, side))`` or ``("cnn", (channels, k, k))``.

    An MLP's first linear layer reads the flattened (maybe cropped) image, so
    each unit's ``side * side`` weights are a picture; a CNN's first
    convolution has one ``k x k`` filter per channel (input channels summed).
    None when a linear layer's input is not a square image.
    """
    w = first.weight.detach().float().cpu()
    if isinstance(first, nn.Conv2d):
        return "cnn", w.sum(dim=1)
    side = math.isqrt(w.shape[1])
    if side * side != w.shape[1]:
        return None
    return "mlp", w.reshape(w.shape[0], side, side)
