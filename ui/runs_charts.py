"""Plotly figures of the Runs page: accuracy against cost, parallel coordinates, grids, bars, confusion.

Not a page (app.py lists the pages); the learning curves are in ``ui.runs_curves``.
Figures only: rows, fronts and grids come ready from ``mnist_core.compare``, seed groups from
``mnist_core.seeds``; nothing here computes a metric. Every point's hover shows
its run's configuration (``ui.hover``). A row that stands for several seeds
(``n_seeds`` > 1) is one point with an error bar of one standard deviation.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from mnist_core import compare, curves, scaling
from mnist_core.compare import Grid
from mnist_core.scaling import Fit
from mnist_core.seeds import std_key
from ui import charts
from ui.charts import LEGEND_BELOW, TITLE_MARGIN, log_axis, si_number
from ui.charts import title as chart_title
from ui.hover import hover_text

PALETTE = tuple(qualitative.Plotly) + tuple(qualitative.Dark24)[:14]  # 24 distinct colours
HEIGHT = 380
# Categorical colouring up to this many distinct values, a colour scale above.
MAX_CATEGORIES = 12
# The Runs page's chart views, in menu order.
VIEWS = (
    "Learning curves",
    "Accuracy vs cost",
    "Parallel coordinates",
    "Depth x width",
    "Bars",
    "Confusion",
    "Mistakes",
    "Inside",
)
HOVER = "%{hovertext}<extra></extra>"
FIT_COLOURS = ("#555555", "#8c564b", "#17becf")
# Settings on a log2 axis in the parallel coordinates (they come in powers of two).
LOG2_SETTINGS = frozenset({"width", "batch_size"})


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _layout(
    fig: go.Figure, text: str, x_title: str, y_title: str, height: int = HEIGHT, subtitle: str | None = None
) -> go.Figure:
    fig.update_layout(
        title=chart_title(text, subtitle),  # on its own row, under the modebar
        height=height,
        margin={"l": 10, "r": 10, "t": TITLE_MARGIN + (18 if subtitle else 0), "b": 10},
        xaxis_title=x_title,
        yaxis_title=y_title,
        # Under the plot: beside a long title on a narrow screen, the legend would cover it.
        legend=dict(LEGEND_BELOW),
        hoverlabel={"align": "left"},
    )
    return fig


# -- accuracy against a cost -------------------------------------------------------


def cost_figure(
    rows: Sequence[Mapping[str, Any]],
    cost: str,
    front: Sequence[int],
    color_by: str = "depth",
    log_x: bool = True,
    accuracy: str = "test_accuracy",
    fits: Sequence[Fit] = (),
) -> go.Figure:
    """Each run at (cost, accuracy), coloured by a setting; the Pareto front as a staircase.

    ``front`` indexes ``rows`` (``compare.pareto_front``), cheapest first.
    ``fits`` (``mnist_core.scaling``) are drawn as a line of the accuracy the
    power law predicts, in a band of its 95% interval, a little past the runs.
    """
    fig = go.Figure()
    for k, fit in enumerate(fits if accuracy == "test_accuracy" else ()):
        for trace in fit_traces(fit, FIT_COLOURS[k % len(FIT_COLOURS)]):
            fig.add_trace(trace)
    points = [(i, r) for i, r in enumerate(rows) if r.get(cost) is not None and r.get(accuracy) is not None]
    groups = compare.colour_groups([r for _, r in points], color_by)
    if len(groups) <= MAX_CATEGORIES:
        for k, (name, members) in enumerate(groups.items()):
            group = [points[i][1] for i in members]
            fig.add_trace(_scatter(group, cost, accuracy, name, {"color": color(k)}))
    else:
        marker = {
            "color": [r.get(color_by) for _, r in points],
            "colorscale": "Viridis",
            "showscale": True,
            "colorbar": colorbar(color_by),
        }
        fig.add_trace(_scatter([r for _, r in points], cost, accuracy, "runs", marker))
    if front:
        best = [rows[i] for i in front]
        fig.add_trace(
            go.Scatter(
                x=[r[cost] for r in best],
                y=[r[accuracy] for r in best],
                name="Pareto front",
                mode="lines+markers",
                line={"shape": "hv", "color": "#444", "width": 1.5},
                marker={"symbol": "circle-open", "size": 14, "color": "#444", "line": {"width": 2}},
                hovertext=[hover_text(r) for r in best],
                hovertemplate=HOVER,
            )
        )
    if log_x:
        fig.update_xaxes(**log_axis(r[cost] for _, r in points))
    else:
        fig.update_xaxes(type="linear")
    fig.update_yaxes(tickformat=".1%")
    text = f"{compare.label(accuracy)} against {compare.label(cost).lower()}"
    return _layout(
        fig, text, compare.label(cost), compare.label(accuracy), height=480,
        subtitle="up and to the left is better",
    )  # fmt: skip


def fit_traces(fit: Fit, colour: str) -> list[go.Scatter]:
    """The fitted accuracy (a line) and its 95% interval (a band), from half the smallest size to twice
    the largest."""
    lo, hi = fit.x_range
    xs = np.geomspace(lo / 2, hi * 2, 60)
    preds = fit.curve(xs)
    name = f"{scaling.family_label(fit.family)} fit ({fit.dataset}, {fit.n} runs)"
    law = f"error = {fit.a:.3g} · N<sup>-{fit.b:.2f}</sup> + {fit.c:.2%}"
    traces = []
    if all(p.low is not None for p in preds):
        band_x = [*xs, *xs[::-1]]
        band_y = [1 - p.high for p in preds] + [1 - p.low for p in preds][::-1]
        traces.append(go.Scatter(
            x=band_x, y=band_y, fill="toself", fillcolor=colour, opacity=0.15, line={"width": 0},
            name="95% interval", legendgroup=name, hoverinfo="skip",
        ))  # fmt: skip
    traces.append(go.Scatter(
        x=xs, y=[p.accuracy for p in preds], mode="lines", name=name, legendgroup=name,
        line={"color": colour, "dash": "dot", "width": 2},
        hovertemplate=f"{html.escape(name)}<br>{law}<br>%{{x:.3s}}: %{{y:.2%}}<extra></extra>",
    ))  # fmt: skip
    return traces


def _scatter(
    rows: Sequence[Mapping[str, Any]], x: str, y: str, name: str, marker: dict[str, Any]
) -> go.Scatter:
    return go.Scatter(
        x=[r[x] for r in rows],
        y=[r[y] for r in rows],
        name=name,
        mode="markers",
        marker={"size": 9, "opacity": 0.85, **marker},
        hovertext=[hover_text(r) for r in rows],
        hovertemplate=HOVER,
        **error_bars(rows, x, "error_x"),
        **error_bars(rows, y, "error_y"),
    )


def error_bars(rows: Sequence[Mapping[str, Any]], key: str, axis: str) -> dict[str, Any]:
    """``{axis: ...}``: one standard deviation across seeds for grouped rows; nothing if none has one."""
    stds = [r.get(std_key(key)) for r in rows]
    if all(v is None or v == 0 for v in stds):
        return {}
    array = [0.0 if v is None else float(v) for v in stds]
    return {axis: {"type": "data", "array": array, "visible": True, "thickness": 1.5, "width": 4}}


# -- parallel coordinates --------------------------------------------------------------


def parallel_figure(
    rows: Sequence[Mapping[str, Any]], settings: Sequence[str], metrics: Sequence[str]
) -> go.Figure:
    """One line per run from its settings to its metrics, coloured by the last metric.

    Runs missing any of the chosen values are left out (a line needs every axis).
    Widths and batch sizes sit on a log2 axis, the learning rate on a log10 one.
    """
    keys = [*settings, *metrics]
    kept = [r for r in rows if all(curves.number(r.get(k)) is not None for k in keys)]
    dims = [_dimension(k, [float(r[k]) for r in kept]) for k in keys]
    colour = [float(r[metrics[-1]]) for r in kept] if metrics else None
    line = (
        {
            "color": colour,
            "colorscale": "Viridis",
            "showscale": True,
            "colorbar": colorbar(metrics[-1]),
        }
        if colour
        else {}
    )
    # Slanted axis labels: level, "Learning rate" and "Training time (s) (log)" ran into each other
    # where the axes stand close (a phone: seven axes in 200 px).
    fig = go.Figure(go.Parcoords(dimensions=dims, line=line, labelangle=-30, labelside="top"))
    fig.update_layout(
        title={"text": f"From configuration to result ({len(kept)} runs)", "x": 0, "font": {"size": 15}},
        height=HEIGHT + 110,
        margin={"l": 60, "r": 60, "t": 140, "b": 20},
    )
    return fig


def _log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks covering [lo, hi] (at least the two ends)."""
    ticks = [
        m * 10.0**e
        for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
        for m in (1, 2, 5)
    ]
    inside = [t for t in ticks if lo <= t <= hi]
    return inside if len(inside) >= 2 else [lo, hi]


