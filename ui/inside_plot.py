"""What the pictures of the network's inside share: the chart layout, a line per class, weight mosaics.

Used by the Runs page's Inside view (``ui.inside_runs``), the Draw page's
layer view (``ui.inside_charts``) and the readouts per layer of both
(``ui.layer_readouts``). Not a page; drawing only.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui.charts import LEGEND_BELOW, TITLE_MARGIN
from ui.charts import title as chart_title

TILE_PX = 56  # a weight picture is scaled up (nearest neighbour) to about this size
COLS = 8
GAP = 2
HEIGHT = 320
# Diverging colours: negative weights blue, zero white, positive red.
_NEG = np.array([33, 102, 172], dtype=np.float32)
_POS = np.array([178, 24, 43], dtype=np.float32)
_WHITE = np.array([247, 247, 247], dtype=np.float32)

T = TypeVar("T")


def layout(fig: go.Figure, title: str, **extra: Any) -> go.Figure:
    """The layout every chart here shares (title, height, margins, legend below), plus ``extra``."""
    fig.update_layout(
        title=chart_title(title), height=HEIGHT, margin={"l": 10, "r": 10, "t": TITLE_MARGIN, "b": 10},
        legend=LEGEND_BELOW, **extra,
    )  # fmt: skip
    return fig


def class_lines(
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


def run_trace(
    kind: type[go.Scatter] | type[go.Bar],
    run: str,
    x: list[str],
    y: Sequence[float | None],
    points: list[str],
    fmt: str,
    **style: Any,
) -> go.Scatter | go.Bar:
    """One run's line or bars, a point per layer: ``points`` names each in the hover (value as ``fmt``)."""
    return kind(
        x=x, y=y, name=html.escape(run), customdata=points,
        hovertemplate="%{customdata}: %{y:" + fmt + "}<extra>" + html.escape(run) + "</extra>", **style,
    )  # fmt: skip


def diverging(t: np.ndarray) -> np.ndarray:
    """Values in [-1, 1] ``(h, w)`` -> RGB float ``(h, w, 3)``: blue, white at 0, red."""
    t = t[..., None]
    return np.where(t >= 0, _WHITE + t * (_POS - _WHITE), _WHITE - t * (_NEG - _WHITE))


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
        rgb = np.kron(diverging(tile / peak), np.ones((scale, scale, 1), dtype=np.float32))
        r, c = divmod(i, cols)
        out[r * th : r * th + h * scale, c * tw : c * tw + w * scale] = rgb.round().astype(np.uint8)
    return out


def per_run(
    runs_shown: Mapping[str, str],
    read: Callable[[str], T | str | None],
    missing: Callable[[str, str | None], str],
) -> dict[str, T]:
    """Each run shown (label -> run id) read with ``read``: the ones that have it, by label.

    ``read`` gives a reason (str) or None where a run has nothing to show;
    each such run gets a note, ``missing(label, reason)``, in the order shown.
    """
    usable: dict[str, T] = {}
    for label, run_id in runs_shown.items():
        found = read(run_id)
        if found is None or isinstance(found, str):
            st.info(missing(label, found))
        else:
            usable[label] = found
    return usable
