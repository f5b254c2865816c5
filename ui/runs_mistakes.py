"""The Runs page's "Mistakes" view: the test digits a run gets wrong, or only one of two runs.

Not a page (app.py lists the pages): ``ui.runs_views`` shows it. ``mnist_core.compare``
reads the misclassified indices and ``mnist_core.gallery`` the digits and each run's
predictions; what is read from a run folder is cached by run id and the folder's stamp.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from mnist_core import compare, gallery, runs
from mnist_core.errors import MnistLabError
from ui import choices
from ui.runs_manage import K
from ui.shared import literal

GALLERY_MAX = 48
DIGIT_PX = 84  # a gallery digit, wide enough for "#10000: 6→5" on one line


# -- reading (cached) ------------------------------------------------------------------


@st.cache_data(max_entries=500, show_spinner=False)
def details(runs_dir: str, run_id: str, stamp: int) -> dict[str, Any]:
    """What the table leaves out: confusion matrix, misclassified digits, dataset."""
    try:
        info = runs.load_run(run_id, runs_dir)
    except MnistLabError as exc:
        return {"error": str(exc)}
    return {
        "confusion": compare.confusion(info.summary),
        "misclassified": compare.misclassified(info.summary),
        "tested": info.test_accuracy is not None,
        "dataset": info.config.dataset,
    }


@st.cache_data(max_entries=64, show_spinner=False)
def predictions(runs_dir: str, run_id: str, stamp: int, indices: tuple[int, ...]) -> list[int] | str:
    try:
        return gallery.predictions(run_id, indices, runs_dir).tolist()
    except MnistLabError as exc:
        return str(exc)


def _tested(found: Mapping[str, Any], name: str) -> bool:
    """Whether a run has test results; says so when it has none (a failed or stopped run)."""
    if found.get("tested"):
        return True
    st.info(f"{literal(name)} has no test results (it did not finish): it has no mistakes to show.")
    return False


# -- the view ------------------------------------------------------------------------------


def mistakes_view(rows: list[dict[str, Any]], runs_dir: str, stamps: Mapping[str, int]) -> None:
    by_id = {r["id"]: r for r in rows}
    labels = choices.run_labels(rows)
    ids, name = list(labels), choices.labeller(labels)
    c1, c2 = st.columns(2)
    choices.sync_single(f"{K}gal_a", labels)
    choices.sync_single(f"{K}gal_b", labels, default=None)
    a = c1.selectbox("Run", ids, format_func=name, key=f"{K}gal_a")
    b = c2.selectbox("Compare with", [None, *ids], format_func=name, key=f"{K}gal_b")
    if a is None:
        return
    da = details(runs_dir, a, stamps.get(a, 0))
    try:
        n_test = gallery.test_size(da.get("dataset", "mnist"))
    except MnistLabError as exc:
        st.info(f"The test images are needed for this view. {exc}")
        return
    if not _tested(da, by_id[a]["name"]):
        return
    wrong_a = [i for i in da.get("misclassified", []) if i < n_test]
    if b is None or b == a:
        digits(
            f"{len(wrong_a)} test digits {literal(by_id[a]['name'])} gets wrong",
            wrong_a,
            {a: by_id[a]},
            da.get("dataset", "mnist"),
            runs_dir,
            stamps,
        )
        return
    db = details(runs_dir, b, stamps.get(b, 0))
    if not _tested(db, by_id[b]["name"]):
        return
    if db.get("dataset") != da.get("dataset"):
        st.info("These runs were tested on different datasets.")
        return
    only_a, only_b = compare.disagreement(wrong_a, [i for i in db.get("misclassified", []) if i < n_test])
    pair = {a: by_id[a], b: by_id[b]}
    digits(
        f"{len(only_a)} digits only {literal(by_id[a]['name'])} gets wrong",
        only_a,
        pair,
        da["dataset"],
        runs_dir,
        stamps,
    )
    digits(
        f"{len(only_b)} digits only {literal(by_id[b]['name'])} gets wrong",
        only_b,
        pair,
        da["dataset"],
        runs_dir,
        stamps,
    )


def digits(
    title: str,
    indices: list[int],
    runs_shown: Mapping[str, Mapping[str, Any]],
    dataset: str,
    runs_dir: str,
    stamps: Mapping[str, int],
) -> None:
    """A gallery of test digits with their label and each run's prediction."""
    st.markdown(title)
    if not indices:
        return
    shown = tuple(indices[:GALLERY_MAX])
    images, labels = gallery.test_digits(dataset, shown)
    preds = {i: predictions(runs_dir, i, stamps.get(i, 0), shown) for i in runs_shown}
    failed = {i: p for i, p in preds.items() if isinstance(p, str)}
    for run_id, reason in failed.items():
        st.caption(f"No predictions for {literal(runs_shown[run_id]['name'])}: {reason}")
    captions = []
    for k, (index, label) in enumerate(zip(shown, labels, strict=True)):
        said = " / ".join(str(p[k]) for p in preds.values() if not isinstance(p, str))
        captions.append(f"#{index}: {label}→{said}" if said else f"#{index}: {label}")
    st.image(list(images), caption=captions, width=DIGIT_PX)  # one caption line ("#1014: 6 →" / "5" was two)
    more = f" (first {GALLERY_MAX} of {len(indices)})" if len(indices) > GALLERY_MAX else ""
    each = " of each run" if len(preds) > 1 else ""
    st.caption(f"Under each digit: its test index, then the true label→the prediction{each}{more}.")
