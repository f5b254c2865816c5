"""A sweep's results: lines and heatmaps against each swept value, and the seed noise.

Not a page: the Sweeps page and the Runs page both call :func:`render`. The
numbers (means over seeds, spreads, verdicts against the noise) come from
``mnist_core.sweeps``; this module only draws them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from mnist_core import compare, sweeps
from mnist_core.runs import RunInfo
from ui.runs_charts import color

METRICS = (
    "test_accuracy", "train_time_s", "time_per_epoch_s", "parameters", "macs", "latency_p50_ms", "co2_kg",
)
LOG_AXES = ("width", "batch_size", "lr")
HEIGHT = 360
STUDY_HIDDEN = ("run_id", "run_ids", "run_name", "experiment", "beyond_noise")  # links and verdicts say them


def study_columns() -> dict[str, Any]:
    """Labels of every column of ``study.table`` shown on the Sweeps page (none shows its raw key)."""
    return {
        "model": st.column_config.TextColumn("Model", pinned=True),
        "batch_size": st.column_config.NumberColumn("Batch"),
        "time_kind": st.column_config.TextColumn("Time is"),
        "published_accuracy_pct": st.column_config.NumberColumn("Acc % (blog)", format="%.1f"),
        "ours_accuracy_pct": st.column_config.NumberColumn("Acc % (ours)", format="%.2f",
                                                           help="the mean over the row's seeds"),
        "ours_seeds": st.column_config.NumberColumn(
            "Seeds", help="our runs of this row, one per seed (Seeds per row, above; `--repeats` on the "
                     "command line)"),
        "ours_accuracy_std_pct": st.column_config.NumberColumn(
            "± sd (ours)", format="%.2f", help="standard deviation of our accuracy across the seeds, points"),
        "seed_noise_pct": st.column_config.NumberColumn(
            "Seed noise", format="%.2f",
            help="standard deviation across seeds, pooled over the experiment's rows, points"),
        "noise_verdict": st.column_config.TextColumn(
            "Ours - blog, against the noise",
            help="beyond noise: the published figure (one run, rounded to 0.1) lies outside the 95% "
                 "prediction interval of our seeds"),
        "accuracy_ratio": st.column_config.NumberColumn("Acc ratio", format="%.3f",
                                                        help="ours / published; above 1 is better"),
        "published_time_s": st.column_config.NumberColumn("Time s (blog)", format="%.2f"),
        "ours_time_s": st.column_config.NumberColumn("Time s (ours)", format="%.2f"),
        "speedup": st.column_config.NumberColumn("Speed-up", format="%.1fx",
                                                 help="published time / our time, same kind of time"),
        "published_parameters": st.column_config.NumberColumn("Params (blog)", format="%d"),
        "ours_parameters": st.column_config.NumberColumn("Params (ours)", format="%d"),
        "published_flops": st.column_config.NumberColumn("FLOPs (blog)", format="%d"),
        "published_flops_convention": st.column_config.TextColumn("Blog FLOPs convention"),
        "ours_flops_2x_macs": st.column_config.NumberColumn("FLOPs ours (2 x MACs)", format="%d"),
        "ours_macs_fvcore": st.column_config.NumberColumn("MACs ours (fvcore)", format="%d"),
        "flops_ratio": st.column_config.NumberColumn("FLOPs ratio", format="%.2f"),
        "source": st.column_config.LinkColumn(
            "Ours from run", display_text=r"run=(.*)$",
            help="The study's own run behind our figures (opens it on the Runs page); a run "
                 "with the same settings from elsewhere, such as a grid sweep, never counts"),
    }


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2%}" if metric == "test_accuracy" else f"{value:,.4g}"


def lines_figure(effect: sweeps.Effect) -> go.Figure:
    """Mean over seed repeats against the axis, one line per setting of the other axes; bars = 1 std."""
    fig = go.Figure()
    percent = effect.metric == "test_accuracy"
    scale = 100 if percent else 1
    for i, (label, cells) in enumerate(effect.groups.items()):
        fig.add_trace(go.Scatter(
            x=[str(c.value) if effect.axis in ("model", "dataset") else c.value for c in cells],
            y=[c.mean * scale for c in cells],
            error_y={"type": "data", "array": [(c.std or 0) * scale for c in cells], "visible": True},
            mode="lines+markers", name=label, line={"color": color(i)},
            customdata=[[c.n, c.std * scale if c.std is not None else float("nan")] for c in cells],
            hovertemplate=f"{label}<br>%{{x}}: %{{y:.4g}} (std %{{customdata[1]:.3g}}, "
                          "%{customdata[0]} runs)<extra></extra>",
        ))
    unit = " (%)" if percent else ""
    fig.update_layout(
        title=f"{compare.label(effect.metric)} against {sweeps.AXIS_LABELS[effect.axis].lower()}",
        xaxis_title=sweeps.AXIS_LABELS[effect.axis], yaxis_title=f"{compare.label(effect.metric)}{unit}",
        height=HEIGHT, margin={"l": 60, "r": 20, "t": 50, "b": 50}, legend={"orientation": "h", "y": -0.25},
    )
    if effect.axis in LOG_AXES:
        fig.update_xaxes(type="log")
    values = sorted({c.value for cells in effect.groups.values() for c in cells}, key=sweeps.order)
    if values and all(isinstance(v, (int, float)) for v in values):
        fig.update_xaxes(tickvals=values, ticktext=[_category(v) for v in values])  # a tick per value only
    return fig


def heatmap_figure(rows: Sequence[dict[str, Any]], metric: str, x: str, y: str) -> go.Figure:
    """Mean of ``metric`` over the runs of each (x, y) cell (seeds and other axes pooled)."""
    g = compare.grid([r for r in rows if r["state"] == "done"], metric, x=x, y=y, agg="mean")
    percent = metric == "test_accuracy"
    z = [[None if v is None else (v * 100 if percent else v) for v in row] for row in g.z]
    text = [[_fmt(metric, v) + f" ({n})" if v is not None else "" for v, n in zip(row, counts, strict=True)]
            for row, counts in zip(g.z, g.counts, strict=True)]
    xs, ys = [_category(v) for v in g.xs], [_category(v) for v in g.ys]
    fig = go.Figure(go.Heatmap(
        x=xs, y=ys, z=z, text=text, texttemplate="%{text}",
        colorscale="Viridis" if percent else "Cividis", reversescale=not percent,
        hovertemplate=f"{x} %{{x}}, {y} %{{y}}: %{{text}} runs<extra></extra>",
    ))
    fig.update_layout(
        title=f"{compare.label(metric)}: mean over runs per cell", height=HEIGHT,
        xaxis_title=sweeps.AXIS_LABELS.get(x, x), yaxis_title=sweeps.AXIS_LABELS.get(y, y),
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
    )
    # Categories, not numbers: one even cell per swept value (widths 16, 128, 1024 are not
    # spaced by size, and a depth axis has no 1.5), labelled with the value itself.
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=xs)
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=ys)
    return fig


def _category(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def steps_frame(effect: sweeps.Effect) -> list[dict[str, Any]]:
    return [
        {"lines": s.group, "from": str(s.frm), "to": str(s.to),
         "change": f"{s.delta * 100:+.2f} pts" if effect.metric == "test_accuracy" else f"{s.delta:+,.4g}",
         "noise (2 SE)": "-" if s.noise is None else (
             f"{s.noise * 100:.2f} pts" if effect.metric == "test_accuracy" else f"{s.noise:,.4g}"),
         "verdict": s.verdict}
        for s in effect.steps
    ]


def render(sweep: sweeps.Sweep, runs: Sequence[RunInfo], key: str) -> None:
    """Charts of one sweep's finished runs; ``key`` keeps widgets apart where it is shown twice."""
    rows = sweeps.point_rows(sweep, runs)
    done = sum(r["state"] == "done" for r in rows)
    if not done:
        st.info("No run of this sweep has finished yet: its charts appear with the first one.")
        return
    early = sum(r["early"] for r in rows)
    if sweep.kind == "search":
        st.caption(f"A budgeted search: {early} of its {len(rows)} runs were stopped early by ASHA, after "
                   "fewer epochs (tagged stopped-early on the Runs page), so their figures trail the "
                   "finished ones by design; compare the finished runs to pick a model.")
    axes = [a for a in sweep.axes if a != "seed"]
    if not axes:
        st.caption("This sweep varies nothing but the seed; see its runs on the Runs page.")
        return
    metric = st.selectbox("Metric", METRICS, format_func=compare.label, key=f"{key}_metric")
    noise = sweeps.seed_noise(sweep, runs, metric)
    if noise is not None:
        shown = f"{noise * 100:.2f} points" if metric == "test_accuracy" else f"{noise:,.4g}"
        st.caption(f"Seed-to-seed noise (pooled standard deviation over repeats): {shown}.")
    else:
        st.caption("No seed repeats finished: differences cannot be weighed against the noise "
                   "(add seed repeats to the sweep).")
    cols = st.columns(min(2, len(axes)))
    for i, axis in enumerate(axes):
        effect = sweeps.effects(sweep, runs, axis, metric)
        with cols[i % len(cols)]:
            st.plotly_chart(lines_figure(effect), key=f"{key}_line_{axis}", width="stretch")
            with st.expander(f"Is each step in {sweeps.AXIS_LABELS[axis].lower()} larger than the noise?"):
                st.dataframe(steps_frame(effect), hide_index=True, width="stretch")
    if len(axes) >= 2:
        default = ("depth", "width") if {"depth", "width"} <= set(axes) else (axes[0], axes[1])
        c1, c2 = st.columns(2)
        x = c1.selectbox("Heatmap x", axes, index=axes.index(default[0]), key=f"{key}_hx",
                         format_func=sweeps.AXIS_LABELS.get)
        y = c2.selectbox("Heatmap y", axes, index=axes.index(default[1]), key=f"{key}_hy",
                         format_func=sweeps.AXIS_LABELS.get)
        if x == y:
            st.caption("Pick two different axes for the heatmap.")
        else:
            st.plotly_chart(heatmap_figure(rows, metric, x, y), key=f"{key}_heat", width="stretch")
