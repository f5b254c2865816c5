"""Charts of the Runs page's "Inside" view: histograms, dead units, what a run recorded while it trained.

``ui.runs_views.inside_view`` lays the view out; the first-layer mosaics
come from ``ui.inside_plot`` and the readouts per layer from
``ui.layer_readouts``. Not a page. Drawing only: the numbers come ready from
``mnist_core.internals`` and ``mnist_core.layerstats``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from mnist_core import layerstats
from mnist_core.errors import MnistLabError
from mnist_core.internals import LayerStats
from ui.charts import TITLE_MARGIN
from ui.inside_plot import layout, per_run, run_trace

NO_STATS = (
    "{label}: its history has no per-layer training statistics (gradient norms, update ratios, dead units). "
    "It was trained before they were recorded, or with them off; train it again to see them. Everything "
    "else here is read from its weights."
)


PANEL_HEIGHT, PANEL_GAP = 120, 48  # px per layer in the outputs' small multiples, and between two


def histograms_figure(layers: Sequence[LayerStats], which: str, title: str) -> go.Figure:
    """The share of each layer's weights (or outputs) in each bin.

    ``which`` is ``"weights"`` (one line per layer, on one axis: weights share a
    scale) or ``"activations"``: one panel per layer, each on its own value axis
    (on the logits' -20..20 a tanh layer's -1..1 was a spike), on a log y axis
    (a ReLU layer's zeros would flatten everything else).
    """
    shown = [
        (layer.name, hist)
        for layer in layers
        if (hist := layer.weights if which == "weights" else layer.activations) is not None and hist.total
    ]
    panels = which != "weights" and len(shown) > 1
    # Room between panels for the ticks of one and the title of the next: PANEL_GAP px of the plot.
    plot_px = PANEL_HEIGHT * len(shown)
    fig = make_subplots(rows=len(shown), cols=1, subplot_titles=[html.escape(n) for n, _ in shown],
                        vertical_spacing=PANEL_GAP / plot_px) if panels else go.Figure()  # fmt: skip
    for k, (name, hist) in enumerate(shown):
        edges = np.asarray(hist.edges)
        share = np.asarray(hist.counts, dtype=np.float64) / hist.total
        trace = go.Scatter(
            x=(edges[:-1] + edges[1:]) / 2, y=share, mode="lines", line={"shape": "hvh", "width": 1.5},
            name=html.escape(name),
            hovertemplate="%{x:.3g}: %{y:.2%}<extra>" + html.escape(name) + "</extra>",
        )  # fmt: skip
        fig.add_trace(trace, **({"row": k + 1, "col": 1} if panels else {}))
    y_type = "linear" if which == "weights" else "log"
    fig.update_yaxes(tickformat="~%", type=y_type)
    if not panels:
        # the chart's title names the values; an x title would sit under the legend
        return layout(fig, title, yaxis={"title": "share of values", "tickformat": "~%", "type": y_type})
    fig.update_annotations(font={"size": 12})
    fig.update_yaxes(nticks=3)
    layout(fig, title, showlegend=False)
    top = TITLE_MARGIN + 24  # the chart's title, then the first panel's
    fig.update_layout(height=plot_px + top + 10, margin={"t": top}, title_pad_b=32)
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
    return layout(
        fig,
        "Dead or saturated units per layer",
        yaxis={"title": "share of the layer's units", "tickformat": ".0%", "rangemode": "tozero"},
        xaxis={"type": "category"},
        barmode="group",
    )


# -- what the run recorded while it trained (mnist_core.layerstats) -------------------------------


@st.cache_data(max_entries=64, show_spinner=False)
def recorded(run_id: str, runs_dir: str, stamp: str) -> layerstats.Recorded | str | None:
    """The run's per-layer statistics over its training (``stamp`` is only the cache key)."""
    try:
        return layerstats.run_recorded(run_id, runs_dir)
    except MnistLabError as exc:
        return str(exc)


def gradients_figure(per_run: Mapping[str, layerstats.Recorded]) -> go.Figure:
    """Per run and weight layer, the median gradient norm recorded while it trained (log scale)."""
    fig = go.Figure()
    for name, rec in per_run.items():
        x = [f"layer {k}" if k < len(rec.layers) else "output" for k in range(1, len(rec.layers) + 1)]
        y = [layer.grad_norm for layer in rec.layers]
        fig.add_trace(run_trace(go.Bar, name, x, y, [layer.name for layer in rec.layers], ".3g"))
    return layout(
        fig,
        "Gradient norm per layer while training (median)",
        yaxis={"title": "weight gradient L2 norm", "type": "log"},
        xaxis={"type": "category"},
        barmode="group",
    )


def _no_stats(label: str, reason: str | None) -> str:
    """Why a run shown has no training statistics: none recorded, or its history unreadable (``reason``)."""
    return (
        NO_STATS.format(label=label)
        if reason is None
        else f"{label}: its training history cannot be read: {reason}"
    )


def training_stats_panel(
    runs_shown: Mapping[str, str], runs_dir: str, stamps: Mapping[str, object], key: str
) -> None:
    """The Inside view's "recorded while training" part, or, per run, that its history has none."""
    usable = per_run(
        runs_shown,
        lambda run_id: recorded(run_id, runs_dir, str(stamps.get(run_id, 0))),
        _no_stats,
    )
    if not usable:
        return
    st.plotly_chart(gradients_figure(usable), key=key)
    points = ", ".join(f"{label} {r.points}" for label, r in usable.items())
    st.caption(
        "The L2 norm of each layer's weight gradient on the probed training steps, median over the run "
        f"(step points with statistics: {points}). Gradients that shrink towards the first layers "
        "(a deep sigmoid network) leave those layers barely learning."
    )
