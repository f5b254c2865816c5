"""Inside a finished run's model: first-layer weights as pictures, per-layer histograms, dead units.

Everything is read from the real model: the weights from its parameters, the
activations through forward hooks on its own activation modules (so batch
norm, crops and pooling are exactly what the model does). Per weight layer
(``nn.Linear`` or ``nn.Conv2d``, in model order) we report:

- the histogram of its weights (biases left out);
- the histogram of its outputs after the activation that follows it (the
  logits for the last layer) on a sample of test images;
- the share of dead units (ReLU: never above zero on the whole sample) and of
  saturated units (tanh / sigmoid: within ``layer_units.SATURATION_MARGIN`` of
  a bound on at least ``layer_units.SATURATED_FRACTION`` of the sample). A convolution's unit is a
  channel: dead when no position of any image activates it.

The first layer's weights become pictures: an MLP's hidden unit reads every
input pixel, so its ``side * side`` weights are an image (``side`` is 28, or
the crop); a CNN's first convolution has one ``k x k`` filter per channel.
Both are sorted by the L2 norm of their weights, largest first, and at most
``MAX_FIRST_LAYER_IMAGES`` are kept.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .data import load_split
from .errors import DatasetUnavailable
from .layer_units import (
    SATURATING,
    activation_after,
    active,
    by_unit,
    dead_share,
    layer_name,
    layer_shape,
    leaves,
    saturated_counts,
    saturated_share,
    unit_pictures,
    weight_positions,
)
from .runs import load_model

PathLike = str | os.PathLike[str]

SAMPLE_SIZE = 2000  # test images run through the model for the activation statistics
MAX_FIRST_LAYER_IMAGES = 64
BINS = 40
# Activation values kept per layer for its histogram: a CNN layer on 2,000
# images gives tens of millions; a stride over them keeps this many at most.
MAX_HISTOGRAM_VALUES = 1_000_000
BATCH = 500


@dataclass(frozen=True)
class Histogram:
    """``counts[i]`` values fell in ``[edges[i], edges[i + 1])`` (the last bin is closed).

    ``total`` is ``sum(counts)``; ``of`` is how many values there were before
    any subsampling (equal to ``total`` unless a stride thinned them).
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    of: int
    mean: float
    std: float
    min: float
    max: float

    @property
    def total(self) -> int:
        return sum(self.counts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean, "std": self.std, "min": self.min, "max": self.max,
            "values": self.total, "of": self.of, "edges": list(self.edges), "counts": list(self.counts),
        }


@dataclass(frozen=True)
class LayerStats:
    """One weight layer: what it holds, and what it puts out on the sample."""

    index: int  # 1-based among the weight layers
    kind: str  # "linear" or "conv"
    n_in: int  # input features (linear) or channels (conv)
    n_out: int  # units (linear) or channels (conv)
    activation: str | None  # the activation after it; None for the output layer
    weights: Histogram
    activations: Histogram | None  # None without test images
    dead_share: float | None  # ReLU only, and only with test images
    saturated_share: float | None  # tanh / sigmoid only, and only with test images

    @property
    def name(self) -> str:
        return layer_name(self.index, self.kind, self.n_in, self.n_out, self.activation)

    def as_dict(self) -> dict[str, Any]:
        return {
            "layer": self.index, "name": self.name, "kind": self.kind, "in": self.n_in, "out": self.n_out,
            "activation": self.activation, "dead_share": self.dead_share,
            "saturated_share": self.saturated_share, "weights": self.weights.as_dict(),
            "activations": None if self.activations is None else self.activations.as_dict(),
        }


