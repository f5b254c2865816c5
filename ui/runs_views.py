"""The Runs page's comparison views: learning curves, accuracy against cost, parallel
coordinates, depth x width grids, bars, confusion matrices, the digits runs get wrong
(``ui.runs_mistakes``) and inside the network.

Not a page (app.py lists the pages): ``pages/runs.py`` calls :func:`charts_section`
with the selected runs' table rows. ``mnist_core.compare`` and ``mnist_core.gallery``
compute, ``ui.runs_charts`` draws; what a view reads from a run folder is cached here
by run id and the folder's stamp (``runs.folder_state``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import streamlit as st

from mnist_core import compare, internals, layer_units, runs, scaling, seeds
from mnist_core import curves as core_curves
from mnist_core import data as core_data
from mnist_core.errors import MnistLabError
from ui import choices, inside_plot, inside_runs, layer_readouts, runs_curves
from ui import runs_charts as charts
from ui.runs_manage import K
from ui.runs_mistakes import details, mistakes_view
from ui.shared import SESSION, literal
from ui.significance_view import VIEW as SIGNIFICANCE_VIEW
from ui.significance_view import significance_view

MAX_CONFUSIONS = 4


# -- reading (cached) ------------------------------------------------------------------


@st.cache_data(max_entries=2000, show_spinner=False)
def curve_columns(runs_dir: str, run_id: str, stamp: int) -> core_curves.CurveColumns | str:
    """The run's curve columns, or the reason its history cannot be read."""
    try:
        return core_curves.curve_columns(runs.load_history(run_id, runs_dir))
    except MnistLabError as exc:
        return str(exc)


# -- the views ---------------------------------------------------------------------------


def charts_section(rows: list[dict[str, Any]], runs_dir: Path, stamps: Mapping[str, int]) -> None:
    st.subheader("Compare")
    if not rows:
        st.info("Pick runs above to compare them.")
        return
    view = st.segmented_control(
        "Chart",
        (*charts.VIEWS, SIGNIFICANCE_VIEW),
        default=charts.VIEWS[0],
        required=True,
        key=f"{K}view",
        persist_state=SESSION,
        label_visibility="collapsed",
    )
    {
        "Learning curves": curves_view,
        "Accuracy vs cost": cost_view,
        "Parallel coordinates": parallel_view,
        "Depth x width": grid_view,
        "Bars": bars_view,
        "Confusion": confusion_view,
        "Mistakes": mistakes_view,
        "Inside": inside_view,
        SIGNIFICANCE_VIEW: significance_view,
    }[view or charts.VIEWS[0]](rows, str(runs_dir), stamps)


def curves_view(rows: list[dict[str, Any]], runs_dir: str, stamps: Mapping[str, int]) -> None:
    against, log = st.columns(3, vertical_alignment="bottom")[:2]
    x = against.selectbox(
        "Against",
        list(core_curves.CURVE_AXES),
        format_func=core_curves.CURVE_AXES.get,
        key=f"{K}curve_x",
        persist_state=SESSION,
    )
    log_x = log.checkbox(
        "Log x axis", key=f"{K}curve_logx", persist_state=SESSION,
        help="For runs of very different lengths: a batch-1 run takes 50,000 steps an epoch, batch 256 211.",
    )  # fmt: skip
    curves: dict[str, core_curves.CurveColumns] = {}
    for row in rows:
        cols = curve_columns(runs_dir, row["id"], stamps.get(row["id"], 0))
        if isinstance(cols, str):
            st.warning(f"{literal(row['name'])}: {cols}")
        elif not cols.empty:
            curves[row["id"]] = cols
    if not curves:
        st.info("None of these runs has a learning curve yet.")
        return
    fig = runs_curves.curves_figure(curves, {r["id"]: r for r in rows}, x, seed_groups(rows), log_x=log_x)
    st.plotly_chart(fig, key=f"{K}curves")
    if len(curves) > runs_curves.MAX_CURVE_TRACES:
        st.caption(f"{len(curves)} runs: drawn as one line per series; hover a line for its run.")


def cost_view(rows: list[dict[str, Any]], runs_dir: str, stamps: Mapping[str, int]) -> None:
    c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    cost = c1.selectbox(
        "Cost", compare.COSTS, format_func=compare.label, key=f"{K}cost", persist_state=SESSION
    )
    colour = c2.selectbox(
        "Colour by",
        (*compare.NUMERIC_SETTINGS, "model", "optimizer"),
        format_func=compare.label,
        key=f"{K}colour",
        persist_state=SESSION,
    )
    log_x = c3.checkbox("Log scale", value=True, key=f"{K}logx", persist_state=SESSION)
    fits, not_fitted = scaling.fits(rows, cost) if cost in scaling.AXES else ([], [])
    rows = grouped(rows)
    front = compare.pareto_front([(r.get(cost), r.get("test_accuracy")) for r in rows])
    st.plotly_chart(charts.cost_figure(rows, cost, front, colour, log_x, fits=fits), key=f"{K}cost_chart")
    scaling_caption(fits, not_fitted)
    if front:
        names = ", ".join(literal(rows[i]["name"]) for i in front[:8])
        more = f" and {len(front) - 8} more" if len(front) > 8 else ""
        st.caption(f"On the Pareto front (no run is both cheaper and more accurate): {names}{more}.")
    seeds_caption(rows)


