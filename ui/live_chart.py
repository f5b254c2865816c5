"""Live charts that a redraw updates in place: the user's zoom survives, the DOM node stays.

Not a page. :func:`live_chart` is the one function pages call; no page knows
which library draws. ``st.plotly_chart`` cannot do this in Streamlit 1.67 (a
changed figure is a new element: zoom lost, everything redrawn, see
``ui/charts.py``), so a live chart is a custom component (components v2) whose
identity is its key: on every rerun its JS receives the new columns on the same
DOM node and hands them to uPlot (vendored in ``live_chart_assets/``, no CDN),
which keeps the scales a user zoomed to; a double-click resets them.

The uPlot source travels inline with the component (components v2 serves asset
files only for installed packages), so every redraw of one element sends its
~55 kB of JS text too: the panels of a view share ONE element to send it once.
The browser caches the module by a hash of that text and runs it once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from mnist_core.curves import Curves, Point, learning_curves
from ui.charts import TRAIN_COLOR, VAL_COLOR

ASSETS = Path(__file__).with_name("live_chart_assets")
COMPONENT_NAME = "mnist_lab.live_chart"
HEIGHT = 300


@dataclass(frozen=True)
class LineSeries:
    """One curve: ``y`` at ``x``; NaN where missing. ``markers`` draws a dot at each point."""

    name: str
    x: Sequence[float] | np.ndarray
    y: Sequence[float] | np.ndarray
    color: str
    markers: bool = False


@dataclass(frozen=True)
class Panel:
    """One chart of a live view. ``y_range`` fixes the y axis (e.g. ``(0, 1)``); ``percent`` labels it in %.

    ``percent`` with ``y_range=(0, 1)`` keeps an accuracy axis within 0-100%.
    """

    title: str
    series: Sequence[LineSeries]
    y_label: str = ""
    x_label: str = "epoch"
    y_range: tuple[float, float] | None = None
    percent: bool = False


@cache
def _component() -> Any:
    def text(name: str) -> str:
        return (ASSETS / name).read_text(encoding="utf-8")

    js = text("uPlot.iife.min.js") + "\n" + text("live_chart.js")
    css = text("uPlot.min.css") + "\n" + text("live_chart.css")
    return st.components.v2.component(COMPONENT_NAME, js=js, css=css, isolate_styles=False)


DECIMALS = 6  # sent per value: 0.123457, not 0.12345678901234 (halves the JSON of a long run)


def _finite_or_none(values: np.ndarray) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in np.round(values, DECIMALS).tolist()]


def _aligned(series: Sequence[LineSeries]) -> tuple[list[float], list[list[float | None]]]:
    """One shared x column for uPlot: the sorted union of the series' x, None where a series has no point."""
    xs = [np.asarray(s.x, dtype=np.float64) for s in series]
    union = np.unique(np.concatenate(xs)) if xs else np.array([], dtype=np.float64)
    union = union[np.isfinite(union)]
    columns = []
    for s, x in zip(series, xs, strict=True):
        y = np.asarray(s.y, dtype=np.float64)
        col = np.full(len(union), np.nan)
        ok = np.isfinite(x)
        col[np.searchsorted(union, x[ok])] = y[ok]
        columns.append(_finite_or_none(col))
    return np.round(union, DECIMALS).tolist(), columns


def panel_data(panel: Panel) -> dict[str, Any]:
    """The JSON the JS glue draws one panel from (columns aligned on one x, NaN as null)."""
    x, columns = _aligned(panel.series)
    return {
        "title": panel.title,
        "x_label": panel.x_label,
        "y_label": panel.y_label,
        "y_range": list(panel.y_range) if panel.y_range else None,
        "percent": panel.percent,
        "x": x,
        "series": [
            {"name": s.name, "color": s.color, "markers": s.markers, "y": col}
            for s, col in zip(panel.series, columns, strict=True)
        ],
    }


def live_chart(key: str, panels: Sequence[Panel], height: int = HEIGHT) -> None:
    """Draw ``panels`` side by side as one live element.

    A later call with the same ``key`` updates that element in place: same DOM
    node, the user's zoom kept.
    """
    data = {"height": int(height), "panels": [panel_data(p) for p in panels]}
    _component()(key=key, data=data, height="content")


def learning_curve_panels(curves: Curves) -> list[Panel]:
    """Loss and accuracy (0-100%) of a run: running training per step point, validation per epoch."""
    return [
        Panel(
            "Loss",
            [
                LineSeries("train (running)", curves.step_x, curves.step_loss, TRAIN_COLOR),
                LineSeries("validation", curves.epoch_x, curves.val_loss, VAL_COLOR, markers=True),
            ],
            y_label="cross-entropy",
        ),
        Panel(
            "Accuracy",
            [
                LineSeries("train (running)", curves.step_x, curves.step_acc, TRAIN_COLOR),
                LineSeries("validation", curves.epoch_x, curves.val_acc, VAL_COLOR, markers=True),
            ],
            y_label="accuracy",
            y_range=(0.0, 1.0),
            percent=True,
        ),
    ]


def live_learning_curves(key: str, points: Sequence[Point], height: int = HEIGHT) -> bool:
    """The live loss and accuracy chart of a run's progress ``points``; False (nothing drawn) before any."""
    data = learning_curves(points)
    if data.empty:
        return False
    live_chart(key, learning_curve_panels(data), height=height)
    return True
