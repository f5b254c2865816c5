"""Live charts that a redraw updates in place: the user's zoom survives, the DOM node stays.

Not a page. :func:`live_chart` is the one function pages call (through
:func:`live_learning_curves` and ``ui.live_layers``); no page knows which
library draws. ``st.plotly_chart`` cannot do this in Streamlit 1.67 (a changed
figure is a new element: zoom lost, everything redrawn, see ``ui/charts.py``),
so a live chart is a custom component (components v2) whose identity is its
key: on every rerun its JS receives new data on the same DOM node and hands it
to uPlot (vendored in ``live_chart_assets/``, no CDN), which keeps the scales a
user zoomed to; a double-click resets them; "Pause chart" freezes the view.

What travels per redraw (measured by ``tests/app/test_live_chart.py``): a
~1 kB bootstrap (``bootstrap.js``) and the points that are new since the last
redraw of that element. The chart's code (uPlot and ``live_chart.js``, ~57 kB)
and the panels' description travel once: components v2 serves files only for
installed packages that declare an asset directory, so the code rides in the
element's data the first time this browser session draws a live chart, and the
browser keeps it in ``window``. The element tells Python (trigger ``need``)
when what it holds does not continue (a remount after leaving the page, a new
tab, a lost message): the next redraw then sends the whole history, thinned.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from mnist_core import curves as core_curves
from mnist_core.curves import Point
from ui.charts import TRAIN_COLOR, VAL_COLOR

ASSETS = Path(__file__).with_name("live_chart_assets")
COMPONENT_NAME = "mnist_lab.live_chart"
HEIGHT = 300
DECIMALS = 6  # sent per value: 0.123457, not 0.12345678901234 (halves the JSON of a long run)
MAX_ROWS = 4000  # rows of a full set per panel (live_chart.js thins its own beyond this too)
SENT_KEY = "_live_chart_sent"  # session state: what each element was last sent
LIB_KEY = "_live_chart_lib_sent"  # session state: this session's browser has the chart's code
MAX_TRACKED = 64  # elements remembered per session

Row = list[float | None]  # [x, y of series 0, y of series 1, ...]
RowsFn = Callable[[Sequence[Point]], list[list[Row]]]  # the rows of these points, per panel


@dataclass(frozen=True)
class Series:
    """One line of a panel. ``markers`` draws a dot at each point (rows with one are never thinned)."""

    name: str
    color: str
    markers: bool = False


@dataclass(frozen=True)
class Panel:
    """One chart of a live view. ``y_range`` fixes the y axis; ``percent`` labels it in %; ``log`` is log10.

    ``percent`` with ``y_range=(0, 1)`` keeps an accuracy axis within 0-100%.
    ``steps_per_x`` (optimizer steps per x unit) lets a hover show the step.
    """

    title: str
    series: Sequence[Series]
    y_label: str = ""
    x_label: str = "epoch"
    y_range: tuple[float, float] | None = None
    percent: bool = False
    log: bool = False
    steps_per_x: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["series"] = [asdict(s) for s in self.series]
        out["y_range"] = list(self.y_range) if self.y_range else None
        return out


@dataclass(frozen=True)
class LiveView:
    """What a live chart draws: its panels, and how a run's points become each panel's rows."""

    panels: Sequence[Panel]
    rows: RowsFn


@dataclass(frozen=True)
class Sent:
    """What an element was last sent: run ``run``'s first ``n`` points; ``last`` identifies the n-th."""

    run: str
    n: int
    last: tuple[float, ...] = field(default=())


# -- the chart's code ------------------------------------------------------------------------