@dataclass(frozen=True)
class FirstLayer:
    """The first layer's weights as pictures, largest L2 norm first.

    ``images`` is float32 ``(K, H, W)``: unit ``units[k]``'s weights, whose
    norm is ``norms[k]``; ``K <= MAX_FIRST_LAYER_IMAGES``. ``n_units`` is how
    many units (or filters) the layer has in all.
    """

    kind: str  # "mlp" (hidden units over the input pixels) or "cnn" (filters)
    images: np.ndarray
    units: tuple[int, ...]
    norms: tuple[float, ...]
    n_units: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "units": self.n_units, "shown": len(self.units),
            "image_shape": list(self.images.shape[1:]), "order": list(self.units),
            "norms": [round(n, 6) for n in self.norms],
        }


@dataclass(frozen=True)
class Inside:
    """A model's first-layer pictures and per-layer statistics on ``sample_size`` test images."""

    first_layer: FirstLayer | None
    layers: tuple[LayerStats, ...]
    sample_size: int
    data_note: str | None = None  # why there are no activation statistics
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.extra,
            "sample_size": self.sample_size,
            "data_note": self.data_note,
            "first_layer": None if self.first_layer is None else self.first_layer.as_dict(),
            "layers": [layer.as_dict() for layer in self.layers],
        }


# -- weights ------------------------------------------------------------------------------


def weight_layers(model: nn.Module) -> list[nn.Linear | nn.Conv2d]:
    """The model's linear and conv layers, in the order the forward pass meets them."""
    modules = leaves(model)
    return [modules[i] for i in weight_positions(modules)]  # type: ignore[misc]


def first_layer_images(model: nn.Module, limit: int = MAX_FIRST_LAYER_IMAGES) -> FirstLayer | None:
    """The first layer's units as pictures: ``(K, side, side)`` for an MLP, ``(K, k, k)`` for a CNN.

    An MLP's first linear layer has weight ``(units, side * side)`` (it reads
    the flattened, maybe cropped image); a CNN's first convolution has weight
    ``(channels, 1, k, k)``. ``None`` when the model has neither, or when an
    MLP's input is not a square image.
    """
    layers = weight_layers(model)
    found = unit_pictures(layers[0]) if layers else None
    if found is None:
        return None
    kind, pictures = found
    norms = pictures.flatten(1).norm(dim=1)
    order = torch.argsort(norms, descending=True, stable=True)[:limit]
    return FirstLayer(
        kind=kind,
        images=pictures.index_select(0, order).numpy().astype(np.float32),
        units=tuple(int(i) for i in order),
        norms=tuple(float(norms[i]) for i in order),
        n_units=int(pictures.shape[0]),
    )


def histogram(values: torch.Tensor, bins: int = BINS, of: int | None = None) -> Histogram:
    """Equal-width histogram of ``values`` (any shape) from their min to their max."""
    v = values.detach().flatten().double()
    v = v[torch.isfinite(v)]
    if not len(v):
        return Histogram((0.0, 1.0), (0,), of or 0, math.nan, math.nan, math.nan, math.nan)
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:  # all equal: one bin around the value
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = torch.histogram(v, bins=bins, range=(lo, hi))
    return Histogram(
        edges=tuple(float(e) for e in edges),
        counts=tuple(int(c) for c in counts),
        of=len(values.flatten()) if of is None else of,
        mean=float(v.mean()),
        std=float(v.std()) if len(v) > 1 else 0.0,
        min=float(v.min()),
        max=float(v.max()),
    )


# -- activations --------------------------------------------------------------------------


