"""Draw page: draw or upload a digit, see what a saved model reads and why, and correct it.

Thin UI: ``mnist_core.infer`` turns the drawing into the 28x28 input and
predicts, ``mnist_core.explain`` makes the saliency map, ``mnist_core.online``
fine-tunes a copy of the model on a correction, ``mnist_core.runs`` saves it
as a new version, and ``mnist_core.handwriting`` keeps every corrected
drawing. Fine-tuning runs in the Teach button's ``on_click`` callback, so the
page drawn after the click already uses the new version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from mnist_core import allmodels, explain, handwriting, infer, online, teach
from mnist_core import data as core_data
from mnist_core.errors import ImageError, MnistLabError
from mnist_core.runs import RunInfo, best_of, delete_run, lineage
from ui import choices, inside_charts
from ui import draw_widgets as w
from ui.shared import SESSION, flash, literal, show_flash
from ui.shell import require_shell

if TYPE_CHECKING:  # torch itself loads through mnist_core, which tunes OpenMP first
    import torch

K = "draw_"  # session-state key prefix of this page
RUN_KEY, SOURCE_KEY, STROKE_KEY, COUNTER_KEY = f"{K}run", f"{K}source", f"{K}stroke", f"{K}canvas_n"
LABEL_KEY, COMPARE_KEY, UPLOAD_KEY = f"{K}true_label", f"{K}compare", f"{K}upload"
RESULT_KEY, FLASH_KEY, HW_FLASH_KEY = f"{K}last_correction", f"{K}flash", f"{K}handwriting_flash"
SETTING_KEYS = {
    name: f"{K}setting_{name}"
    for name in ("memory", "strategy", "steps", "stop_at", "lr", "replay_size", "views")
}
CANVAS_SIDE = 280
CANVAS_MARGIN = 20  # px around the canvas component (its toolbar and border)
TOOLBAR_ROOM = 8  # px above the canvas (+ two 16-px gaps between elements) for its floating toolbar
SEEN_SCALE = 6  # screen pixels per input pixel in "what the model sees" and its explanation
LEARNING_RATES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3)
REPLAY_SIZES = (8, 16, 32, 64, 128, 256, 512)
SELECTABLE = ("completed", "stopped", "interrupted")  # runs with weights to read
DEFAULTS = online.CorrectionSettings()


def canvas_key() -> str:
    return f"{K}canvas_{st.session_state.get(COUNTER_KEY, 0)}"


def main() -> None:
    require_shell(__file__)
    st.title("Draw")
    info, runs = pick_run()
    if info is None:
        return
    tab_draw, tab_mine = st.tabs(["Draw and predict", "My handwriting"])
    with tab_draw:
        draw_tab(info, runs)
    with tab_mine:
        handwriting_tab(info, runs)


# -- the run ---------------------------------------------------------------------


def pick_run() -> tuple[RunInfo | None, list[RunInfo]]:
    """The run picker (default: the best completed run); None when there is nothing to read with."""
    try:
        runs = [r for r in w.saved_runs() if r.status in SELECTABLE]
        best = best_of(runs)
    except MnistLabError as exc:
        st.error(str(exc))
        return None, []
    if not runs:
        st.info(
            "No saved model yet. Train one first: the quick default model on the Home page "
            "takes under half a minute.",
            icon=":material/info:",
        )
        st.page_link("pages/home.py", label="Train the quick default model", icon=":material/home:")
        return None, []
    by_id = {r.id: r for r in runs}
    wanted = st.query_params.get("run")  # a link from another page: "draw with this run"
    if wanted is not None:
        del st.query_params["run"]  # once: the picker decides from now on
        if wanted in by_id:
            st.session_state[RUN_KEY] = wanted
    default = best.id if best is not None and best.id in by_id else runs[0].id
    best_id = best.id if best else None
    labels = choices.unique_labels({rid: w.run_label(info, best_id) for rid, info in by_id.items()})
    # A run renamed in another tab: the browser sends back its old label; map it to the run, not to the best.
    choices.sync_single(RUN_KEY, labels, default=default)
    if st.session_state.get(RUN_KEY) not in by_id:  # first visit, or the run was deleted
        st.session_state[RUN_KEY] = default
    run_id = st.selectbox(
        "Model",
        list(labels),
        format_func=choices.labeller(labels),
        key=RUN_KEY,
        help="Any saved run; the best completed one is picked first. Corrections are saved as new versions.",
    )
    info = by_id[run_id]
    # Always one element here, lineage or not: a caption that came and went (Teach it, Undo, another
    # run) moved the tabs below it, and the browser remounted the canvas blank under the old prediction.
    lineage_line = st.empty()
    if info.meta.get("parent"):
        chain = " → ".join(literal(r.name) for r in lineage(info.id, info.path.parent))
        lineage_line.caption(f"Lineage: {chain}")
    return info, runs


# -- drawing, prediction, explanation ------------------------------------------------


def draw_tab(info: RunInfo, runs: list[RunInfo]) -> None:
    try:
        model, cfg = w.model_of(info)
    except MnistLabError as exc:
        st.error(f"This run's model cannot be loaded: {exc}")
        return
    row = st.container(horizontal=True, gap="small")  # the result wraps right under the canvas when narrow
    left = row.container(width=CANVAS_SIDE + CANVAS_MARGIN)  # never narrower than the canvas
    right = row.container(width="stretch")
    with left:
        image, what = input_panel()
    with right:
        read = read_image(image, cfg.dataset)
        pred = None if read is None else prediction_panel(info, model, cfg.dataset, read, what)
    correction_panel(info, read, None if pred is None else pred.label, cfg.dataset)
    show_flash(FLASH_KEY)
    result = st.session_state.get(RESULT_KEY)
    if result is not None and result["id"] == info.id:  # the version on show is the one just made
        show_result(result)
    st.divider()
    # Drawn in every run, with or without something to read: a toggle missing from one run (a new
    # upload first clears the old file) came back at its default in the browser, off (issue 21.5).
    compare = st.toggle(
        "All models: read this drawing with every saved run", key=COMPARE_KEY, persist_state=SESSION
    )
    if compare and read is not None:
        compare_panel(read[0], runs, info)
    elif compare:
        source = "Upload" if st.session_state.get(SOURCE_KEY) == "Upload" else "Draw"
        st.caption(f"{source} a digit to read it with every saved run.")


def prediction_panel(
    info: RunInfo, model: torch.nn.Module, dataset: str, read: tuple[torch.Tensor, np.ndarray], what: str
) -> infer.Prediction | None:
    """The prediction, what the model sees and why; None (with a message) when the model cannot read it."""
    x, pixels = read
    try:
        pred = infer.predict(model, x)
        heat = explain.saliency(model, x, pred.label)
    except ValueError as exc:  # a model that returns NaN or the wrong shape: say so, no traceback
        st.error(f"{literal(info.name)} cannot read this: {exc}")
        return None
    names = w.class_names(dataset)
    w.show_prediction(pred, dataset)
    st.caption(f"{literal(info.name)} reading {what}.")
    seen, why = st.columns(2)
    side = 28 * SEEN_SCALE  # both at their own size, whatever their captions' length
    seen.image(explain.enlarge(pixels, SEEN_SCALE), caption="What the model sees (28x28)", width=side)
    method = w.METHOD_LABELS[explain.method_for(model)]
    heat_map = explain.overlay(pixels, heat, SEEN_SCALE)
    why.image(heat_map, caption=f"Why {names[pred.label]}: {method}", width=side)
    inside_charts.layer_view(model, x, names, info)  # an expander, computed only while open
    return pred


def input_panel() -> tuple[Any, str]:
    """The canvas (or the file uploader): what to read (or None) and how to name it."""
    controls = st.container(horizontal=True, vertical_alignment="center", gap="xsmall")
    with controls:
        source = st.segmented_control(
            "Input", ["Draw", "Upload"], default="Draw", key=SOURCE_KEY, persist_state=SESSION,
            required=True, label_visibility="collapsed",
        )  # fmt: skip
    if source == "Upload":
        upload = st.file_uploader(
            "A photo or scan of one handwritten digit (PNG or JPEG)",
            type=["png", "jpg", "jpeg"],
            key=UPLOAD_KEY,
            help="Dark ink on light paper or the reverse, any size; transparency is fine.",
        )
        return upload, "" if upload is None else f"the upload {upload.name}"
    with controls:  # one short row: on a phone the canvas, then the prediction, fit on one screen
        with st.popover("Pen", help="Stroke width"):
            stroke = st.slider(
                "Stroke width", 6, 40, 20, key=STROKE_KEY, persist_state=SESSION,
                help="Thick strokes read best: draw one digit, large.",
            )  # fmt: skip
        st.button("Clear", on_click=_clear_canvas, help="A clean canvas")
    # The canvas comes last, so that a phone shows the prediction right under it (it was below the
    # fold), after room for its toolbar, which floats 2.65rem above it (it covered the slider).
    st.space(TOOLBAR_ROOM)
    result = st_canvas(
        stroke_width=stroke,
        stroke_color="#000000",
        height=CANVAS_SIDE,
        width=CANVAS_SIDE,
        drawing_mode="freedraw",
        return_image_data=True,
        key=canvas_key(),
    )
    strokes = len((result.json_data or {}).get("objects") or [])
    return result.image_data, f"your drawing ({strokes} stroke{'' if strokes == 1 else 's'})"


def _clear_canvas() -> None:
    st.session_state[COUNTER_KEY] = st.session_state.get(COUNTER_KEY, 0) + 1  # a new key: a clean canvas


def read_image(image: Any, dataset: str) -> tuple[torch.Tensor, np.ndarray] | None:
    """Model input ``(1, 1, 28, 28)`` and its pixels, or None with a message saying why not."""
    if image is None:
        st.info(
            "Draw a digit on the canvas (or upload one): the prediction appears when the stroke ends. "
            "Draw one digit, large; the toolbar above the canvas has undo, redo and reset."
        )
        return None
    try:
        x = infer.preprocess(image, dataset)
    except ImageError as exc:
        st.warning(str(exc), icon=":material/warning:")
        return None
    return x, infer.to_display(x, dataset).astype(np.float32) / 255.0


# -- correction ------------------------------------------------------------------------


def correction_panel(
    info: RunInfo, read: tuple[torch.Tensor, np.ndarray] | None, predicted: int | None, dataset: str
) -> None:
    """The right answer, the settings and the Teach button; disabled, not hidden, with nothing to read.

    Always drawn: widgets missing from one script run (a new upload first clears
    the old file) came back at their defaults in the browser.
    """
    st.subheader("Wrong? Teach it")
    ready = read is not None and predicted is not None
    names = w.class_names(dataset)
    label = st.segmented_control(
        "The right answer", list(range(10)), format_func=lambda i: names[i], key=LABEL_KEY, disabled=not ready
    )
    settings_panel()
    text = "Teach it" if label is None or not ready else f"Teach it: this is {names[label]}"
    st.button(
        text,
        type="primary",
        icon=":material/school:",
        disabled=label is None or not ready,
        on_click=_teach if ready else None,
        args=(info, read[0], read[1], predicted) if ready else None,
        help="Fine-tunes a copy of the model and saves it as a new version; the original is kept.",
    )
    if not ready:
        source = "Upload" if st.session_state.get(SOURCE_KEY) == "Upload" else "Draw"
        st.caption(f"{source} a digit first; if the model reads it wrong, pick the right answer here.")


def settings_panel() -> None:
    with st.expander("Fine-tuning settings"):
        st.checkbox(
            "Remember my drawing and its re-drawings beside the network", DEFAULTS.memory,
            key=SETTING_KEYS["memory"], persist_state=SESSION,
            help="A drawing close to one you corrected (closer than any training image of another digit) "
            "is read as you taught it; everything else is read by the network as before.",
        )  # fmt: skip
        st.radio(
            "Strategy", online.STRATEGIES, format_func=w.STRATEGY_LABELS.get,
            key=SETTING_KEYS["strategy"], persist_state=SESSION,
        )  # fmt: skip
        cols = st.columns(2)
        cols[0].slider(
            "At most this many steps",
            0,
            200,
            DEFAULTS.steps,
            key=SETTING_KEYS["steps"],
            persist_state=SESSION,
            help="Fine-tuning steps (Adam). 0: no fine-tuning, the memory alone (the default).",
        )
        cols[1].slider(
            "Stop once the right answer has probability", 0.5, 1.0, DEFAULTS.stop_at, 0.05,
            key=SETTING_KEYS["stop_at"], persist_state=SESSION, help="1.0: always take every step.",
        )  # fmt: skip
        cols[0].select_slider(
            "Learning rate (Adam)",
            LEARNING_RATES,
            DEFAULTS.lr,
            key=SETTING_KEYS["lr"],
            persist_state=SESSION,
            format_func=lambda v: f"{v:g}",
        )
        cols[1].select_slider(
            "Replay images per step",
            REPLAY_SIZES,
            DEFAULTS.replay_size,
            key=SETTING_KEYS["replay_size"],
            persist_state=SESSION,
        )
        st.slider(
            "Re-drawings of your digit remembered and learned with it", 0, 64, DEFAULTS.views,
            key=SETTING_KEYS["views"], persist_state=SESSION,
            help="0: the drawing alone, as it is (it generalises less).",
        )  # fmt: skip
        st.caption(
            "Defaults measured on the real MNIST (README, *Teaching a model your handwriting*): the "
            "drawing and 32 re-drawings of it are remembered and nothing is fine-tuned; about 19 in 20 new "
            "re-drawings are then read right and test accuracy does not move (under 0.01 point on "
            "average). Fine-tuning (steps > 0) learned the habit less well (about 3 in 4) and cost about "
            "0.1 point; try *Example only* or a learning rate of 1e-3 to see the damage replay and a "
            "small step prevent."
        )


def current_settings() -> online.CorrectionSettings:
    values = {name: st.session_state.get(key, getattr(DEFAULTS, name)) for name, key in SETTING_KEYS.items()}
    return online.CorrectionSettings(**values)


def _teach(info: RunInfo, x: torch.Tensor, pixels: np.ndarray, predicted: int) -> None:
    """on_click: fine-tune a copy, save it as a version, keep the drawing, switch to the version."""
    label = st.session_state.get(LABEL_KEY)
    if label is None:
        return
    try:
        settings = current_settings()
        taught = teach.correct(
            info, x, int(label), settings, drawing=pixels, predicted=predicted, **_cached(info, settings)
        )
    except MnistLabError as exc:
        flash(FLASH_KEY, "error", str(exc))
        return
    st.session_state[RESULT_KEY] = w.correction_result(taught)
    st.session_state[RUN_KEY] = taught.version.id  # the page now reads with the corrected model


def _cached(info: RunInfo, settings: online.CorrectionSettings) -> dict[str, Any]:
    """What a correction can take from the app's caches: the shared model and its baseline evaluation."""
    model, _ = w.model_of(info)
    root = str(core_data.data_root())
    before = w.baseline(info.id, str(info.path.parent), info.updated, root, settings.eval_size)
    return {"model": model, "before": before, "root": root}


