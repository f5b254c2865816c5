"""Renderers of the Draw page (in ui/, not pages/: Streamlit lists every file there).

Its caches (models by run id, baselines, handwriting scores) are :mod:`ui.draw_cache`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from mnist_core import explain, handwriting, teach
from mnist_core.allmodels import Reading
from mnist_core.data import CLASS_NAMES
from mnist_core.errors import MnistLabError
from mnist_core.infer import Prediction
from mnist_core.report import percent
from mnist_core.runs import RunInfo
from ui.draw_cache import handwriting_score
from ui.shared import metric_row

if TYPE_CHECKING:  # torch itself loads through mnist_core, which tunes OpenMP first
    pass

REDRAWN_SIDE = 56  # px per re-drawing in the strip after a correction
GRID_MAX, CARD_WIDTH = 40, 104  # the "my handwriting" thumbnails (84 px) and their Delete buttons
HIGHLIGHT = "#ef553b"
BAR = "#9db4d9"
DISAGREE_STYLE = "background-color: rgba(239, 85, 59, 0.18)"
RUN_WIDTH = 200  # px: the All models table's Run column, so a phone shows what each run read
METHOD_LABELS = {  # the saliency caption's words for explain.method_for
    "gradient": "input gradients (SmoothGrad)",
    "occlusion": "occlusion (4x4 patches)",
}
STRATEGY_LABELS = {  # the Strategy radio's words for online.STRATEGIES
    "distill": "Example + replay, keeping the model's own answers on the replay (distillation)",
    "replay": "Example + replay, with the replay's true labels",
    "example": "Example only, no replay (for comparison: it damages the model)",
}


# -- text ----------------------------------------------------------------------


def run_label(info: RunInfo, best_id: str | None) -> str:
    """How a run appears in the picker: name, accuracy, and what it is."""
    parts = [info.name, percent(info.test_accuracy, 2)]
    if info.meta.get("parent"):
        parts.append(str(info.meta.get("kind") or "version"))
    if info.status != "completed":
        parts.append(info.status)
    if info.id == best_id:
        parts.append("best")
    return " · ".join(parts)


def class_names(dataset: str) -> tuple[str, ...]:
    return CLASS_NAMES.get(dataset, tuple(str(i) for i in range(10)))


# -- prediction ------------------------------------------------------------------


def probability_chart(pred: Prediction, dataset: str) -> go.Figure:
    """Bars for the 10 class probabilities, the predicted class highlighted."""
    names = class_names(dataset)
    colors = [HIGHLIGHT if i == pred.label else BAR for i in range(10)]
    fig = go.Figure(
        go.Bar(
            x=list(names),
            y=list(pred.probabilities),
            marker_color=colors,
            text=[f"{p:.0%}" if p >= 0.01 else "" for p in pred.probabilities],
            textposition="outside",
            hovertemplate="%{x}: %{y:.2%}<extra></extra>",
        )
    )
    fig.update_layout(
        height=260,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        yaxis={"range": [0, 1.12], "tickformat": ".0%", "title": None},
        xaxis={"type": "category", "title": None},
        showlegend=False,
    )
    return fig


def show_prediction(pred: Prediction, dataset: str) -> None:
    names = class_names(dataset)
    with metric_row():
        st.metric("Prediction", names[pred.label])
        st.metric("Confidence", percent(pred.confidence, 1))
        st.metric("Inference time", f"{pred.seconds * 1000:.2f} ms")
    if pred.warning:  # unsure: it may not be a digit (mnist_core.notadigit)
        st.warning(pred.warning, icon=":material/help:")
    # No toolbar: nothing to zoom in ten bars, and on a phone it covered the tallest bar's label.
    chart = probability_chart(pred, dataset)
    st.plotly_chart(chart, width="stretch", key="draw_probabilities", config={"displayModeBar": False})


# -- all models ------------------------------------------------------------------


def comparison_rows(readings: Sequence[Reading], dataset: str) -> list[dict[str, Any]]:
    """The table's rows: one per run, "(cannot be read)" after the name of a run that could not read it."""
    rows = []
    for reading in readings:
        info, pred = reading.run, reading.prediction
        row: dict[str, Any] = {"Run": info.name, "Test accuracy": info.test_accuracy, "Prediction": None,
                               "Confidence": None, "Probabilities": None}  # fmt: skip
        if pred is None:
            rows.append(row | {"Run": f"{info.name} (cannot read it: {reading.error or 'no prediction'})"})
            continue
        row |= {"Prediction": class_names(dataset)[pred.label], "Confidence": pred.confidence,
                "Probabilities": list(pred.probabilities)}  # fmt: skip
        rows.append(row)
    return rows