def _text(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


@cache
def library() -> tuple[str, str]:
    """The chart's code (uPlot, then the glue) and its CSS: sent once per browser session."""
    return _text("uPlot.iife.min.js") + "\n" + _text("live_chart.js"), _text("uPlot.min.css") + "\n" + _text(
        "live_chart.css"
    )


@cache
def bootstrap() -> str:
    """The element's own JS (``bootstrap.js``): keeps the chart's code in ``window``, once per app version.

    The code comes once per browser session, with the first element a page run
    draws (:data:`LIB_KEY`). The browser may render the elements of a page run
    in any order: one rendered before the element that brings the code waits
    for it and is drawn when it comes. Only when no code has come a second
    later (a new tab of an old session) does it ask for it (trigger ``need``).
    """
    code, css = library()
    version = hashlib.sha256((code + css).encode()).hexdigest()[:12]  # a new app version reloads the code
    return _text("bootstrap.js").replace("LIB_VERSION", version)


@cache
def _component() -> Any:
    return st.components.v2.component(COMPONENT_NAME, js=bootstrap(), isolate_styles=False)


# -- what a redraw sends (no Streamlit: tested directly) -----------------------------------------


def _fingerprint(points: Sequence[Point], n: int) -> tuple[float, ...]:
    """The n-th point's step, kind and loss: a history that changed before it is sent again whole."""
    if n == 0:
        return ()
    p = points[n - 1 : n]
    step, loss = core_curves.column(p, "step")[0], core_curves.column(p, "loss")[0]
    is_step = bool(core_curves.split(p, 1)[0])
    return (float(step), float(loss), float(is_step))


def rounded(values: np.ndarray) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in np.round(values, DECIMALS).tolist()]


def _thin(rows: list[Row], markers: Sequence[int], max_rows: int) -> list[Row]:
    """At most about ``max_rows`` rows, evenly spaced, and every row with a marker series' point."""
    if len(rows) <= max_rows:
        return rows
    keep = set(core_curves.thin(len(rows), max_rows).tolist())
    return [r for i, r in enumerate(rows) if i in keep or any(r[j] is not None for j in markers)]


def payload(
    sent: Sent | None, run: str, view: LiveView, points: Sequence[Point], height: int = HEIGHT
) -> tuple[dict[str, Any], Sent]:
    """The data of one redraw and what the element then holds.

    Only the points after the ``sent.n`` the element already has, unless it has
    none of this run, or the history changed under it: then the whole history
    (``spec`` present), each panel's rows thinned to :data:`MAX_ROWS`.
    """
    n = len(points)
    fresh = sent is None or sent.run != run or sent.n > n or sent.last != _fingerprint(points, sent.n)
    start = 0 if fresh or sent is None else sent.n
    rows = view.rows(points[start:])
    data: dict[str, Any] = {"run": run, "from": start, "n": n, "rows": rows}
    if fresh:
        data["spec"] = {"height": int(height), "panels": [p.as_dict() for p in view.panels]}
        data["rows"] = [
            _thin(r, [j + 1 for j, s in enumerate(p.series) if s.markers], MAX_ROWS)
            for r, p in zip(rows, view.panels, strict=True)
        ]
    return data, Sent(run, n, _fingerprint(points, n))


# -- the element ---------------------------------------------------------------------------------


def _sent_state() -> dict[str, Sent]:
    return st.session_state.setdefault(SENT_KEY, {})


def _forget(key: str) -> None:
    """The element asked for everything (trigger ``need``): its next data is the full set and the code."""
    _sent_state().pop(key, None)
    st.session_state[LIB_KEY] = False


def live_chart(key: str, run: str, view: LiveView, points: Sequence[Point], height: int = HEIGHT) -> None:
    """Draw ``view`` of ``points`` (the whole history of ``run`` so far) as one live element.

    A later call with the same ``key`` sends only the points added since and
    updates the element in place: same DOM node, the user's zoom kept. A new
    ``run`` under the same key starts the chart afresh.
    """
    sent = _sent_state()
    data, sent[key] = payload(sent.get(key), run, view, points, height)
    if "spec" in data and not st.session_state.get(LIB_KEY):
        data["lib"], data["css"] = library()
        st.session_state[LIB_KEY] = True
    if len(sent) > MAX_TRACKED:
        sent.pop(next(iter(sent)))
    _component()(key=key, data=data, height="content", on_need_change=partial(_forget, key))


def _noop() -> None:
    """A trigger's callback: the trigger itself reruns the page (or the fragment the element is in)."""