def parallel_view(rows: list[dict[str, Any]], runs_dir: str, stamps: Mapping[str, int]) -> None:
    left, right = st.columns([3, 1])
    settings = left.multiselect(
        "Settings",
        compare.NUMERIC_SETTINGS,
        default=["depth", "width", "batch_size", "epochs", "lr"],
        format_func=compare.label,
        key=f"{K}pc_settings",
        persist_state=SESSION,
    )
    cost = right.selectbox(
        "Cost",
        ("none", *compare.COSTS),
        index=1,
        format_func=compare.label,
        key=f"{K}pc_cost",
        persist_state=SESSION,
    )
    metrics = [*([cost] if cost != "none" else []), "test_accuracy"]
    rows = grouped(rows)
    st.plotly_chart(charts.parallel_figure(rows, settings, metrics), key=f"{K}parallel")
    st.caption("Drag along an axis to keep only the runs in a range.")
    seeds_caption(rows, bars=False)


def grid_view(rows: list[dict[str, Any]], runs_dir: str, stamps: Mapping[str, int]) -> None:
    mlps = [r for r in grouped(rows) if r["model"] == "mlp"]
    if not mlps:
        st.info("Depth and width describe MLPs; none of the selected runs is one.")
        return
    c1, c2 = st.columns(2)
    cost = c1.selectbox(
        "Cost", compare.COSTS, format_func=compare.label, key=f"{K}grid_cost", persist_state=SESSION
    )
    agg = c2.selectbox(
        "Per cell", ("best", "mean", "min", "max"), key=f"{K}grid_agg", persist_state=SESSION,
        help="best: the run with the highest test accuracy in each cell, in both maps (its cost on the "
        "right); mean, min, max: over every run of the cell, each map on its own.",
    )  # fmt: skip
    # "best" is one run a cell: the cost map shows the cost of the run whose accuracy is on the left.
    cells = compare.best_per_cell(mlps) if agg == "best" else mlps
    left, right = st.columns(2)
    acc = compare.grid(cells, "test_accuracy", agg=agg)
    left.plotly_chart(charts.grid_figure(acc, "test_accuracy", agg), key=f"{K}grid_acc")
    right.plotly_chart(
        charts.grid_figure(compare.grid(cells, cost, agg=agg), cost, agg), key=f"{K}grid_cost_chart"
    )
    mixed = compare.varying_settings(mlps)
    unfinished = sum(r.get("status") != "completed" for r in mlps)
    if mixed or unfinished:
        beside = ", ".join(compare.label(k).lower() for k in mixed)
        parts = [f"these runs also differ in {beside}" if mixed else "",
                 f"{unfinished} did not finish (stopped or interrupted)" if unfinished else ""]  # fmt: skip
        st.caption(
            "Not depth and width alone: " + "; ".join(p for p in parts if p) + ". Pick runs that differ only "
            "in their shape (or use *Group seeds* and a sweep) to read the maps as the effect of the shape."
        )
    cnns = [r for r in rows if r["model"] != "mlp"]
    if cnns:
        st.caption(f"{len(cnns)} CNN run(s) left out: depth and width are MLP settings.")
    seeds_caption(mlps, bars=False)


def bars_view(rows: list[dict[str, Any]], runs_dir: str, stamps: Mapping[str, int]) -> None:
    metric = st.selectbox(
        "Metric", compare.METRIC_KEYS, format_func=compare.label, key=f"{K}bar_metric", persist_state=SESSION
    )
    rows = grouped(rows)
    st.plotly_chart(charts.bars_figure(rows, metric), key=f"{K}bars")
    seeds_caption(rows)


def scaling_caption(fits: list[scaling.Fit], not_fitted: list[str]) -> None:
    for fit in fits:
        st.caption(
            f"Dotted: test error = {fit.a:.3g} · N^-{fit.b:.2f} + {fit.c:.2%}, fitted to the {fit.n} "
            f"completed {scaling.family_label(fit.family)} runs on {fit.dataset} picked "
            f"(N: {scaling.AXES[fit.axis]}); the band is its 95% interval. "
            "Far outside the runs' sizes it is a guess."
        )
    if not_fitted and not fits:
        st.caption(f"No scaling fit. {not_fitted[0]}")


