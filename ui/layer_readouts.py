"""Readouts per layer (``mnist_core.probes``): fetched once per run, drawn on both pages.

The Draw page (:func:`readout_view`): each class's probability as each
layer's readout sees one drawing. The Runs page's Inside view
(:func:`probes_panel`): each readout's test accuracy, per run. Not a page;
the readouts are fitted and read by ``mnist_core.probes``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from mnist_core import probes as core_probes
from mnist_core.errors import MnistLabError
from mnist_core.probes import Probes
from ui.inside_plot import class_lines, layout, per_run, run_trace

if TYPE_CHECKING:  # torch itself loads through mnist_core, which tunes OpenMP first
    import torch

    from mnist_core.runs import RunInfo

POSITION_LABELS = {"pixels": "pixels (input)", "output": "output (the model)"}


@st.cache_resource(max_entries=32, show_spinner=False)
def run_probes(run_id: str, runs_dir: str, stamp: str) -> Probes | str:
    """The run's readouts (fitted once, then read from beside the run), or why there are none.

    ``stamp`` (the run's last update) is only the cache key. Shared between
    sessions, never mutated.
    """
    try:
        return core_probes.run_probes(run_id, runs_dir)
    except MnistLabError as exc:
        return str(exc)


def probes_of(run_id: str, runs_dir: str, stamp: object) -> Probes | str:
    """The run's readouts: read from beside it at once, or fitted now under a spinner that says how long.

    Called where the readouts are drawn, after everything else on the page,
    so the first time a run is opened the rest shows while they are fitted.
    """
    try:
        found = core_probes.saved(run_id, runs_dir)
        if found is not None:
            return found
        seconds = core_probes.run_fit_seconds(run_id, runs_dir)
    except MnistLabError as exc:
        return str(exc)
    with st.spinner(f"Fitting the readouts per layer (first time for this run, ~{math.ceil(seconds)} s)..."):
        return run_probes(run_id, runs_dir, str(stamp))


def position_label(position: str) -> str:
    return POSITION_LABELS.get(position, position)


# -- the Draw page: one drawing ------------------------------------------------------------------


def readout_figure(found: Probes, rows: np.ndarray, names: Sequence[str], label: int) -> go.Figure:
    """Each class's probability as each layer's readout sees it: ``rows`` ``(positions, classes)``."""
    x = [position_label(r.position) for r in found.readouts]
    fig = go.Figure()
    class_lines(fig, x, rows, names, label, ".1%")
    return layout(
        fig,
        f"How the probability of {html.escape(names[label])} grows layer by layer",
        yaxis={"title": None, "tickformat": ".0%", "range": [0, 1.05]},
        xaxis={"type": "category"},
    )


def readout_view(
    model: torch.nn.Module, x: torch.Tensor, names: Sequence[str], label: int, run: RunInfo | None, key: str
) -> None:
    """The Draw page's layer-by-layer readout of one drawing (chart ``key``), or what is missing for it."""
    if run is None:
        st.caption("No layer-by-layer readout: this model is not a saved run.")
        return
    found = probes_of(run.id, str(run.path.parent), run.updated)
    if isinstance(found, str):
        st.info(f"No layer-by-layer readout for this run: {found}")
        return
    try:
        rows = core_probes.read_drawing(found, model, x)
    except (ValueError, AssertionError) as exc:
        st.info(f"No layer-by-layer readout for this model: {exc}")
        return
    st.plotly_chart(readout_figure(found, rows, names, label), key=key)
    accuracies = ", ".join(f"{position_label(r.position)} {r.accuracy:.0%}" for r in found.readouts)
    st.caption(
        "Each point reads one layer's outputs with a linear readout fitted for it on "
        f"{found.fit_images:,} training images (the last point is the model itself). Their accuracy on "
        f"{found.test_images:,} test images: {accuracies}. Where the line jumps, that layer made "
        f"{names[label]} easy to tell apart."
    )


# -- the Runs page's Inside view: the runs shown -------------------------------------------------


def probe_accuracy_figure(per_run: Mapping[str, Probes]) -> go.Figure:
    """Per run, the test accuracy of each layer's linear readout, from the pixels to the output."""
    depth = max((len(p.readouts) - 2 for p in per_run.values()), default=0)
    axis = [position_label(p) for p in ["pixels", *(f"layer {k}" for k in range(1, depth + 1)), "output"]]
    fig = go.Figure()
    for name, found in per_run.items():
        x = [position_label(r.position) for r in found.readouts]
        y = [r.accuracy for r in found.readouts]
        points = [r.name for r in found.readouts]
        fig.add_trace(run_trace(go.Scatter, name, x, y, points, ".1%", mode="lines+markers"))
    return layout(
        fig,
        "Accuracy of a linear readout of each layer",
        yaxis={"title": "test accuracy", "tickformat": ".0%"},
        xaxis={"type": "category", "categoryorder": "array", "categoryarray": axis},
    )


def probes_panel(
    runs_shown: Mapping[str, str], runs_dir: str, stamps: Mapping[str, object], key: str
) -> None:
    """The Runs page's Inside view: readout accuracy per layer for the runs shown (label -> run id)."""
    usable = per_run(
        runs_shown,
        lambda run_id: probes_of(run_id, runs_dir, stamps.get(run_id, 0)),
        lambda label, reason: f"No readouts per layer for {label}: {reason}",
    )
    if not usable:
        return
    st.plotly_chart(probe_accuracy_figure(usable), key=key)
    st.caption(
        "Each layer's outputs read by a linear classifier fitted for it (ridge regression on "
        f"{core_probes.FIT_IMAGES:,} training images; accuracy on {core_probes.TEST_IMAGES:,} test images). "
        "The pixels' point is a linear model of the image; the last point is the model itself. A layer "
        "that raises the line made the digits more linearly separable: that is what depth buys. A flat "
        "line after the first layer means the later layers added little that a readout can use."
    )
