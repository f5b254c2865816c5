"""The Draw page's layer view: one drawing, layer by layer, inside an expander (:func:`layer_view`).

Each hidden layer's outputs, the units that pushed the answer most and what
switching them off does, how the output layer builds the logits, then the
readouts per layer (``ui.layer_readouts``). Not a page. Drawing only: the
numbers come ready from ``mnist_core.internals_drawing``. The Runs page's
Inside view is ``ui.inside_runs``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from mnist_core.internals_drawing import KNOCKOUT, BuildUp, DrawingInside, inspect_drawing
from ui.inside_plot import class_lines, diverging, layout, mosaic
from ui.layer_readouts import readout_view

if TYPE_CHECKING:  # torch itself loads through mnist_core, which tunes OpenMP first
    import torch

    from mnist_core.runs import RunInfo

GRID_COLS = 32  # units per row of a layer's activation picture
GRID_PX = 320  # about this wide
UNIT_PX = 64  # a pusher's weight picture
LAYER_VIEW_KEY = "draw_inside_layers"


def activation_grid(values: np.ndarray, cols: int = GRID_COLS) -> np.ndarray:
    """A layer's outputs ``(units,)`` as a grid of cells, row by row: RGB uint8.

    One colour scale for the whole layer (its largest absolute output), so
    units compare; cells past the last unit stay grey.
    """
    n = len(values)
    cols = max(1, min(cols, n))
    rows = max(1, -(-n // cols))
    peak = float(np.abs(values).max()) if n else 0.0
    cells = np.zeros(rows * cols, dtype=np.float32)
    cells[:n] = values / (peak or 1.0)
    rgb = diverging(cells.reshape(rows, cols))
    rgb.reshape(-1, 3)[n:] = 200  # no unit there
    scale = max(1, GRID_PX // cols)
    return np.kron(rgb, np.ones((scale, scale, 1), dtype=np.float32)).round().astype(np.uint8)


def pushes_figure(read: DrawingInside, class_name: str) -> go.Figure:
    """Per hidden layer, its units that pushed the predicted class most: bars of their push."""
    fig = go.Figure()
    for layer in read.layers:
        what = "channel" if layer.kind == "conv" else "unit"
        fig.add_trace(
            go.Bar(
                x=[f"L{layer.index} · {what} {u}" for u in layer.top],
                y=[float(layer.push[u]) for u in layer.top],
                name=html.escape(layer.name),
                hovertemplate="%{x}: %{y:.3g}<extra></extra>",
            )
        )
    return layout(
        fig,
        f"Units that pushed {html.escape(class_name)} most",
        yaxis={"title": f"logit of {html.escape(class_name)} lost without it", "rangemode": "tozero"},
        xaxis={"type": "category", "tickangle": -45},
        showlegend=False,
    )


def knockout_figure(read: DrawingInside, class_name: str) -> go.Figure:
    """Per hidden layer: the predicted class's probability with the layer's top 1, 5, 25 units off."""
    fig = go.Figure()
    x = [f"layer {layer.index}" for layer in read.layers]
    for k in KNOCKOUT:
        y = [layer.knockout.get(k) for layer in read.layers]
        if all(v is None for v in y):
            continue
        fig.add_trace(
            go.Scatter(
                x=x, y=y, mode="lines+markers", name=f"top {k} off",
                hovertemplate="%{x}: %{y:.1%}<extra>top " + str(k) + " off</extra>",
            )
        )  # fmt: skip
    p = float(read.probabilities[read.label])
    fig.add_hline(y=p, line_dash="dot", line_color="#888", annotation_text=f"all on: {p:.0%}")
    return layout(
        fig,
        f"Probability of {html.escape(class_name)} with a layer's top units off",
        yaxis={"title": None, "tickformat": ".0%", "range": [0, 1.05]},
        xaxis={"type": "category"},
    )


def build_up_figure(build: BuildUp, names: Sequence[str], label: int) -> go.Figure:
    """Every class's logit as the output layer adds its bias, then its inputs one by one."""
    fig = go.Figure()
    class_lines(fig, list(build.steps), build.cumulative, names, label, ".3g")
    return layout(
        fig,
        "How the output layer builds the logits",
        yaxis={"title": "logit"},
        xaxis={"type": "category"},
    )