def grouped(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs that differ only in seed as one row: means, ``<metric>_std`` and ``n_seeds``."""
    return seeds.group_rows(rows, compare.METRIC_KEYS)


def seed_groups(rows: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Run id -> (group, label) for the runs of a configuration picked with several seeds."""
    return {
        run_id: (g["id"], str(g["name"]))
        for g in grouped(rows)
        if g[seeds.N_KEY] > 1
        for run_id in g["run_ids"]
    }


def seeds_caption(rows: list[dict[str, Any]], bars: bool = True) -> None:
    n = seeds.repeated(rows)
    if n:
        how = "its mean with an error bar of one standard deviation" if bars else "the mean over its seeds"
        st.caption(f"{n} configuration(s) picked with several seeds: each is drawn once, as {how}.")


def confusion_view(rows: list[dict[str, Any]], runs_dir: str, stamps: Mapping[str, int]) -> None:
    by_id = {r["id"]: r for r in rows}
    ids = choices.pick_runs(rows, f"{K}conf_runs", MAX_CONFUSIONS)
    if not ids:
        return
    for col, run_id in zip(st.columns(len(ids)), ids, strict=True):
        info = details(runs_dir, run_id, stamps.get(run_id, 0))
        matrix = info.get("confusion")
        if matrix is None:
            col.info(f"{literal(by_id[run_id]['name'])}: no confusion matrix (the run has no test result).")
            continue
        names = core_data.CLASS_NAMES.get(info["dataset"], tuple(map(str, range(10))))
        col.plotly_chart(
            charts.confusion_figure(matrix, names, by_id[run_id]["name"]), key=f"{K}conf_{run_id}"
        )
    st.caption("Off-diagonal cells are coloured: the darker, the more often that mistake.")


# -- inside the network ------------------------------------------------------------------

MAX_INSIDE = 4  # runs side by side


@st.cache_data(max_entries=64, show_spinner=False)
def insides(runs_dir: str, run_id: str, stamp: int, data_ready: bool) -> internals.Inside | str:
    """The run's first-layer pictures and per-layer statistics, or why they cannot be read.

    ``stamp`` and ``data_ready`` are only the cache key: a run changed, or the
    dataset put on disk since, is read again.
    """
    try:
        return internals.inspect_run(run_id, runs_dir)
    except MnistLabError as exc:
        return str(exc)


def inside_view(rows: list[dict[str, Any]], runs_dir: str, stamps: Mapping[str, int]) -> None:
    """First-layer weights, weight and output histograms and dead units, for 1-4 runs side by side."""
    by_id = {r["id"]: r for r in rows}
    ids = choices.pick_runs(rows, f"{K}inside_runs", MAX_INSIDE)
    if not ids:
        return
    found: dict[str, internals.Inside | str] = {}
    for run_id in ids:
        ready = core_data.is_available(by_id[run_id].get("dataset") or "mnist")
        found[run_id] = insides(runs_dir, run_id, stamps.get(run_id, 0), ready)
    notes = {i.data_note for i in found.values() if not isinstance(i, str) and i.data_note}
    for note in sorted(notes):
        st.info(f"{note} The weights are shown all the same.")
    for col, run_id in zip(st.columns(len(ids)), ids, strict=True):
        inside_column(col, by_id[run_id]["name"], run_id, found[run_id])
    labels = choices.run_labels(rows)
    usable = {labels[i]: r.layers for i, r in found.items() if not isinstance(r, str) and r.sample_size}
    shares = [share for layers in usable.values() for layer in layers
              for share in (layer.dead_share, layer.saturated_share) if share is not None]  # fmt: skip
    if shares:
        if max(shares) > 0:
            st.plotly_chart(inside_runs.units_figure(usable), key=f"{K}inside_units")
        else:  # a chart of zero-height bars looked broken
            st.markdown("**Dead or saturated units per layer**: none, in any layer of these runs.")
        st.caption(
            "Dead: a ReLU unit (a convolution's channel) that no test image of the sample activates. "
            f"Saturated: a tanh or sigmoid unit within {layer_units.SATURATION_MARGIN} of its bound on "
            f"{layer_units.SATURATED_FRACTION:.0%} of the sample or more."
        )
    readable = {labels[i]: i for i, r in found.items() if not isinstance(r, str)}
    inside_runs.training_stats_panel(readable, runs_dir, stamps, key=f"{K}inside_training")
    # last: the first time a run is opened its readouts are fitted here, with everything else already drawn
    layer_readouts.probes_panel(readable, runs_dir, stamps, key=f"{K}inside_probes")


def inside_column(col: Any, name: str, run_id: str, found: internals.Inside | str) -> None:
    col.markdown(f"**{literal(name)}**")
    if isinstance(found, str):
        col.info(f"Nothing to show inside: {found}")
        return
    first = found.first_layer
    if first is not None and len(first.units):
        what = "hidden units' input weights" if first.kind == "mlp" else "first convolution's filters"
        col.image(
            inside_plot.mosaic(first.images),
            caption=f"The {len(first.units)} of {first.n_units} {what} with the largest norm, largest first "
            "(red positive, blue negative, each tile to its own scale).",
        )
    col.plotly_chart(
        inside_runs.histograms_figure(found.layers, "weights", "Weights per layer"),
        key=f"{K}inside_w_{run_id}",
    )
    if found.sample_size:
        col.plotly_chart(
            inside_runs.histograms_figure(
                found.layers, "activations", f"Outputs on {found.sample_size:,} test images"
            ),
            key=f"{K}inside_a_{run_id}",
        )