def _dimension(key: str, values: list[float]) -> dict[str, Any]:
    dim: dict[str, Any] = {"label": compare.label(key)}
    distinct = sorted(set(values))
    if key in LOG2_SETTINGS and all(v > 0 for v in values):
        dim["values"] = [math.log2(v) for v in values]
        dim["tickvals"] = [math.log2(v) for v in distinct]
        dim["ticktext"] = [f"{v:g}" for v in distinct]
    elif key == "lr" and all(v > 0 for v in values):
        dim["values"] = [math.log10(v) for v in values]
        dim["tickvals"] = [math.log10(v) for v in distinct]
        dim["ticktext"] = [f"{v:g}" for v in distinct]
    elif key in compare.COSTS and values and all(v > 0 for v in values):
        ticks = _log_ticks(min(values), max(values))
        dim["label"] += " (log)"
        dim["values"] = [math.log10(v) for v in values]
        dim["tickvals"] = [math.log10(t) for t in ticks]
        dim["ticktext"] = [si_number(t) for t in ticks]  # "10k", not "1e+04"
    else:
        dim["values"] = values
        if len(distinct) <= MAX_CATEGORIES and all(float(v).is_integer() for v in distinct):
            dim["tickvals"] = distinct
            dim["ticktext"] = [f"{v:g}" for v in distinct]
    if key in compare.SHARES:
        dim["tickformat"] = ".1%"
    return dim


