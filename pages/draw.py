"""Draw page: draw or upload a digit, see what a saved model reads and why, and correct it.

Wiring only: each user action is one core call, and ``ui/draw_panels.py``
draws what it returns. Reading a drawing is ``infer.read`` (the input, what
the model sees, the prediction and its saliency map); Teach it is
``teach.correct`` (fine-tune or remember, save a version, keep the drawing),
Fine-tune on my handwriting ``teach.correct_handwriting``, All models
``allmodels.read_with_every_run``, Undo ``teach.undo``. Teaching runs in
the button's ``on_click`` callback, so the page drawn after the click
already uses the new version.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import streamlit as st

from mnist_core import allmodels, handwriting, infer, teach
from mnist_core.errors import ImageError, MnistLabError
from mnist_core.runs import RunInfo
from ui import draw_cache
from ui import draw_panels as p
from ui import draw_widgets as w
from ui.shared import SESSION, flash, literal, show_flash
from ui.shell import require_shell

if TYPE_CHECKING:  # torch itself loads through mnist_core, which tunes OpenMP first
    import numpy as np
    import torch


def main() -> None:
    require_shell(__file__)
    st.title("Draw")
    info, runs = p.pick_run()
    if info is None:
        return
    tab_draw, tab_mine = st.tabs(["Draw and predict", "My handwriting"])
    with tab_draw:
        draw_tab(info, runs)
    with tab_mine:
        handwriting_tab(info, runs)


def draw_tab(info: RunInfo, runs: list[RunInfo]) -> None:
    try:
        model, cfg = draw_cache.model_of(info)
    except MnistLabError as exc:
        st.error(f"This run's model cannot be loaded: {exc}")
        return
    left, right = p.canvas_and_result()
    with left:
        image, what = p.input_panel()
    with right:
        reading = read(model, image, cfg.dataset, info)
        if reading is not None:
            p.show_reading(info, model, cfg.dataset, reading, what)
    p.correction_panel(info, reading, cfg.dataset, on_teach=_teach)
    show_flash(p.FLASH_KEY)
    result = st.session_state.get(p.RESULT_KEY)
    if result is not None and result["id"] == info.id:  # the version on show is the one just made
        p.show_result(result, on_undo=_undo, drawn=None if reading is None else p.drawing_id(reading.pixels))
    st.divider()
    # Drawn in every run, with or without something to read: a toggle missing from one run (a new
    # upload first clears the old file) came back at its default in the browser, off (issue 21.5).
    compare = st.toggle(
        "All models: read this drawing with every saved run", key=p.COMPARE_KEY, persist_state=SESSION
    )
    if compare and reading is not None:  # preprocessing depends only on the dataset: one input for all
        readings = allmodels.read_with_every_run(reading.x, runs, cfg.dataset, load=draw_cache.model_of)
        w.show_comparison(readings, cfg.dataset)
    elif compare:
        st.caption(f"{p.source()} a digit to read it with every saved run.")


def read(model: torch.nn.Module, image: Any, dataset: str, info: RunInfo) -> infer.Reading | None:
    """The model's reading of the drawing (one core call), or None with a message saying why not."""
    if image is None:
        p.nothing_to_read()
        return None
    drawn = p.source() == "Draw"
    try:
        novelty = functools.partial(draw_cache.novelty_of, info)  # built for the first digit read
        return infer.read(model, image, dataset, explain=True, drawn=drawn, novelty=novelty)
    except ImageError as exc:
        message = exc.for_source("drawing" if drawn else "photo")
        st.warning(message, icon=":material/warning:")
        return None


def _teach(info: RunInfo, x: torch.Tensor, pixels: np.ndarray, predicted: int) -> None:
    """on_click: correct a copy and save it as a version (teach.correct), switch to the version."""
    label = st.session_state.get(p.LABEL_KEY)
    if label is None:
        return
    # A second click before the page came back (a double click, or another answer picked at once)
    # is sent with the same run and drawing: one version, not two siblings.
    drawing = p.drawing_id(pixels)
    made = st.session_state.setdefault(p.TAUGHT_KEY, {}).setdefault(drawing, {})  # parent id -> version id
    for parent in [k for k, v in made.items() if not (info.path.parent / v).is_dir()]:
        del made[parent]  # that version was deleted since (Runs page): the drawing may be taught again
    if info.id in made or info.id in made.values():  # taught from this run, or this run is that version
        st.session_state[p.RUN_KEY] = made.get(info.id, info.id)
        flash(p.FLASH_KEY, "info", "This drawing is already taught: the version that learned it is on show. "
              "To teach it again (another answer, other settings), undo that correction first.")
        return
    try:
        settings = p.current_settings()
        cached = draw_cache.correction_inputs(info, settings.eval_size)
        taught = teach.correct(info, x, int(label), settings, drawing=pixels, predicted=predicted, **cached)
    except MnistLabError as exc:
        flash(p.FLASH_KEY, "error", str(exc))
        return
    made[info.id] = taught.version.id
    st.session_state[p.RESULT_KEY] = w.correction_result(taught) | {"drawing": drawing}
    st.session_state[p.RUN_KEY] = taught.version.id  # the page now reads with the corrected model
    st.session_state[p.LABEL_KEY] = None  # answered: the button waits for the next answer


def _undo(version_id: str, parent_id: str, sample_id: str | None = None) -> None:
    try:
        teach.undo(version_id, sample_id)
    except MnistLabError as exc:
        flash(p.FLASH_KEY, "error", str(exc))
        return
    for made in st.session_state.get(p.TAUGHT_KEY, {}).values():
        for parent in [k for k, v in made.items() if v == version_id]:
            del made[parent]  # its drawing may be taught again
    st.session_state.pop(p.RESULT_KEY, None)
    st.session_state[p.RUN_KEY] = parent_id
    flash(p.FLASH_KEY, "info", "Undone: the version and the drawing it kept are gone; back to the original.")


def handwriting_tab(info: RunInfo, runs: list[RunInfo]) -> None:
    show_flash(p.HW_FLASH_KEY)
    folder = handwriting.default_dir()
    try:
        samples = handwriting.list_samples(folder)
    except MnistLabError as exc:
        st.error(str(exc))
        return
    p.handwriting_view(info, runs, folder, samples, on_delete=_delete_sample, on_teach_set=_teach_set)


def _delete_sample(sample_id: str) -> None:
    try:
        handwriting.delete(sample_id)
    except MnistLabError as exc:
        flash(p.HW_FLASH_KEY, "error", str(exc))


def _teach_set(info: RunInfo) -> None:
    try:
        settings = p.current_settings()
        cached = draw_cache.correction_inputs(info, settings.eval_size)
        taught = teach.correct_handwriting(info, settings, **cached)
    except MnistLabError as exc:
        flash(p.HW_FLASH_KEY, "error", str(exc))
        return
    version = w.correction_result(taught)
    st.session_state[p.RESULT_KEY] = version
    st.session_state[p.RUN_KEY] = version["id"]
    saved = f"Saved {literal(version['name'])}: see its figures on the *Draw and predict* tab."
    flash(p.HW_FLASH_KEY, "success", saved)


main()
