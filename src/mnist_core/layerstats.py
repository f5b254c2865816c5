"""Per-layer statistics while a model trains: how its gradients, updates and units are doing.

Recorded at each progress event of :func:`mnist_core.train.train` (a step
point of the learning curve, about every 0.25 s) and saved in the run's
history as ``layers``: one dict per weight layer (``nn.Linear`` or
``nn.Conv2d``, in forward order), from the first step after the previous
event (the *probed* step):

- ``grad_norm``: the L2 norm of the layer's weight gradient of that step
  (biases left out). Both training paths leave it in ``weight.grad`` (the
  plain-MLP fast path writes its hand-computed gradients there too).
- ``update_ratio``: ``||w_after - w_before|| / ||w_before||`` of that step,
  the update-to-weight ratio (around 1e-3 is the usual healthy figure).
- ``dead_share``: for a layer followed by a ReLU, the share of its units that
  were never above zero on the last :data:`WINDOW` probed batches (a conv's
  unit is a channel: dead when no position of any image activates it).
- ``saturated_share``: for tanh / sigmoid, the share of units within
  ``SATURATION_MARGIN`` of a bound on at least ``SATURATED_FRACTION`` of their
  values over those batches (the definitions are :mod:`mnist_core.layer_units`',
  shared with :mod:`mnist_core.internals`, which reports the same on the test set).

Cost: no pass over the data. Per event, one copy of the weights before the
probed step, one ``foreach`` norm of the gradients and updates, and one
no-grad forward of (at most :data:`PROBE_ROWS` images of) the probed step's
own batch in eval mode (the training forward of the fast path runs no module
hooks; eval mode leaves batch-norm statistics and dropout's random stream
untouched, so the run trains exactly as it would without statistics). The
probes never take more than :data:`BUDGET` of the wall time: an event that
would exceed it carries no figures (``layers`` is None).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .layer_units import (
    SATURATING,
    activation_after,
    active,
    by_unit,
    dead_share,
    leaves,
    saturated_counts,
    saturated_share,
    short_layer_name,
    weight_positions,
)

WINDOW = 4  # probed batches a ReLU unit must stay silent on to count as dead
PROBE_ROWS = 128  # images of the probed batch run through the probe's forward (a big batch is cut)
# Most of the training time the probes may take. Events come every 0.25 s of wall time: when a step
# takes longer (a loaded machine, a big model), every step would be probed; past this share an event
# goes without figures until the budget allows the next probe.
BUDGET = 0.02
FIELDS = ("grad_norm", "update_ratio", "dead_share", "saturated_share")


@dataclass(frozen=True)
class LayerStat:
    """One weight layer's figures at one event; None where they do not apply or are not finite."""

    name: str  # "layer 2 (1024→1024)"
    grad_norm: float | None
    update_ratio: float | None
    dead_share: float | None  # layers followed by a ReLU
    saturated_share: float | None  # layers followed by tanh or sigmoid

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class _Units:
    """Forward hook on one activation module: per-unit activity of the recent probed batches."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.active: deque[torch.Tensor] = deque(maxlen=WINDOW)  # (units,) bool per batch
        self.saturated: deque[tuple[torch.Tensor, int]] = deque(maxlen=WINDOW)  # (units,) counts, values/unit

    def __call__(self, _module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        values = by_unit(output)  # (units, B * H * W)
        if self.kind == "relu":
            self.active.append(active(values))
        else:
            counts = saturated_counts(values, self.kind)
            assert counts is not None
            self.saturated.append((counts, values.shape[1]))

    def dead_share(self) -> float | None:
        if self.kind != "relu" or not self.active:
            return None
        return dead_share(torch.stack(list(self.active)).any(dim=0))

    def saturated_share(self) -> float | None:
        if self.kind == "relu" or not self.saturated:
            return None
        counts = torch.stack([c for c, _ in self.saturated]).sum(dim=0)
        return saturated_share(counts, sum(n for _, n in self.saturated))


class LayerStatsRecorder:
    """Probes one training step after each event; :meth:`take` hands its figures to the next event.

    The training loop calls :meth:`before_step` and :meth:`after_step` around
    every step (both return at once unless a probe is due) and :meth:`take`
    when it makes a step point.
    """

    def __init__(self, model: nn.Module, budget: float | None = None) -> None:
        self.model = model
        self.budget = BUDGET if budget is None else budget
        self.started = time.perf_counter()
        self.spent = 0.0  # wall seconds in probes so far
        modules = leaves(model)
        positions = weight_positions(modules)
        self.layers: list[nn.Linear | nn.Conv2d] = [modules[i] for i in positions]  # type: ignore[misc]
        last = len(positions) - 1
        self.names = [short_layer_name(k + 1, modules[i], k == last) for k, i in enumerate(positions)]  # type: ignore[arg-type]
        self.units: list[tuple[nn.Module, _Units] | None] = []
        for i in positions:
            at, kind = activation_after(modules, i)
            recorded = kind == "relu" or kind in SATURATING  # a GELU is neither dead nor saturated
            self.units.append((modules[at], _Units(kind)) if recorded and kind else None)
        self.armed = True
        self.copied = False
        # The weights before a probed step, in buffers kept for the whole run: a fresh copy per event
        # made the allocator return and fault the pages of a large model each time.
        self.before = [torch.empty_like(layer.weight) for layer in self.layers]
        self.latest: list[LayerStat] | None = None

    def before_step(self) -> None:
        """Keep the weights as they are before a probed step (one copy per event)."""
        if self.armed:
            start = time.perf_counter()
            torch._foreach_copy_(self.before, [layer.weight.detach() for layer in self.layers])
            self.copied = True
            self.spent += time.perf_counter() - start

    @torch.no_grad()
    def after_step(self, x: torch.Tensor) -> None:
        """Measure the probed step: its gradients, its update, its units on its own batch ``x``."""
        if not self.armed or not self.copied:
            return
        start = time.perf_counter()
        try:
            self._measure(x)
        finally:
            self.spent += time.perf_counter() - start

    def _measure(self, x: torch.Tensor) -> None:
        self.armed = self.copied = False
        weights = [layer.weight.detach() for layer in self.layers]
        grads = [w.grad if w.grad is not None else torch.full_like(w, math.nan) for w in self._params()]
        sizes = torch._foreach_norm(self.before)
        torch._foreach_sub_(self.before, weights)  # before - after: the update, negated
        norms = torch.stack([*torch._foreach_norm(grads), *torch._foreach_norm(self.before), *sizes]).tolist()
        self._probe(x[:PROBE_ROWS])
        n = len(weights)
        stats = []
        for k, name in enumerate(self.names):
            grad, delta, size = norms[k], norms[n + k], norms[2 * n + k]
            units = self.units[k]
            stats.append(
                LayerStat(
                    name=name,
                    grad_norm=_finite(grad),
                    update_ratio=_finite(delta / size) if size > 0 else None,
                    dead_share=None if units is None else units[1].dead_share(),
                    saturated_share=None if units is None else units[1].saturated_share(),
                )
            )
        self.latest = stats

    def _params(self) -> list[torch.Tensor]:
        return [layer.weight for layer in self.layers]

    def _probe(self, x: torch.Tensor) -> None:
        """One forward of ``x`` in eval mode with hooks on the activations (removed afterwards)."""
        hooked = [u for u in self.units if u is not None]
        if not hooked:
            return
        handles = [module.register_forward_hook(rec) for module, rec in hooked]
        was_training = self.model.training
        try:
            self.model.eval()
            self.model(x)
        finally:
            self.model.train(was_training)
            for h in handles:
                h.remove()

    def take(self) -> list[dict[str, Any]] | None:
        """The last probe's figures (once), and arm the next step's probe if the budget allows; else None."""
        latest, self.latest = self.latest, None
        self.armed = self.spent <= self.budget * (time.perf_counter() - self.started)
        return None if latest is None else [s.as_dict() for s in latest]


@dataclass(frozen=True)
class Recorded:
    """What a run's history holds of its per-layer statistics: per layer, the median over the training.

    ``layers``: one :class:`LayerStat` per weight layer (names as recorded),
    each figure the median of its finite values over the ``points`` step
    points that carry them. Medians, because a single probed step is noisy.
    """

    layers: tuple[LayerStat, ...]
    points: int


def recorded(history: list[dict[str, Any]]) -> Recorded | None:
    """The per-layer statistics recorded in ``history`` (a run's step points); None when it has none.

    A run trained before the statistics existed (or with them off) has no
    ``layers`` in its points: the views say so instead of drawing nothing.
    """
    points = [p["layers"] for p in history if p.get("kind", "step") == "step" and p.get("layers")]
    if not points:
        return None
    names = [layer["name"] for layer in points[-1]]
    out = []
    for k, name in enumerate(names):
        values: dict[str, float | None] = {}
        for field in FIELDS:
            found = [
                float(p[k][field]) for p in points
                if len(p) > k and isinstance(p[k].get(field), int | float) and math.isfinite(p[k][field])
            ]  # fmt: skip
            values[field] = statistics.median(found) if found else None
        out.append(LayerStat(name=name, **values))  # type: ignore[arg-type]
    return Recorded(tuple(out), len(points))


def run_recorded(run_id: str, runs_dir: str | os.PathLike[str] | None = None) -> Recorded | None:
    """:func:`recorded` of a saved run's history (RunNotFound / CorruptRun when it cannot be read)."""
    from .runs import load_history  # here: the training loop imports this module, runs need not load with it

    return recorded(load_history(run_id, runs_dir))
