"""The live per-layer statistics (``mnist_core.layerstats``): one line per layer, drawn by ``ui.live_chart``.

Gradient norm and update-to-weight ratio (log axes) and the share of dead
ReLU or saturated tanh/sigmoid units, per weight layer, from the ``layers``
of a run's step points. Pushed from a fragment (:func:`live_layer_stats`) or
polled from the route (:func:`polled_layer_stats`, ``?view=layers``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mnist_core import curves as core_curves
from mnist_core.curves import Point
from ui.live_chart import LiveView, Panel, Row, Series, live_chart, polled_chart, rounded, steps_per_epoch

LAYER_COLORS = ("#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


def layers_of(point: Point) -> list[dict[str, Any]] | None:
    layers = point.get("layers") if isinstance(point, dict) else getattr(point, "layers", None)
    return layers if isinstance(layers, list) and all(isinstance(s, dict) for s in layers) else None


def _stat(layers: list[dict[str, Any]], k: int, name: str) -> float:
    value = core_curves.number(layers[k].get(name)) if k < len(layers) else None
    return math.nan if value is None else float(value)


def _units_stat(layer: dict[str, Any]) -> str | None:
    for name in ("dead_share", "saturated_share"):
        if core_curves.number(layer.get(name)) is not None:
            return name
    return None


def layer_stats_view(first: list[dict[str, Any]], per: float | None = None) -> LiveView:
    """Per-layer gradient norm, update/weight ratio (both log) and dead or saturated units, one line a layer.

    ``first``: the ``layers`` of the run's first step point (names, and which
    layers have a ReLU, tanh or sigmoid after them).
    """
    names = [str(s.get("name", f"layer {k + 1}")) for k, s in enumerate(first)]
    colors = [LAYER_COLORS[k % len(LAYER_COLORS)] for k in range(len(first))]
    units = [(k, stat) for k, s in enumerate(first) if (stat := _units_stat(s))]
    kinds = {stat for _, stat in units}
    title = {"dead_share": "Dead ReLU units", "saturated_share": "Saturated units"}.get(
        next(iter(kinds)) if len(kinds) == 1 else "", "Dead or saturated units"
    )

    series = [Series(n, c) for n, c in zip(names, colors, strict=True)]
    panels = [
        Panel("Gradient norm", series, y_label="‖∇W‖ (log)", log=True, steps_per_x=per),
        Panel("Update / weight", series, y_label="‖ΔW‖ / ‖W‖ (log)", log=True, steps_per_x=per),
    ]
    if units:  # a model without hidden activations has no third panel
        chosen = [series[k] for k, _ in units]
        panels.append(Panel(title, chosen, y_label="units", y_range=(0, 1), percent=True, steps_per_x=per))

    def rows(points: Sequence[Point]) -> list[list[Row]]:
        steps = [(p, layers) for p in points if (layers := layers_of(p)) is not None]
        x = core_curves.epochs_elapsed([p for p, _ in steps])
        out: list[list[Row]] = [[] for _ in panels]
        for xi, (_, layers) in zip(rounded(x), steps, strict=True):
            values = [
                [_stat(layers, k, "grad_norm") for k in range(len(names))],
                [_stat(layers, k, "update_ratio") for k in range(len(names))],
                [_stat(layers, k, stat) for k, stat in units],
            ]
            for i, panel in enumerate(panels):
                clean = [v if math.isfinite(v) and (v > 0 or not panel.log) else math.nan for v in values[i]]
                out[i].append([xi, *rounded(np.array(clean, dtype=np.float64))])
        return out

    return LiveView(panels, rows)


def live_layer_stats(key: str, run: str, points: Sequence[Point], height: int = 240) -> bool:
    """The live per-layer statistics of a run's progress ``points``; False (nothing drawn) before any."""
    first = next((layers for p in points if (layers := layers_of(p))), None)
    if first is None:
        return False
    live_chart(key, run, layer_stats_view(first, steps_per_epoch(points)), points, height=height)
    return True


def polled_layer_stats(key: str, run: str, url: str, caption: str = "", height: int = 240) -> bool:
    """A run's live per-layer statistics from ``url`` (``?view=layers``), drawn from its first such point."""
    return polled_chart(key, run, None, url, height=height, caption=caption, ask=False)