def _undo(version_id: str, parent_id: str) -> None:
    try:
        delete_run(version_id)
    except MnistLabError as exc:
        flash(FLASH_KEY, "error", str(exc))
        return
    st.session_state.pop(RESULT_KEY, None)
    st.session_state[RUN_KEY] = parent_id
    flash(FLASH_KEY, "info", "Undone: the corrected version is deleted; back to the original.")


def show_result(result: dict[str, Any]) -> None:
    details = result["details"]
    learned = details.get("predicted_after") == details.get("label") if "label" in details else None
    verdict = (
        ""
        if learned is None
        else (
            " It now reads your drawing correctly."
            if learned
            else " It still misreads your drawing: try more steps."
        )
    )
    st.success(
        f"Saved as a new version, {literal(result['name'])}; "
        f"{literal(result['parent_name'])} is unchanged.{verdict}",
        icon=":material/check_circle:",
    )
    w.show_correction(result)
    st.button(
        "Undo this correction", icon=":material/undo:", on_click=_undo, args=(result["id"], result["parent"]),
        help="Deletes the new version (the drawing stays in My handwriting).",
    )  # fmt: skip


# -- all models ------------------------------------------------------------------------


def compare_panel(x: torch.Tensor, runs: list[RunInfo], selected: RunInfo) -> None:
    """Every run of the same dataset reads the same input ``x`` (preprocessing depends only on it)."""
    readings = allmodels.read_with_every_run(x, runs, selected.config.dataset, load=w.model_of)
    w.show_comparison(readings, selected.config.dataset)


