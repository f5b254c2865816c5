"""Pictures of the Runs page's "Inside" view and the Draw page's layer view.

Runs page: first-layer weight mosaics, histograms, dead units. Draw page
(:func:`layer_view`): one drawing layer by layer. Not a page. Drawing only:
the numbers come ready from ``mnist_core.internals`` and
``mnist_core.internals_drawing``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from mnist_core import layerstats
from mnist_core import probes as core_probes
from mnist_core.errors import MnistLabError
from mnist_core.internals import LayerStats
from mnist_core.internals_drawing import KNOCKOUT, BuildUp, DrawingInside, inspect_drawing
from mnist_core.probes import Probes
from ui.charts import LEGEND_BELOW, TITLE_MARGIN
from ui.charts import title as chart_title

if TYPE_CHECKING:  # torch itself loads through mnist_core, which tunes OpenMP first
    import torch

    from mnist_core.runs import RunInfo

TILE_PX = 56  # a weight picture is scaled up (nearest neighbour) to about this size
COLS = 8
GAP = 2
HEIGHT = 320
# Diverging colours: negative weights blue, zero white, positive red.
_NEG = np.array([33, 102, 172], dtype=np.float32)
_POS = np.array([178, 24, 43], dtype=np.float32)
_WHITE = np.array([247, 247, 247], dtype=np.float32)


def _layout(fig: go.Figure, title: str, **layout: Any) -> go.Figure:
    """The layout every chart here shares (title, height, margins, legend below), plus ``layout``."""
    fig.update_layout(
        title=chart_title(title), height=HEIGHT, margin={"l": 10, "r": 10, "t": TITLE_MARGIN, "b": 10},
        legend=LEGEND_BELOW, **layout,
    )  # fmt: skip
    return fig


def _class_lines(
    fig: go.Figure, x: list[str], values: np.ndarray, names: Sequence[str], label: int, fmt: str
) -> None:
    """A line per class over ``x`` (``values`` ``(len(x), classes)``); the predicted class bold, on top."""
    for c in [c for c in range(values.shape[1]) if c != label] + [label]:
        mine = c == label
        fig.add_trace(
            go.Scatter(
                x=x, y=values[:, c], mode="lines+markers", name=html.escape(names[c]),
                line={"width": 3 if mine else 1, "color": None if mine else "#bbb"},
                marker={"size": 8 if mine else 4},
                hovertemplate="%{x}: %{y:" + fmt + "}<extra>" + html.escape(names[c]) + "</extra>",
            )
        )  # fmt: skip


def mosaic(images: np.ndarray, cols: int = COLS) -> np.ndarray:
    """Tiles ``(K, H, W)`` of weights -> one RGB picture ``(rows * (h + GAP), cols * (w + GAP), 3)`` uint8.

    Each tile is scaled by its own largest absolute weight, so every unit's
    pattern shows whatever its norm (the order already tells the norm).
    """
    k, h, w = images.shape
    scale = max(1, TILE_PX // max(h, w))
    cols = max(1, min(cols, k))
    rows = max(1, -(-k // cols))
    th, tw = h * scale + GAP, w * scale + GAP
    out = np.full((rows * th, cols * tw, 3), 255, dtype=np.uint8)
    for i in range(k):
        tile = images[i].astype(np.float32)
        peak = float(np.abs(tile).max()) or 1.0
        rgb = np.kron(_diverging(tile / peak), np.ones((scale, scale, 1), dtype=np.float32))
        r, c = divmod(i, cols)
        out[r * th : r * th + h * scale, c * tw : c * tw + w * scale] = rgb.round().astype(np.uint8)
    return out


def _diverging(t: np.ndarray) -> np.ndarray:
    """Values in [-1, 1] ``(h, w)`` -> RGB float ``(h, w, 3)``: blue, white at 0, red."""
    t = t[..., None]
    return np.where(t >= 0, _WHITE + t * (_POS - _WHITE), _WHITE - t * (_NEG - _WHITE))


def histograms_figure(layers: Sequence[LayerStats], which: str, title: str) -> go.Figure:
    """One line per layer: the share of its weights (or outputs) in each bin.

    ``which`` is ``"weights"`` or ``"activations"``; outputs use a log y axis
    (a ReLU layer's zeros would flatten everything else).
    """
    fig = go.Figure()
    for layer in layers:
        hist = layer.weights if which == "weights" else layer.activations
        if hist is None or not hist.total:
            continue
        edges = np.asarray(hist.edges)
        centres = (edges[:-1] + edges[1:]) / 2
        share = np.asarray(hist.counts, dtype=np.float64) / hist.total
        fig.add_trace(
            go.Scatter(
                x=centres,
                y=share,
                mode="lines",
                line={"shape": "hvh", "width": 1.5},
                name=html.escape(layer.name),
                hovertemplate="%{x:.3g}: %{y:.2%}<extra>" + html.escape(layer.name) + "</extra>",
            )
        )
    y_type = "linear" if which == "weights" else "log"
    return _layout(
        fig,
        title,
        xaxis={"title": None},  # the chart's title names the values; a title here would sit under the legend
        yaxis={"title": "share of values", "tickformat": "~%", "type": y_type},
    )


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
    return _layout(
        fig,
        "Dead or saturated units per layer",
        yaxis={"title": "share of the layer's units", "tickformat": ".0%", "rangemode": "tozero"},
        xaxis={"type": "category"},
        barmode="group",
    )


# -- the Draw page: one drawing, layer by layer ----------------------------------------------

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
    rgb = _diverging(cells.reshape(rows, cols))
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
    return _layout(
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
    return _layout(
        fig,
        f"Probability of {html.escape(class_name)} with a layer's top units off",
        yaxis={"title": None, "tickformat": ".0%", "range": [0, 1.05]},
        xaxis={"type": "category"},
    )


def build_up_figure(build: BuildUp, names: Sequence[str], label: int) -> go.Figure:
    """Every class's logit as the output layer adds its bias, then its inputs one by one."""
    fig = go.Figure()
    _class_lines(fig, list(build.steps), build.cumulative, names, label, ".3g")
    return _layout(
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
        readout_view(model, x, names, read.label, run)


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


# -- readouts per layer (mnist_core.probes) ----------------------------------------------------

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


def _position_label(position: str) -> str:
    return POSITION_LABELS.get(position, position)


def readout_figure(found: Probes, rows: np.ndarray, names: Sequence[str], label: int) -> go.Figure:
    """Each class's probability as each layer's readout sees it: ``rows`` ``(positions, classes)``."""
    x = [_position_label(r.position) for r in found.readouts]
    fig = go.Figure()
    _class_lines(fig, x, rows, names, label, ".1%")
    return _layout(
        fig,
        f"How the probability of {html.escape(names[label])} grows layer by layer",
        yaxis={"title": None, "tickformat": ".0%", "range": [0, 1.05]},
        xaxis={"type": "category"},
    )


def readout_view(
    model: torch.nn.Module, x: torch.Tensor, names: Sequence[str], label: int, run: RunInfo | None
) -> None:
    """The Draw page's layer-by-layer readout of one drawing, or what is missing for it."""
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
    st.plotly_chart(readout_figure(found, rows, names, label), key=f"{LAYER_VIEW_KEY}_readout")
    accuracies = ", ".join(f"{_position_label(r.position)} {r.accuracy:.0%}" for r in found.readouts)
    st.caption(
        "Each point reads one layer's outputs with a linear readout fitted for it on "
        f"{found.fit_images:,} training images (the last point is the model itself). Their accuracy on "
        f"{found.test_images:,} test images: {accuracies}. Where the line jumps, that layer made "
        f"{names[label]} easy to tell apart."
    )


def probe_accuracy_figure(per_run: Mapping[str, Probes]) -> go.Figure:
    """Per run, the test accuracy of each layer's linear readout, from the pixels to the output."""
    depth = max((len(p.readouts) - 2 for p in per_run.values()), default=0)
    axis = [_position_label(p) for p in ["pixels", *(f"layer {k}" for k in range(1, depth + 1)), "output"]]
    fig = go.Figure()
    for name, found in per_run.items():
        fig.add_trace(
            go.Scatter(
                x=[_position_label(r.position) for r in found.readouts],
                y=[r.accuracy for r in found.readouts],
                mode="lines+markers",
                name=html.escape(name),
                customdata=[r.name for r in found.readouts],
                hovertemplate="%{customdata}: %{y:.1%}<extra>" + html.escape(name) + "</extra>",
            )
        )
    return _layout(
        fig,
        "Accuracy of a linear readout of each layer",
        yaxis={"title": "test accuracy", "tickformat": ".0%"},
        xaxis={"type": "category", "categoryorder": "array", "categoryarray": axis},
    )


def probes_panel(
    runs_shown: Mapping[str, str], runs_dir: str, stamps: Mapping[str, object], key: str
) -> None:
    """The Runs page's Inside view: readout accuracy per layer for the runs shown (label -> run id)."""
    found = {label: probes_of(i, runs_dir, stamps.get(i, 0)) for label, i in runs_shown.items()}
    usable = {label: p for label, p in found.items() if not isinstance(p, str)}
    for label, reason in found.items():
        if isinstance(reason, str):
            st.info(f"No readouts per layer for {label}: {reason}")
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
        fig.add_trace(
            go.Bar(
                x=[f"layer {k}" if k < len(rec.layers) else "output" for k in range(1, len(rec.layers) + 1)],
                y=[layer.grad_norm for layer in rec.layers],
                name=html.escape(name),
                customdata=[layer.name for layer in rec.layers],
                hovertemplate="%{customdata}: %{y:.3g}<extra>" + html.escape(name) + "</extra>",
            )
        )
    return _layout(
        fig,
        "Gradient norm per layer while training (median)",
        yaxis={"title": "weight gradient L2 norm", "type": "log"},
        xaxis={"type": "category"},
        barmode="group",
    )


def training_stats_panel(
    runs_shown: Mapping[str, str], runs_dir: str, stamps: Mapping[str, object], key: str
) -> None:
    """The Inside view's "recorded while training" part, or, per run, that its history has none."""
    found = {label: recorded(i, runs_dir, str(stamps.get(i, 0))) for label, i in runs_shown.items()}
    usable = {label: r for label, r in found.items() if isinstance(r, layerstats.Recorded)}
    for label, r in found.items():
        if r is None:
            st.info(
                f"{label}: its history has no per-layer training statistics (gradient norms, update ratios, "
                "dead units). It was trained before they were recorded, or with them off; train it again "
                "to see them. Everything else here is read from its weights."
            )
        elif isinstance(r, str):
            st.info(f"{label}: its training history cannot be read: {r}")
    if not usable:
        return
    st.plotly_chart(gradients_figure(usable), key=key)
    points = ", ".join(f"{label} {r.points}" for label, r in usable.items())
    st.caption(
        "The L2 norm of each layer's weight gradient on the probed training steps, median over the run "
        f"(step points with statistics: {points}). Gradients that shrink towards the first layers "
        "(a deep sigmoid network) leave those layers barely learning."
    )
