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

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from mnist_core.curves import Curves

HEIGHT = 320
TRAIN_COLOR = "#1f77b4"
VAL_COLOR = "#ff7f0e"


def _layout(title: str, y_title: str, y_format: str = "") -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0, "font": {"size": 15}},
        "height": HEIGHT,
        "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1},
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
    """Running training accuracy per step point, validation accuracy per epoch."""
    return {
        "data": [
            _curve(curves.step_x, curves.step_acc, "train (running)", TRAIN_COLOR),
            _curve(curves.epoch_x, curves.val_acc, "validation", VAL_COLOR, markers=True),
        ],
        "layout": _layout("Accuracy", "accuracy", ".0%"),
    }


def confusion_figure(confusion: Sequence[Sequence[int]], class_names: Sequence[str]) -> go.Figure:
    """Counts of true label (rows) against prediction (columns), the diagonal being right."""
    counts = np.asarray(confusion, dtype=np.int64)
    names = list(class_names)
    fig = go.Figure(
        go.Heatmap(
            z=counts,
            x=names,
            y=names,
            colorscale="Blues",
            text=counts,
            texttemplate="%{text}",
            hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>",
            showscale=False,
        )
    )
    fig.update_layout(
        title={"text": "Confusion matrix (test set)", "x": 0, "font": {"size": 15}},
        height=420,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis={"title": "predicted", "type": "category", "side": "bottom"},
        yaxis={"title": "true", "type": "category", "autorange": "reversed"},
    )
    return fig
