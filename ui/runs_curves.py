"""The Runs page's learning curves: loss and accuracy of each picked run, or of hundreds at once.

Not a page (app.py lists the pages). The curve columns come ready from
``mnist_core.curves.curve_columns``; this module only draws them, in the
colours and height of the other Runs charts (``ui.runs_charts``).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mnist_core.curves import CURVE_AXES, CurveColumns
from ui.charts import LEGEND_BELOW, TITLE_MARGIN
from ui.hover import hover_text
from ui.runs_charts import HEIGHT, color

# Above this many runs, curves are drawn as one trace per series (with gaps
# between runs) instead of one per run: a legend of hundreds helps nobody and
# hundreds of traces make the browser crawl. Those runs then share a budget of
# points per panel, so 500 runs draw about as fast as 50.
MAX_CURVE_TRACES = 24
MERGED_POINTS = 10_000
MIN_POINTS_PER_RUN = 12
LEGEND_ROW_PX = 14  # chart height added per legend entry (about two entries a row on a laptop)


def curves_figure(
    curves: Mapping[str, CurveColumns],
    rows: Mapping[str, Mapping[str, Any]],
    x: str = "epoch",
    groups: Mapping[str, tuple[str, str]] | None = None,
    log_x: bool = False,
) -> go.Figure:
    """Loss (left) and accuracy (right) of each run against ``x``: lines for training, dashes for validation.

    ``x`` is a key of ``curves.CURVE_AXES``. One legend entry per run, or per
    seed group: ``groups`` maps a run id to its group's (key, label), and the
    runs of a group share a colour and one legend entry; clicking it hides the
    run (the group) in both panels. ``log_x``: a log x axis (steps or images of
    a batch-1 run beside a batch-256 one: 50,000 against 211, which is a sliver on a linear axis).
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"), horizontal_spacing=0.08)
    colours: dict[str, str] = {}
    if len(curves) > MAX_CURVE_TRACES:
        _curves_merged(fig, curves, rows, x)
    else:
        for run_id, cols in curves.items():
            key, name = (groups or {}).get(run_id, (run_id, str(rows[run_id]["name"])))
            first = key not in colours
            colours.setdefault(key, color(len(colours)))
            _run_curves(fig, (key, name, first), cols, rows[run_id], x, colours[key])
    fig.update_yaxes(title_text="cross-entropy", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", tickformat=".1%", row=1, col=2)
    fig.update_xaxes(title_text=CURVE_AXES[x], type="log" if log_x else "linear")
    fig.update_layout(
        # The legend lies under the plot, in the chart's height: room for it, so many runs keep the plot.
        height=HEIGHT + 80 + LEGEND_ROW_PX * len(colours),
        # The panels' titles get their own row under the modebar; the legend goes under the plot.
        margin={"l": 10, "r": 10, "t": TITLE_MARGIN, "b": 10},
        hoverlabel={"align": "left"},
        legend={
            **LEGEND_BELOW,
            "title": {"text": "lines: training, dashed: validation", "side": "top"},
            "font": {"size": 11},
        },
    )
    return fig


def _run_curves(
    fig: go.Figure,
    legend: tuple[str, str, bool],
    cols: CurveColumns,
    row: Mapping[str, Any],
    x: str,
    colour: str,
) -> None:
    """One run's four lines; ``legend`` is (legend group, its label, whether this run shows the entry)."""
    group, label, first = legend
    hover = hover_text(row)
    for col, metric in ((1, "loss"), (2, "accuracy")):
        for series, dash in (("train", "solid"), ("val", "dash")):
            data = getattr(cols, series)
            if not len(data[metric]):
                continue
            what = "training" if series == "train" else "validation"
            fig.add_trace(
                go.Scatter(
                    x=data[x],
                    y=data[metric],
                    name=html.escape(label),
                    legendgroup=group,
                    showlegend=first,
                    mode="lines" if series == "train" else "lines+markers",
                    line={"color": colour, "dash": dash, "width": 1.5},
                    marker={"size": 6},
                    hovertext=f"{hover}<br>{what}",
                    hovertemplate=f"%{{hovertext}}<br>{x} %{{x:.4g}}, {metric} %{{y:.4g}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
            first = False


def _curves_merged(
    fig: go.Figure, curves: Mapping[str, CurveColumns], rows: Mapping[str, Mapping[str, Any]], x: str
) -> None:
    """Many runs: one trace per series and panel, runs separated by gaps.

    Only the validation points (one per epoch) carry a hover with the run's
    name: a hover text on every training point doubled the time the browser
    took to draw 500 runs. Plain SVG, not WebGL: WebGL without a GPU (software
    rendering) took seconds for the same lines.
    """
    per_run = max(MIN_POINTS_PER_RUN, MERGED_POINTS // max(len(curves), 1))
    thinned = {run_id: cols.thinned(per_run) for run_id, cols in curves.items()}
    for col, metric in ((1, "loss"), (2, "accuracy")):
        for series, name, dash, colour in (
            ("train", "training", "solid", color(0)),
            ("val", "validation", "dash", color(1)),
        ):
            xs: list[np.ndarray] = []
            ys: list[np.ndarray] = []
            texts: list[str] = []
            for run_id, cols in thinned.items():
                data = getattr(cols, series)
                n = len(data[metric])
                if n:
                    xs += [data[x], np.array([np.nan])]
                    ys += [data[metric], np.array([np.nan])]
                    texts += [html.escape(str(rows[run_id]["name"]))] * n + [""]
            if not xs:
                continue
            hover: dict[str, Any] = {"hoverinfo": "skip"}
            if series == "val":
                hover = {
                    "hovertext": texts,
                    "hovertemplate": f"%{{hovertext}}<br>{metric} %{{y:.4g}}<extra></extra>",
                }
            fig.add_trace(
                go.Scatter(
                    x=np.concatenate(xs),
                    y=np.concatenate(ys),
                    legendgroup=series,
                    name=f"{name} ({len(curves)} runs)",
                    showlegend=col == 1,
                    mode="lines" if series == "train" else "lines+markers",
                    line={"color": colour, "dash": dash, "width": 1},
                    marker={"size": 4},
                    opacity=0.6,
                    **hover,
                ),
                row=1,
                col=col,
            )
