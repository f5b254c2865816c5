"""Plotly figures for the pages: learning curves and the confusion matrix.

Not a page (app.py lists the pages). Figures only: the numbers come ready from
``mnist_core.curves`` and run summaries; nothing here computes a metric.

A live chart is rebuilt twice a second in the process that trains, so the
learning-curve figures are plain dicts of numpy columns: ``st.plotly_chart``
validates a dict once, where building a ``go.Figure`` first validates every
property twice (measured: 3.9 ms instead of 7.7 ms per figure).

A chart whose figure changed is a new element to Streamlit (its id includes
the figure, streamlit/streamlit#5107), so the browser draws it afresh and a
user's zoom on a live chart lasts until the next redraw; Plotly's
``uirevision`` cannot keep it. The curves under a finished run keep theirs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from mnist_core.curves import Curves

HEIGHT = 340
TRAIN_COLOR = "#1f77b4"
VAL_COLOR = "#ff7f0e"
# Pixels above the plot: the modebar (Plotly's toolbar, top right, ~30 px) on the first row, the
# title on its own row under it, so neither covers the other however narrow the chart.
TITLE_MARGIN = 64
# Under the plot, below the x axis's title: beside a title or over the plot, a legend covers them.
# At the chart's bottom edge (the container's, not the plot's): placed at a share of the plot's
# height, a legend of many rows shrank the plot and climbed onto the x axis's title.
LEGEND_BELOW = {
    "orientation": "h", "yref": "container", "yanchor": "bottom", "y": 0, "xanchor": "left", "x": 0,
}  # fmt: skip
LOG_DECADES_ONLY = 3  # a log axis spanning this many decades or more gets a tick per decade, else 1-2-5


def title(text: str, subtitle: str | None = None) -> dict[str, Any]:
    """A chart title just above the plot area, left-aligned, clear of the modebar (:data:`TITLE_MARGIN`)."""
    out: dict[str, Any] = {
        "text": text, "x": 0, "xanchor": "left", "xref": "paper",
        "y": 1, "yanchor": "bottom", "yref": "paper", "pad": {"b": 8}, "font": {"size": 15},
    }  # fmt: skip
    if subtitle:
        out["subtitle"] = {"text": subtitle, "font": {"size": 12, "color": "#666"}}
    return out


def log_ticks(values: Iterable[float]) -> tuple[list[float], list[str]]:
    """Ticks and their labels for a log axis over the positive ``values``: ``10, 100, 1k`` or ``1k, 2k, 5k``.

    Plotly's own log ticks label the minor ones by their first digit
    ("2 3 4 ... 10 2 3 4"), which reads as nonsense. The ticks returned span
    the data (one at or below the smallest value, one at or above the largest).
    """
    positive = [float(v) for v in values if v is not None and math.isfinite(v) and v > 0]
    if not positive:
        return [], []
    lo, hi = min(positive), max(positive)
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    last = max(last, first + 1)
    mantissas = (1,) if last - first >= LOG_DECADES_ONLY else (1, 2, 5)
    ticks = [m * 10.0**e for e in range(first, last + 1) for m in mantissas]
    below = max(t for t in ticks if t <= lo * (1 + 1e-9))
    above = min(t for t in ticks if t >= hi * (1 - 1e-9))
    kept = [t for t in ticks if below <= t <= above]
    return kept, [si_number(t) for t in kept]


def si_number(value: float) -> str:
    """``1000`` -> ``1k``, ``2e6`` -> ``2M``, ``0.005`` -> ``0.005``: short labels for axis ticks."""
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def log_axis(values: Iterable[float]) -> dict[str, Any]:
    """Plotly settings of a log axis over ``values`` whose tick labels read as numbers (:func:`log_ticks`)."""
    vals, text = log_ticks(values)
    if not vals:
        return {"type": "log"}
    lo, hi = math.log10(vals[0]), math.log10(vals[-1])
    pad = max(0.04 * (hi - lo), 0.03)
    span = [lo - pad, hi + pad]
    return {"type": "log", "tickmode": "array", "tickvals": vals, "ticktext": text, "range": span}


def _layout(text: str, y_title: str, y_format: str = "") -> dict[str, Any]:
    return {
        "title": title(text),
        "height": HEIGHT,
        "margin": {"l": 10, "r": 10, "t": TITLE_MARGIN, "b": 10},
        "legend": dict(LEGEND_BELOW),
        "xaxis": {"title": {"text": "epoch"}},
        "yaxis": {"title": {"text": y_title}, "tickformat": y_format},
    }


def _curve(x: np.ndarray, y: np.ndarray, name: str, color: str, markers: bool = False) -> dict[str, Any]:
    return {
        "type": "scatter",
        "x": x,
        "y": y,
        "name": name,
        "mode": "lines+markers" if markers else "lines",
        "line": {"color": color, "width": 2 if markers else 1.5},
        "marker": {"size": 7},
    }


def loss_figure(curves: Curves) -> dict[str, Any]:
    """Running training loss per step point, validation loss per epoch."""
    return {
        "data": [
            _curve(curves.step_x, curves.step_loss, "train (running)", TRAIN_COLOR),
            _curve(curves.epoch_x, curves.val_loss, "validation", VAL_COLOR, markers=True),
        ],
        "layout": _layout("Loss", "cross-entropy"),
    }


def accuracy_figure(curves: Curves) -> dict[str, Any]:
    """Running training accuracy per step point, validation accuracy per epoch, on a 0-100% axis.

    The axis is fixed: Plotly's autorange around one or two points went up to 150%.
    """
    layout = _layout("Accuracy", "accuracy", ".0%")
    layout["yaxis"]["range"] = [0, 1]
    return {
        "data": [
            _curve(curves.step_x, curves.step_acc, "train (running)", TRAIN_COLOR),
            _curve(curves.epoch_x, curves.val_acc, "validation", VAL_COLOR, markers=True),
        ],
        "layout": layout,
    }


def confusion_figure(
    matrix: Sequence[Sequence[int]],
    class_names: Sequence[str],
    heading: str = "Confusion matrix (test set)",
    height: int = 440,
) -> go.Figure:
    """Counts of true label (rows) against prediction (columns); the diagonal is right.

    Every cell shows its count; only the mistakes are coloured (red), since at
    97% accuracy the diagonal would swamp the scale and leave every mistake
    white. ``heading`` is Plotly text: escape a run's name before passing it.
    """
    counts = np.asarray(matrix, dtype=np.int64)
    names = list(class_names)
    off = counts.copy()
    np.fill_diagonal(off, 0)
    fig = go.Figure(
        go.Heatmap(
            z=off,
            x=names,
            y=names,
            text=counts,
            texttemplate="%{text}",
            colorscale="Reds",
            showscale=False,
            hovertemplate="true %{y}, predicted %{x}: %{text}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title(heading),
        height=height,
        margin={"l": 10, "r": 10, "t": TITLE_MARGIN, "b": 10},
        xaxis={"title": "predicted", "type": "category", "side": "bottom"},
        yaxis={"title": "true", "type": "category", "autorange": "reversed"},
    )
    return fig
