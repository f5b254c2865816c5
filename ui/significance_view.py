"""The Runs page's "Is the difference real?" view: paired tests against the best run, and calibration.

``mnist_core.significance`` computes (McNemar's exact test, a bootstrap interval,
Holm's correction, reliability diagrams); this module caches its answer by the
runs' folder stamps and draws the verdict table and one reliability diagram per
run. A run saved before these figures existed is measured once on the test set
(a spinner says so) and the result is kept in its folder.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from mnist_core import significance
from mnist_core.calibration import Reliability
from mnist_core.errors import MnistLabError
from mnist_core.significance import Comparison

VIEW = "Is the difference real?"
MAX_RUNS = 20  # each older run costs one pass over the test set the first time
PER_ROW = 3
KEY = "runs_reliability_"
INTRO = (
    "Each run against the most accurate one, on the same test images: McNemar's exact test on the images "
    "one gets right and the other wrong, a bootstrap 95% interval of the accuracy difference, and Holm's "
    "correction when several runs are compared. These tests are about these trained models: \"real\" means "
    "they differ on images like these, not that one configuration beats the other. Retrained with another "
    "seed, a model moves too (two seeds of the blog's 784-512-10 on MNIST differed by 0.9 points, a "
    "\"real\" difference by this test): to compare configurations, repeat each with 3 seeds (Train page) "
    "and read the Runs table's mean ± standard deviation."
)


@st.cache_data(max_entries=64, show_spinner=False)
def comparison(runs_dir: str, run_ids: tuple[str, ...], stamps: tuple[int, ...]) -> Comparison | str:
    """The tests for ``run_ids``, or the reason they cannot be compared; ``stamps`` is only the cache key."""
    try:
        return significance.compare_runs(run_ids, runs_dir)
    except MnistLabError as exc:
        return str(exc)


def significance_view(rows: list[dict[str, Any]], runs_dir: str, stamps: Mapping[str, int]) -> None:
    """Verdicts for the picked runs (with results) and a reliability diagram per run."""
    usable = [r for r in rows if r.get("test_accuracy") is not None]
    if len(usable) < 2:
        st.info("Pick at least two runs with test results to see whether their difference is real.")
        return
    if len(usable) > MAX_RUNS:
        st.info(f"Comparing the first {MAX_RUNS} of the {len(usable)} runs picked; pick fewer to see others.")
        usable = usable[:MAX_RUNS]
    ids = tuple(r["id"] for r in usable)
    with st.spinner("Measuring the runs' per-image results (once per older run)…"):
        found = comparison(runs_dir, ids, tuple(stamps.get(i, 0) for i in ids))
    if isinstance(found, str):
        st.error(f"These runs cannot be compared: {found}")
        return
    st.caption(INTRO)
    siblings = across_seeds(usable)
    verdicts(found, siblings)
    st.markdown("**Calibration**: how often each run is right when it says it is x% sure.")
    reliability_grid(found)


def across_seeds(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Configurations picked with 2+ seeds, tested over their seeds (:func:`significance.across_seeds`).

    Drawn first, as it answers the question a learner asks ("is this width
    better?"); returns run id -> its configuration's label, so the per-model
    lines can say when two runs are seeds of one configuration.
    """
    found = significance.across_seeds(rows)
    if found.tests:
        st.markdown("**Across seeds**: is one configuration better than another, seed noise included?")
        for test in found.tests:
            icon = ":material/check_circle:" if test.real else ":material/balance:"
            st.markdown(f"{icon} {_md(test.verdict)}")
        st.markdown("**These trained models**, image by image:")
    return found.config_of


def verdicts(found: Comparison, siblings: Mapping[str, str] | None = None) -> None:
    """One line per run against the best: the difference, its interval, p after Holm, the verdict.

    ``siblings``: run id -> its configuration, for runs picked with other seeds of it; a line
    comparing two seeds of one configuration says so.
    """
    best = found.tests[0].a
    config_of = {rec.label: (siblings or {}).get(rec.id) for rec in found.records}
    for test in found.tests:
        icon = ":material/check_circle:" if test.real else ":material/balance:"
        same = config_of.get(test.a) is not None and config_of.get(test.a) == config_of.get(test.b)
        note = " — two seeds of one configuration: this is seed noise, not a better setting" if same else ""
        st.markdown(f"{icon} {_md(test.verdict)}{note}")
    st.dataframe(
        verdict_frame(found), hide_index=True, width="stretch", placeholder="—",
        column_config={
            # Written by Python: the grid's own "%.2g" gave "0.0000021" beside "7e-8".
            "p (Holm)": st.column_config.TextColumn(help="Holm-adjusted p-value, 2 significant digits"),
            "Verdict": st.column_config.TextColumn(width=VERDICT_WIDTH),  # "within noise" was cut short
        },
    )  # fmt: skip
    st.caption(
        f"Best run: {_md(best)}. Difference in points of accuracy (run minus best); p-values after Holm's "
        "correction over the comparisons shown. NLL is the mean test cross-entropy; ECE the expected "
        "calibration error over 15 confidence bins."
    )