def comparison_frame(rows: Sequence[dict[str, Any]]) -> tuple[pd.DataFrame, str | None]:
    """One row per run; the majority prediction (None if no run could predict)."""
    frame = pd.DataFrame(rows)
    votes = Counter(r["Prediction"] for r in rows if r["Prediction"] is not None)
    majority = votes.most_common(1)[0][0] if votes else None
    # A run that could not read the drawing neither agrees nor disagrees: it is counted apart.
    frame["Agrees"] = [None if r["Prediction"] is None else r["Prediction"] == majority for r in rows]
    return frame, majority


def show_comparison(readings: Sequence[Reading], dataset: str) -> None:
    """Every run's reading of the drawing side by side; runs against the majority in red."""
    frame, majority = comparison_frame(comparison_rows(readings, dataset))
    if majority is None:
        st.warning("No run could read this drawing.")
        return
    agree = int((frame["Agrees"] == True).sum())  # noqa: E712  (None: could not read it)
    disagree = int((frame["Agrees"] == False).sum())  # noqa: E712
    unread = len(frame) - agree - disagree
    read = agree + disagree
    if disagree:
        st.markdown(
            f"**{agree} of {read} runs** read **{majority}**; :red[**{disagree} disagree**] (highlighted)."
        )
    elif read == 1:
        st.markdown(f"The one run that could read it reads **{majority}**." if unread else
                    f"The one saved run reads **{majority}**.")  # fmt: skip
    else:
        st.markdown(f"All **{read} runs** read **{majority}**.")
    if unread:
        runs_word = "runs" if unread > 1 else "run"
        st.caption(f"{unread} {runs_word} could not read it: the reason is beside the name.")

    def highlight(row: pd.Series) -> list[str]:
        return [DISAGREE_STYLE if row["Agrees"] is False else ""] * len(row)

    st.dataframe(
        frame.style.apply(highlight, axis=1),
        width="stretch",
        hide_index=True,
        column_order=["Run", "Prediction", "Confidence", "Probabilities", "Test accuracy", "Agrees"],
        placeholder="—",  # a run that cannot read it; Streamlit's default shows the word "None"
        column_config={
            "Run": st.column_config.TextColumn(width=RUN_WIDTH),  # not the whole of a phone's table
            "Confidence": st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0),
            "Probabilities": st.column_config.BarChartColumn("Probabilities 0-9", y_min=0.0, y_max=1.0),
            "Test accuracy": st.column_config.NumberColumn(format="percent"),
        },
    )


# -- before -> after -------------------------------------------------------------


def correction_result(taught: teach.Taught) -> dict[str, Any]:
    """What the page keeps of a correction in the session to show it: plain values, no model."""
    details = taught.details
    label = details.get("label")
    names = class_names(taught.parent.config.dataset)
    return {
        "id": taught.version.id, "name": taught.version.name, "parent": taught.parent.id,
        "parent_name": taught.parent.name, "details": details,
        "sample": None if taught.sample is None else taught.sample.id,
        "label_name": "" if label is None else names[label],
        "redrawn": None if taught.redrawn is None else {
            "pixels": taught.redrawn.pixels, "before": list(taught.redrawn.before),
            "after": list(taught.redrawn.after), "label": taught.redrawn.label,
        },
    }  # fmt: skip


def change(text: str) -> dict[str, Any]:
    """A metric's delta ("+0.12 points", "+3"), or "no change" without a green up arrow where the
    shown figure is zero ("+0.00 points" came with one)."""
    if float(text.split()[0]) == 0:
        return {"delta": "no change", "delta_color": "off", "delta_arrow": "off"}
    return {"delta": text}


def show_correction(result: dict[str, Any]) -> None:
    """The figures of the last correction, before -> after."""
    details = result["details"]
    single = "label" in details
    row = metric_row()
    if single:
        row.metric(
            f"P({result['label_name']}) for your drawing",
            percent(details["prob_after"], 1),
            **change(f"{100 * (details['prob_after'] - details['prob_before']):+.1f} points"),
            help=f"The model's probability that your drawing is a {result['label_name']}; "
            f"before: {percent(details['prob_before'], 1)}.",
        )
    else:
        row.metric(
            "Your drawings read correctly",
            f"{details['learned']} / {details['examples']}",
            **change(f"{details['learned'] - details['known_before']:+d}"),
            help=f"Before: {details['known_before']} / {details['examples']}.",
        )
    drop = 100 * (details["accuracy_after"] - details["accuracy_before"])
    row.metric(
        "Test accuracy",
        percent(details["accuracy_after"], 2),
        **change(f"{drop:+.2f} points"),
        help=f"Before: {percent(details['accuracy_before'], 2)} on {details['eval_size']:,} test images.",
    )
    row.metric(
        "Test images right → wrong",
        f"{details['flipped_right_to_wrong']}",
        delta=f"{details['flipped_wrong_to_right']} wrong → right",
        delta_color="off",
        delta_arrow="off",
    )
    remembered = details.get("remembered", 0)  # absent in versions saved before the memory
    tuned = details["steps_taken"] > 0 or not remembered
    row.metric(
        "Fine-tuning" if tuned else "Remembered",
        f"{details['steps_taken']} steps" if tuned else f"{remembered} drawings",
        delta=f"{details['seconds']:.1f} s with both evaluations",
        delta_color="off",
        delta_arrow="off",
        help="Drawings the version keeps beside the network (yours and their re-drawings, with earlier "
        f"corrections'): {remembered}. Fine-tuning steps: {details['steps_taken']}.",
    )
    if result.get("redrawn"):
        show_redrawn(result["redrawn"], result["label_name"])