def colorbar(key: str) -> dict[str, Any]:
    """A colour bar titled with ``key``'s label; a share in percent, as the cells and axes show it."""
    return {"title": {"text": compare.label(key)}, **({"tickformat": ".1%"} if key in compare.SHARES else {})}


# -- depth x width ---------------------------------------------------------------------


def grid_figure(g: Grid, value: str, agg: str, x: str = "depth", y: str = "width") -> go.Figure:
    """A heatmap of ``value`` per (x, y) cell; text shows the value, hover the runs behind it."""
    percent = value in compare.SHARES
    text = [[_cell_text(v, percent) for v in row] for row in g.z]
    where = f"{compare.label(x)} {{}}, {compare.label(y)} {{}}"
    hover = [
        [
            f"{where.format(vx, vy)}<br>{agg}: {_cell_text(v, percent)}<br>{n} run(s)"
            for vx, v, n in zip(g.xs, zrow, nrow, strict=True)
        ]
        for vy, zrow, nrow in zip(g.ys, g.z, g.counts, strict=True)
    ]
    reverse = value not in compare.HIGHER_IS_BETTER  # dark is always "better"
    fig = go.Figure(
        go.Heatmap(
            z=[[np.nan if v is None else v for v in row] for row in g.z],
            x=[str(v) for v in g.xs],
            y=[str(v) for v in g.ys],
            text=text,
            texttemplate="%{text}",
            hovertext=hover,
            hovertemplate=HOVER,
            colorscale="Viridis",
            reversescale=reverse,
            colorbar=colorbar(value),
        )
    )
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    return _layout(fig, f"{compare.label(value)} ({agg} per cell)", compare.label(x), compare.label(y))


def _cell_text(v: float | None, percent: bool) -> str:
    if v is None:
        return ""
    return f"{v:.2%}" if percent else f"{v:.3g}"


# -- bars -------------------------------------------------------------------------------


def bars_figure(rows: Sequence[Mapping[str, Any]], metric: str) -> go.Figure:
    """One bar per run, best first; runs without the metric are left out."""
    kept = [r for r in rows if r.get(metric) is not None]
    kept.sort(key=lambda r: r[metric], reverse=metric in compare.HIGHER_IS_BETTER)
    fig = go.Figure(
        go.Bar(
            x=[r["id"] for r in kept],
            y=[r[metric] for r in kept],
            marker={"color": [color(i) for i in range(len(kept))] if len(kept) <= len(PALETTE) else color(0)},
            hovertext=[hover_text(r) for r in kept],
            hovertemplate=HOVER,
            **error_bars(kept, metric, "error_y"),
        )
    )
    fig.update_xaxes(
        tickmode="array",
        tickvals=[r["id"] for r in kept],
        ticktext=[_short(r["name"]) for r in kept],
        showticklabels=len(kept) <= 60,
    )
    title, subtitle = f"{compare.label(metric)} per run", None
    if metric in compare.SHARES:
        fig.update_yaxes(tickformat=".1%")
        values = [float(r[metric]) for r in kept]
        if values:  # accuracies differ by tenths of a percent: zoom in, and say so
            lo, hi = min(values), max(values)
            pad = max((hi - lo) * 0.5, 0.005)
            fig.update_yaxes(range=[max(0.0, lo - pad), min(1.0, hi + pad / 4) if hi < 1 else 1.0])
            subtitle = "the axis is zoomed in, not from zero"  # under the title: beside it, a phone cut it
    if len(kept) <= 30:
        fig.update_traces(
            texttemplate="%{y:.3s}" if metric not in compare.SHARES else "%{y:.2%}",
            textposition="outside",
            cliponaxis=False,
        )
    return _layout(fig, title, "run", compare.label(metric), subtitle=subtitle)


def _short(name: str, n: int = 28) -> str:
    """A run's name for a tick label: cut to ``n`` characters and HTML-escaped (shown as typed)."""
    return html.escape(name if len(name) <= n else name[: n - 1] + "…")


# -- confusion ---------------------------------------------------------------------------


def confusion_figure(matrix: Sequence[Sequence[int]], class_names: Sequence[str], title: str) -> go.Figure:
    """:func:`ui.charts.confusion_figure` under a run's name (cut short and shown as typed)."""
    return charts.confusion_figure(matrix, class_names, _short(title, 40), height=380)