def layer_view(
    model: torch.nn.Module, x: torch.Tensor, names: Sequence[str], run: RunInfo | None = None
) -> None:
    """The Draw page's "inside the network" expander, run only while it is open.

    ``run``: the saved run ``model`` was loaded from, whose per-layer readouts
    (:mod:`mnist_core.probes`) show how the answer builds up layer by layer.
    """
    box = st.expander(
        "Inside the network: this drawing, layer by layer", key=LAYER_VIEW_KEY, on_change="rerun",
        icon=":material/layers:",
    )  # fmt: skip
    if not box.open:
        return
    with box:
        try:
            read = inspect_drawing(model, x)
        except ValueError as exc:
            st.info(f"This model cannot be shown layer by layer: {exc}")
            return
        memory_note(read, names)
        show_layers(read, names)
        readout_view(model, x, names, read.label, run, key=f"{LAYER_VIEW_KEY}_readout")


def memory_note(read: DrawingInside, names: Sequence[str]) -> None:
    """Say so when this version's memory of corrected drawings, not its layers, answered for this drawing."""
    answer = read.memory
    if answer is None:
        return
    network = names[answer.network_label]
    st.warning(
        f"This version remembers this drawing: its memory of {answer.remembered} corrected drawings "
        f"(your corrections and their re-drawings) answered {names[answer.label]}, not the network's layers. "
        f"The network alone reads it as {network} "
        f"({float(answer.network_probabilities[answer.network_label]):.0%}): the layers and unit pushes "
        "below show that reading; the last step of the logits and readout charts is the model's actual "
        "answer, the memory's.",
        icon=":material/bookmark:",
    )


def show_layers(read: DrawingInside, names: Sequence[str]) -> None:
    name = names[read.label]
    for layer in read.layers:
        conv = layer.kind == "conv"
        what = "channels (mean over positions)" if conv else "units"
        st.image(
            activation_grid(layer.values),
            caption=f"{layer.name}: its {len(layer.values)} {what}, {layer.active_share:.0%} above zero "
            "(red positive, blue negative, white zero; one scale per layer).",
        )
        if conv and layer.maps is not None and len(layer.maps):
            st.image(mosaic(layer.maps), caption=f"Feature maps of the channels that pushed {name} most.")
    first = read.first_weights
    if read.layers and first is not None and len(first):
        layer = read.layers[0]
        what = "filters" if layer.kind == "conv" else "input weights"
        st.markdown(f"**The units of layer 1 that pushed {name} most: their {what}**")
        st.image(
            [mosaic(first[i : i + 1]) for i in range(len(first))],
            caption=[f"unit {u}: {float(layer.push[u]):+.2f}" for u in layer.top],
            width=UNIT_PX,
        )
    if any(layer.top for layer in read.layers):
        st.plotly_chart(pushes_figure(read, name), key=f"{LAYER_VIEW_KEY}_push")
        st.plotly_chart(knockout_figure(read, name), key=f"{LAYER_VIEW_KEY}_knockout")
    st.caption(
        f"A unit's push: how much the logit (score) of {name} falls when that unit's output is set to 0 "
        "and the layers after it are run again, on this drawing. Units already at 0 push nothing. The "
        "second chart switches a layer's strongest pushers off together: a layer whose answer rests on "
        "a few units falls fast; a wide layer often spreads it over many."
    )
    st.plotly_chart(build_up_figure(read.build_up, names, read.label), key=f"{LAYER_VIEW_KEY}_build")
    st.caption(
        f"The output layer is linear, so each logit is exactly its bias plus one term per input "
        f"(weight x the last hidden layer's output). The strongest terms for {name} are added one by one, "
        f"then the other {max(0, read.build_up.n_inputs - len(read.build_up.units))} together. A plain "
        "network has no exact 'logits after layer 1': each layer feeds only the next, so the chart below "
        "reads every layer with a linear readout fitted for it."
    )