def show_redrawn(redrawn: dict[str, Any], label_name: str) -> None:
    """A strip of fresh re-drawings of the taught digit, each with the new version's reading."""
    after, before, label = redrawn["after"], redrawn["before"], redrawn["label"]
    right, was = sum(p == label for p in after), sum(p == label for p in before)
    st.markdown(
        f"**Drawn again:** the new version reads **{right} of {len(after)}** re-drawings of your "
        f"{label_name} right (before the correction: {was} of {len(before)})."
    )
    captions = [f"{p} ✓" if p == label else f"{p} ✗" for p in after]
    st.image([explain.enlarge(px, 2) for px in redrawn["pixels"]], caption=captions, width=REDRAWN_SIDE)
    st.caption(
        "The same digit as you might draw it again: a little larger or smaller, slanted, thicker or "
        "thinner, wobbling slightly; none of these was learned. Several still wrong? Draw the digit "
        "again and teach that drawing too."
    )


# -- my handwriting --------------------------------------------------------------


def sample_grid(
    samples: Sequence[handwriting.Sample], folder: Path, on_delete: Callable[[str], None]
) -> None:
    """The newest drawings as thumbnails with their label and a Delete button each.

    Cards of their own width in a row that wraps: ten equal columns cut the
    buttons to "D…" at 1280 px, and a phone stacked them one per line.
    """
    shown = samples[:GRID_MAX]
    if len(samples) > GRID_MAX:
        st.caption(f"The newest {GRID_MAX} of {len(samples)}.")
    grid = st.container(horizontal=True, gap="small")
    for sample in shown:
        card = grid.container(width=CARD_WIDTH, gap="xsmall", horizontal_alignment="center")
        try:
            pixels = handwriting.load_pixels(sample.id, folder)
        except MnistLabError:
            card.caption("unreadable")
            continue
        card.image(explain.enlarge(pixels, 3), caption=f"{sample.label}")
        card.button("Delete", key=f"draw_delete_{sample.id}", on_click=on_delete, args=(sample.id,),
                    icon=":material/close:", width="stretch")  # fmt: skip


def accuracy_rows(
    runs: Sequence[RunInfo], scores: Callable[[RunInfo], handwriting.Score | None]
) -> list[dict[str, Any]]:
    """The table's rows: each MNIST run's accuracy on the set, how many drawings it remembers, and
    its accuracy on the others (a run's memory reads the drawings it was taught as taught)."""
    rows = []
    for info in runs:
        if info.config.dataset != "mnist":
            continue
        score = scores(info)
        what = (info.meta.get("details") or {}).get("what") if info.meta.get("parent") else ""
        rows.append({
            "Run": info.name, "MNIST test accuracy": info.test_accuracy,
            "My handwriting": None if score is None else score.accuracy,
            "Remembered": None if score is None else f"{score.remembered} of {score.total}",
            "Not remembered": None if score is None else score.accuracy_unseen,
            "Correction": what or "",
        })  # fmt: skip
    return rows


def accuracy_table(runs: Sequence[RunInfo], folder: Path, sample_ids: tuple[str, ...]) -> None:
    """Each MNIST run's accuracy on the "my handwriting" set beside its MNIST test accuracy."""

    def scores(info: RunInfo) -> handwriting.Score | None:
        try:
            return handwriting_score(info.id, str(info.path.parent), info.updated, str(folder), sample_ids)
        except MnistLabError:
            return None

    st.dataframe(
        accuracy_rows(runs, scores), width="stretch", hide_index=True,
        placeholder="—",
        column_config={
            "MNIST test accuracy": st.column_config.NumberColumn(format="percent"),
            "My handwriting": st.column_config.NumberColumn(format="percent"),
            "Remembered": st.column_config.TextColumn(
                help="Drawings of the set the version's memory reads as taught: those it was taught (or "
                "close to them)."
            ),
            "Not remembered": st.column_config.NumberColumn(
                format="percent", help="Accuracy on the drawings the version does not remember."
            ),
        },
    )  # fmt: skip
    st.caption(
        "A corrected version remembers the drawings it was taught and reads them as taught, so its score "
        "on *My handwriting* counts them (see *Remembered*); *Not remembered* is its accuracy on the "
        "others. A version fine-tuned on your handwriting has seen these drawings too: its score on them "
        "is flattering."
    )