def polled_chart(
    key: str,
    run: str,
    view: LiveView | None,
    url: str,
    height: int = HEIGHT,
    status: bool = False,
    compact: bool = False,
    page: str | None = None,
    caption: str = "",
    ask: bool = True,
) -> bool:
    """Draw a live view once per page run; its JS fetches the points from ``url`` and appends them in place.

    ``url`` (relative to the app: ``ui/live_route.py``) answers ``?from=N``
    with the rows after the N points the chart holds, and the job's status,
    so no rerun is needed to update it: it asks twice a second until the run
    ends. A page rerun sends only the spec (~1 kB): the element keeps what it
    holds and goes on asking. ``view`` None: the panels come with the first
    answer that has points (the per-layer statistics). ``status``: the element
    also draws the progress bar and the metrics (``compact``: no learning
    rate) above the chart. ``caption``: a caption under it, once it draws.

    When the job has ended, or the route's ``page`` differs from the ``page``
    given here (a job queued, started or stopped elsewhere), the element sets
    its trigger ``ended``: the page reruns once (or, inside a fragment, the
    fragment: True is then returned, so the caller can rerun the page); not with
    ``ask`` False (a second element of the same job leaves it to the first).
    """
    spec = {"height": int(height), "panels": [p.as_dict() for p in view.panels]} if view is not None else None
    data: dict[str, Any] = {"run": run, "poll": url, "spec": spec, "height": int(height)}
    data |= {"status": status, "compact": compact, "page": page, "caption": caption, "ask": ask}
    if not st.session_state.get(LIB_KEY):
        data["lib"], data["css"] = library()
        st.session_state[LIB_KEY] = True
    _sent_state().pop(key, None)  # a fallback redraw under this key would start afresh
    result = _component()(
        key=key,
        data=data,
        height="content",
        on_need_change=partial(_forget, key),
        on_ended_change=_noop,
    )
    return bool(getattr(result, "ended", None))


# -- learning curves -----------------------------------------------------------------------------


def steps_per_epoch(points: Sequence[Point]) -> float | None:
    """Optimizer steps per epoch of a run (for the hover), from its first point; None if unknown."""
    if not points:
        return None
    total, epochs = (core_curves.column(points[:1], name)[0] for name in ("total_steps", "epochs"))
    return float(total / epochs) if np.isfinite(total) and np.isfinite(epochs) and epochs > 0 else None


def series_rows(x: np.ndarray, y: np.ndarray, slot: int, width: int) -> list[Row]:
    """Rows of one series: ``[x, None, ..., y at slot, ..., None]`` of ``width`` series."""
    rows: list[Row] = []
    for xi, yi in zip(rounded(x), rounded(y), strict=True):
        row: Row = [xi] + [None] * width
        row[slot + 1] = yi
        rows.append(row)
    return rows


def by_x(rows: list[Row]) -> list[Row]:
    """Rows in order of x (stable: rows at one x keep their order; live_chart.js merges them)."""
    return sorted(rows, key=lambda r: math.inf if r[0] is None else r[0])


def _curve_rows(points: Sequence[Point]) -> list[list[Row]]:
    """Loss and accuracy rows ``[x, train, validation]``: steps at the epochs elapsed, epochs at the epoch."""
    steps, epochs = core_curves.split(points, len(points) or 1)
    x_step, x_epoch = core_curves.epochs_elapsed(steps), core_curves.column(epochs, "epoch")
    panels = []
    for train, val in (("loss", "val_loss"), ("train_acc", "val_acc")):
        rows = series_rows(x_step, core_curves.column(steps, train), 0, 2)
        panels.append(by_x(rows + series_rows(x_epoch, core_curves.column(epochs, val), 1, 2)))
    return panels


def learning_curve_view(per: float | None = None) -> LiveView:
    """Loss and accuracy (0-100%): training per step point, validation per epoch; ``per``: steps/epoch."""

    def series() -> list[Series]:
        return [Series("train (running)", TRAIN_COLOR), Series("validation", VAL_COLOR, markers=True)]

    return LiveView(
        [
            Panel("Loss", series(), y_label="cross-entropy", steps_per_x=per),
            Panel("Accuracy", series(), y_label="accuracy", y_range=(0, 1), percent=True, steps_per_x=per),
        ],
        _curve_rows,
    )


def live_learning_curves(key: str, run: str, points: Sequence[Point], height: int = HEIGHT) -> bool:
    """The live loss and accuracy chart of a run's progress ``points``; False (nothing drawn) before any."""
    if not points:
        return False
    live_chart(key, run, learning_curve_view(steps_per_epoch(points)), points, height=height)
    return True


def polled_learning_curves(
    key: str,
    run: str,
    url: str,
    height: int = HEIGHT,
    compact: bool = False,
    page: str | None = None,
    status: bool = True,
) -> bool:
    """A run's progress bar, metrics and live loss and accuracy, all served by ``url`` (:func:`polled_chart`).

    Its spec is the same at every page run (the element keeps what it holds):
    the steps per epoch its hover shows come with the points (``per``).
    """
    return polled_chart(
        key, run, learning_curve_view(), url, height=height, status=status, compact=compact, page=page
    )