class _Recorder:
    """Forward-hook state of one layer: per-unit counts and a thinned copy of the outputs.

    The hook sees outputs ``(B, units)`` or ``(B, channels, H, W)``.
    """

    def __init__(self, activation: str | None, n_images: int) -> None:
        self.activation = activation
        self.n_images = n_images
        self.kept: list[torch.Tensor] = []
        self.seen = 0  # output values seen
        self.stride = 0
        self.ever_active: torch.Tensor | None = None  # (units,) bool
        self.saturated: torch.Tensor | None = None  # (units,) count of saturated values
        self.per_unit = 0  # values per unit per image (H * W for a conv)

    def __call__(self, _module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        out = output.detach().float()
        units = out.shape[1]
        per_unit = out[0].numel() // units
        if not self.stride:
            self.per_unit = per_unit
            self.stride = max(1, math.ceil(self.n_images * out[0].numel() / MAX_HISTOGRAM_VALUES))
            self.ever_active = torch.zeros(units, dtype=torch.bool)
            self.saturated = torch.zeros(units, dtype=torch.int64)
        flat = out.flatten()
        self.kept.append(flat[:: self.stride].clone())
        self.seen += flat.numel()
        values = by_unit(out)  # (units, B * H * W)
        assert self.ever_active is not None and self.saturated is not None
        self.ever_active |= active(values)
        counts = saturated_counts(values, self.activation)
        if counts is not None:
            self.saturated += counts

    def stats(self, bins: int) -> tuple[Histogram | None, float | None, float | None]:
        if not self.kept or self.ever_active is None or self.saturated is None:
            return None, None, None
        hist = histogram(torch.cat(self.kept), bins, of=self.seen)
        dead = dead_share(self.ever_active) if self.activation == "relu" else None
        saturated = None
        if self.activation in SATURATING:
            saturated = saturated_share(self.saturated, self.seen // len(self.saturated))
        return hist, dead, saturated


def inspect_model(
    model: nn.Module, images: torch.Tensor | None, *, bins: int = BINS, limit: int = MAX_FIRST_LAYER_IMAGES
) -> Inside:
    """Weights and (when ``images`` ``(N, 1, 28, 28)`` normalised are given) activations of ``model``.

    The model is run in eval mode, without gradients, in batches of ``BATCH``;
    its hooks are removed afterwards and its mode restored.
    """
    modules = leaves(model)
    positions = weight_positions(modules)
    n = 0 if images is None else len(images)
    recorders: list[_Recorder] = []
    handles = []
    for pos in positions:
        at, name = activation_after(modules, pos)
        hooked = modules[at]
        rec = _Recorder(name, n)
        recorders.append(rec)
        if n:
            handles.append(hooked.register_forward_hook(rec))
    was_training = model.training
    try:
        model.eval()
        if images is not None and n:
            with torch.inference_mode():
                for start in range(0, n, BATCH):
                    model(images[start : start + BATCH])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    layers = []
    for k, (pos, rec) in enumerate(zip(positions, recorders, strict=True), start=1):
        layer = modules[pos]
        assert isinstance(layer, nn.Linear | nn.Conv2d)
        kind, n_in, n_out = layer_shape(layer)
        acts, dead, saturated = rec.stats(bins)
        weights = histogram(layer.weight, bins)
        layers.append(LayerStats(k, kind, n_in, n_out, rec.activation, weights, acts, dead, saturated))
    return Inside(first_layer_images(model, limit), tuple(layers), n)


def inspect_run(
    run_id: str,
    runs_dir: PathLike | None = None,
    data_root: PathLike | None = None,
    sample: int = SAMPLE_SIZE,
) -> Inside:
    """A saved run's insides on the first ``sample`` test images (the test split is not ordered).

    Raises RunNotFound / CorruptRun when the run or its weights cannot be
    read. When the dataset is not on disk (nothing is downloaded here) the
    weights are still reported, and ``data_note`` says what to do.
    """
    model, cfg = load_model(run_id, runs_dir)
    images: torch.Tensor | None = None
    note = None
    try:
        split = load_split(cfg.dataset, train=False, root=data_root, download=False)
        x, _ = split.tensors()
        images = x[:sample]
    except DatasetUnavailable as exc:
        note = f"No activation statistics: {exc}"
    inside = inspect_model(model, images)
    extra = {"run": run_id, "model": cfg.model, "dataset": cfg.dataset}
    return Inside(inside.first_layer, inside.layers, inside.sample_size, note, extra)