# -- my handwriting --------------------------------------------------------------------


def handwriting_tab(info: RunInfo, runs: list[RunInfo]) -> None:
    show_flash(HW_FLASH_KEY)
    folder = handwriting.default_dir()
    try:
        samples = handwriting.list_samples(folder)
    except MnistLabError as exc:
        st.error(str(exc))
        return
    if not samples:
        st.info(
            "Nothing here yet. Every drawing you correct on the *Draw and predict* tab is kept here with "
            f"its true label (in `{folder}`), to test and fine-tune models on your own handwriting.",
            icon=":material/info:",
        )
        return
    counts = handwriting.summary(samples)["per_label"]
    per_label = ", ".join(f"{d}: {n}" for d, n in enumerate(counts) if n)
    noun = "drawing" if len(samples) == 1 else "drawings"
    st.markdown(f"**{len(samples)} {noun}** in `{folder}` ({per_label}).")
    w.sample_grid(samples, folder, on_delete=_delete_sample)
    st.download_button(
        "Export as zip", data=handwriting.export_zip(folder), file_name="my-handwriting.zip",
        mime="application/zip", icon=":material/download:",
    )  # fmt: skip
    st.subheader("Accuracy on my handwriting")
    w.accuracy_table(runs, folder, tuple(s.id for s in samples))
    st.subheader("Fine-tune on my handwriting")
    if info.config.dataset != "mnist":
        st.info("Pick an MNIST run to fine-tune it on your handwriting.")
        return
    st.caption(
        f"Fine-tunes a copy of {literal(info.name)} on all {len(samples)} drawings mixed with replayed MNIST "
        "training images (the settings on the other tab), and saves it as a new version."
    )
    st.button(
        f"Fine-tune {literal(info.name)} on my handwriting",
        on_click=_teach_set,
        args=(info,),
        icon=":material/school:",
    )


def _delete_sample(sample_id: str) -> None:
    try:
        handwriting.delete(sample_id)
    except MnistLabError as exc:
        flash(HW_FLASH_KEY, "error", str(exc))


def _teach_set(info: RunInfo) -> None:
    try:
        settings = current_settings()
        taught = teach.correct_handwriting(info, settings, **_cached(info, settings))
    except MnistLabError as exc:
        flash(HW_FLASH_KEY, "error", str(exc))
        return
    version = w.correction_result(taught)
    st.session_state[RESULT_KEY] = version
    st.session_state[RUN_KEY] = version["id"]
    saved = f"Saved {literal(version['name'])}: see its figures on the *Draw and predict* tab."
    flash(HW_FLASH_KEY, "success", saved)


main()
