"""Pictures of the Runs page's "Inside" view: first-layer weight mosaics, histograms, dead units.

Not a page. Drawing only: the numbers come ready from ``mnist_core.internals``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from mnist_core.internals import LayerStats
from ui.charts import LEGEND_BELOW, TITLE_MARGIN
from ui.charts import title as chart_title

TILE_PX = 56  # a weight picture is scaled up (nearest neighbour) to about this size
COLS = 8
GAP = 2
HEIGHT = 320
# Diverging colours: negative weights blue, zero white, positive red.
_NEG = np.array([33, 102, 172], dtype=np.float32)
_POS = np.array([178, 24, 43], dtype=np.float32)
_WHITE = np.array([247, 247, 247], dtype=np.float32)


def mosaic(images: np.ndarray, cols: int = COLS) -> np.ndarray:
    """Tiles ``(K, H, W)`` of weights -> one RGB picture ``(rows * (h + GAP), cols * (w + GAP), 3)`` uint8.

    Each tile is scaled by its own largest absolute weight, so every unit's
    pattern shows whatever its norm (the order already tells the norm).
    """
    k, h, w = images.shape
    scale = max(1, TILE_PX // max(h, w))
    cols = max(1, min(cols, k))
    rows = max(1, -(-k // cols))
    th, tw = h * scale + GAP, w * scale + GAP
    out = np.full((rows * th, cols * tw, 3), 255, dtype=np.uint8)
    for i in range(k):
        tile = images[i].astype(np.float32)
        peak = float(np.abs(tile).max()) or 1.0
        t = (tile / peak)[..., None]  # (h, w, 1) in [-1, 1]
        rgb = np.where(t >= 0, _WHITE + t * (_POS - _WHITE), _WHITE - t * (_NEG - _WHITE))
        rgb = np.kron(rgb, np.ones((scale, scale, 1), dtype=np.float32))
        r, c = divmod(i, cols)
        out[r * th : r * th + h * scale, c * tw : c * tw + w * scale] = rgb.round().astype(np.uint8)
    return out


def histograms_figure(layers: Sequence[LayerStats], which: str, title: str) -> go.Figure:
    """One line per layer: the share of its weights (or outputs) in each bin.

    ``which`` is ``"weights"`` or ``"activations"``; outputs use a log y axis
    (a ReLU layer's zeros would flatten everything else).
    """
    fig = go.Figure()
    for layer in layers:
        hist = layer.weights if which == "weights" else layer.activations
        if hist is None or not hist.total:
            continue
        edges = np.asarray(hist.edges)
        centres = (edges[:-1] + edges[1:]) / 2
        share = np.asarray(hist.counts, dtype=np.float64) / hist.total
        fig.add_trace(
            go.Scatter(
                x=centres,
                y=share,
                mode="lines",
                line={"shape": "hvh", "width": 1.5},
                name=html.escape(layer.name),
                hovertemplate="%{x:.3g}: %{y:.2%}<extra>" + html.escape(layer.name) + "</extra>",
            )
        )
    y_type = "linear" if which == "weights" else "log"
    fig.update_layout(
        title=chart_title(title),
        height=HEIGHT,
        margin={"l": 10, "r": 10, "t": TITLE_MARGIN, "b": 10},
        xaxis={"title": None},  # the chart's title names the values; a title here would sit under the legend
        yaxis={"title": "share of values", "tickformat": "~%", "type": y_type},
        legend=LEGEND_BELOW,
    )
    return fig


def units_figure(per_run: Mapping[str, Sequence[LayerStats]]) -> go.Figure:
    """Per layer and run, the share of dead (ReLU) or saturated (tanh, sigmoid) units; grouped bars."""
    fig = go.Figure()
    for name, layers in per_run.items():
        x, y, what = [], [], []
        for layer in layers:
            if layer.dead_share is not None:
                x.append(f"layer {layer.index}")
                y.append(layer.dead_share)
                what.append("dead (ReLU never active)")
            elif layer.saturated_share is not None:
                x.append(f"layer {layer.index}")
                y.append(layer.saturated_share)
                what.append(f"saturated ({layer.activation})")
        fig.add_trace(
            go.Bar(
                x=x,
                y=y,
                name=html.escape(name),
                customdata=what,
                hovertemplate="%{x}: %{y:.1%} %{customdata}<extra>" + html.escape(name) + "</extra>",
            )
        )
    fig.update_layout(
        title=chart_title("Dead or saturated units per layer"),
        height=HEIGHT,
        barmode="group",
        margin={"l": 10, "r": 10, "t": TITLE_MARGIN, "b": 10},
        yaxis={"title": "share of the layer's units", "tickformat": ".0%", "rangemode": "tozero"},
        xaxis={"type": "category"},
        legend=LEGEND_BELOW,
    )
    return fig