VERDICT_WIDTH = 110  # px: "within noise" whole
# The verdict beside the name (it was off screen at 1280 px), then the test, then the figures.
VERDICT_COLUMNS = ("Run", "Verdict", "vs best (points)", "95% interval", "p (Holm)", "Only best right",
                   "Only this right", "Accuracy (%)", "Test NLL", "ECE (%)")  # fmt: skip


def verdict_frame(found: Comparison) -> pd.DataFrame:
    """The table: every run, best first, with its accuracy, NLL, ECE and its test against the best."""
    by_label = {t.b: t for t in found.tests}
    rows = []
    for rec in sorted(found.records, key=lambda r: -r.accuracy):
        test = by_label.get(rec.label)
        rows.append({
            "Run": rec.label,
            "Accuracy (%)": round(100 * rec.accuracy, 2),
            "Test NLL": rec.test_loss,
            "ECE (%)": None if rec.reliability is None else round(100 * rec.reliability.ece, 2),
            "vs best (points)": None if test is None else round(100 * test.diff, 2),
            "95% interval": "best" if test is None else f"{100 * test.low:.2f} to {100 * test.high:.2f}",
            "Only best right": None if test is None else test.only_a,
            "Only this right": None if test is None else test.only_b,
            "p (Holm)": None if test is None else f"{test.p_adjusted:.2g}",
            "Verdict": "best" if test is None else ("real" if test.real else "within noise"),
        })
    return pd.DataFrame(rows)[list(VERDICT_COLUMNS)]


def reliability_grid(found: Comparison) -> None:
    records = [(r, r.reliability) for r in found.records if r.reliability is not None]
    missing = [r.label for r in found.records if r.reliability is None]
    if missing:
        st.caption(
            "No calibration for " + ", ".join(_md(m) for m in missing) + ": their weights or the test "
            "data are not here to measure it (the tests above use their saved mistakes)."
        )
    for start in range(0, len(records), PER_ROW):
        cols = st.columns(PER_ROW)
        for col, (rec, rel) in zip(cols, records[start : start + PER_ROW], strict=False):
            col.plotly_chart(reliability_figure(rec.label, rel), width="stretch", key=f"{KEY}{rec.id}")


def reliability_figure(label: str, rel: Reliability) -> go.Figure:
    """Accuracy per confidence bin (bars, width = bin) against the diagonal a calibrated model follows."""
    centers = [(lo + hi) / 2 for lo, hi in zip(rel.edges, rel.edges[1:], strict=False)]
    width = rel.edges[1] - rel.edges[0]
    fig = go.Figure()
    fig.add_bar(
        x=centers, y=list(rel.accuracy), width=width, name="accuracy", marker_color="#4c78a8",
        customdata=list(zip(rel.counts, rel.confidence, strict=True)),
        hovertemplate="confidence %{x:.2f}: right %{y:.1%} of %{customdata[0]} images<extra></extra>",
    )
    diagonal = {"dash": "dash", "color": "gray"}
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="calibrated", line=diagonal, hoverinfo="skip")
    fig.update_layout(
        title={"text": f"{html.escape(label)}<br><sup>ECE {100 * rel.ece:.2f}%</sup>"},
        xaxis={"title": "confidence", "range": [0, 1]},
        yaxis={"title": "accuracy", "range": [0, 1]},
        showlegend=False, height=320, margin={"l": 40, "r": 10, "t": 60, "b": 40},
    )
    return fig


def _md(text: str) -> str:
    """A run name as typed, safe in Markdown (no link, emphasis or HTML from a name)."""
    return "".join("\\" + c if c in "\\`*_{}[]()#+-.!<>|~$:" else c for c in text)
