"""The Draw page's panels: the run picker, the canvas, a reading, the correction and its result, the set.

Drawing only: each panel gets what a core call returned (``infer.Reading``,
``teach.Taught`` as kept by :func:`ui.draw_widgets.correction_result`,
``handwriting.Sample``) and the page's callbacks for its buttons;
``pages/draw.py`` wires them. The page's session-state keys live here, as
the panels own their widgets.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st
from streamlit_drawable_canvas import st_canvas

from mnist_core import explain, handwriting, online
from mnist_core.errors import MnistLabError
from mnist_core.images import MAX_FILE_BYTES, UPLOAD_EXTENSIONS
from mnist_core.runs import RunInfo, best_of, lineage
from ui import choices, draw_cache, inside_charts
from ui import draw_widgets as w
from ui.shared import SESSION, broken_caption, literal

if TYPE_CHECKING:  # torch itself loads through mnist_core, which tunes OpenMP first
    import torch

    from mnist_core.infer import Reading

K = "draw_"  # session-state key prefix of the Draw page
RUN_KEY, SOURCE_KEY, STROKE_KEY, COUNTER_KEY = f"{K}run", f"{K}source", f"{K}stroke", f"{K}canvas_n"
URL_RUN_KEY = f"{K}url_run"  # the run id this page last wrote into the URL (?run=)
LABEL_KEY, COMPARE_KEY, UPLOAD_KEY = f"{K}true_label", f"{K}compare", f"{K}upload"
RESULT_KEY, FLASH_KEY, HW_FLASH_KEY = f"{K}last_correction", f"{K}flash", f"{K}handwriting_flash"
# Not widgets: what the page keeps of the input across a switch to another page (or Draw <-> Upload),
# which unmounts the canvas and the uploader and drops their values.
DRAWING_KEY = f"{K}kept_drawing"  # the last drawing: canvas key, fabric.js objects, image
INITIAL_KEY = f"{K}canvas_initial"  # (canvas key, the drawing it was mounted with)
KEPT_UPLOAD_KEY, HELD_KEY = f"{K}kept_upload", f"{K}upload_held"  # last upload; whether the widget holds it
LABEL_FOR_KEY, TAUGHT_KEY = f"{K}label_for", f"{K}taught"  # the drawing the answer is for; drawings taught
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


def drawing_id(pixels: Any) -> str:
    """What tells one input from another: a digest of what the model sees (28x28), whatever the model."""
    return hashlib.sha1(pixels.tobytes()).hexdigest()[:16]


def clear_canvas() -> None:
    """on_click of Clear: a new key (a clean canvas), and the kept drawing is dropped."""
    st.session_state[COUNTER_KEY] = st.session_state.get(COUNTER_KEY, 0) + 1
    st.session_state.pop(DRAWING_KEY, None)


def source() -> str:
    """ "Upload" or "Draw": what the user reads from, for the captions that ask for it."""
    return "Upload" if st.session_state.get(SOURCE_KEY) == "Upload" else "Draw"


# -- the run ---------------------------------------------------------------------


def pick_run() -> tuple[RunInfo | None, list[RunInfo]]:
    """The run picker (default: the best completed run); None when there is nothing to read with."""
    try:
        listed, broken = draw_cache.saved_runs()
        runs = [r for r in listed if r.status in SELECTABLE]
        best = best_of(runs)
    except MnistLabError as exc:
        st.error(str(exc))
        return None, []
    broken_caption(broken)
    if not runs:
        st.info(
            "No saved model yet. Train one first: the quick default model on the Home page "
            "takes under half a minute.",
            icon=":material/info:",
        )
        st.page_link("pages/home.py", label="Train the quick default model", icon=":material/home:")
        return None, []
    by_id = {r.id: r for r in runs}
    # The URL names the model shown (written below), so a reload or a shared link opens the same one; a
    # link from another page names another ("draw with this run"). The value this page wrote itself is
    # not a request: read back after the user picked another model, it would undo the pick.
    wanted = st.query_params.get("run")
    if wanted is not None and wanted != st.session_state.get(URL_RUN_KEY) and wanted in by_id:
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
        persist_state=SESSION,  # after a correction, back from Runs: still the corrected version
        help="Any saved run; the best completed one is picked first. Corrections are saved as new versions.",
    )
    if st.query_params.get("run") != run_id:
        st.query_params["run"] = run_id
    st.session_state[URL_RUN_KEY] = run_id
    info = by_id[run_id]
    # Always one element here, lineage or not: a caption that came and went (Teach it, Undo, another
    # run) moved the tabs below it, and the browser remounted the canvas blank under the old prediction.
    lineage_line = st.empty()
    if info.meta.get("parent"):
        chain = " → ".join(literal(r.name) for r in lineage(info.id, info.path.parent))
        lineage_line.caption(f"Lineage: {chain}")
    return info, runs


# -- drawing, prediction, explanation ------------------------------------------------


def canvas_and_result() -> tuple[Any, Any]:
    """The canvas column and the result column; the result wraps right under the canvas when narrow."""
    row = st.container(horizontal=True, gap="small")
    left = row.container(width=CANVAS_SIDE + CANVAS_MARGIN)  # never narrower than the canvas
    return left, row.container(width="stretch")


def input_panel() -> tuple[Any, str]:
    """The canvas (or the file uploader): what to read (or None) and how to name it.

    Each keeps its input when the user goes to another page, or to the other
    input, and comes back: the drawing is drawn again on the new canvas, the
    upload is read again until it is removed or replaced.
    """
    controls = st.container(horizontal=True, vertical_alignment="center", gap="xsmall")
    with controls:
        chosen = st.segmented_control(
            "Input", ["Draw", "Upload"], default="Draw", key=SOURCE_KEY, persist_state=SESSION,
            required=True, label_visibility="collapsed",
        )  # fmt: skip
    if chosen == "Upload":
        return _upload()
    with controls:  # one short row: on a phone the canvas, then the prediction, fit on one screen
        with st.popover("Pen", help="Stroke width"):
            stroke = st.slider(
                "Stroke width", 6, 40, 20, key=STROKE_KEY, persist_state=SESSION,
                help="Thick strokes read best: draw one digit, large.",
            )  # fmt: skip
        st.button("Clear", on_click=clear_canvas, help="A clean canvas")
    # The canvas comes last, so that a phone shows the prediction right under it (it was below the
    # fold), after room for its toolbar, which floats 2.65rem above it (it covered the slider).
    st.space(TOOLBAR_ROOM)
    key = canvas_key()
    kept = st.session_state.get(DRAWING_KEY)
    if kept is not None and kept["canvas"] != key:
        kept = None
    if key not in st.session_state:  # mounted now (first visit, back from another page or from Upload)
        st.session_state[INITIAL_KEY] = (key, None if kept is None else kept["json"])
    mounted_key, initial = st.session_state.get(INITIAL_KEY, (None, None))
    # The same initial drawing for as long as this canvas lives: a new one would be drawn over the user's.
    result = st_canvas(
        stroke_width=stroke,
        stroke_color="#000000",
        height=CANVAS_SIDE,
        width=CANVAS_SIDE,
        drawing_mode="freedraw",
        initial_drawing=initial if mounted_key == key else None,
        return_image_data=True,
        key=key,
    )
    image, raw = result.image_data, result.json_data
    restored = mounted_key == key and initial is not None
    if image is None and kept is not None and restored:
        image = kept["image"]  # drawn again, not yet sent back: the image it was sent as before
    if restored:  # the canvas's own reset goes back to the drawing it was mounted with
        st.caption("Your drawing from before, drawn again. **Clear** starts a new one.")
    if image is not None:
        st.session_state[DRAWING_KEY] = {"canvas": key, "json": raw, "image": image}
    strokes = len((raw or {}).get("objects") or [])
    return image, f"your drawing ({strokes} stroke{'' if strokes == 1 else 's'})"


def _upload() -> tuple[Any, str]:
    """The file uploader, or the file it held before it was unmounted, until it is removed or replaced."""
    mounted_now = UPLOAD_KEY not in st.session_state
    upload = st.file_uploader(
        "A photo or scan of one handwritten digit (PNG or JPEG)",
        type=list(UPLOAD_EXTENSIONS),
        key=UPLOAD_KEY,
        max_upload_size=MAX_FILE_BYTES >> 20,  # MB: what the reading takes, not Streamlit's 200
        help="Dark ink on light paper or the reverse, any size; transparency is fine.",
    )
    if upload is not None:
        st.session_state[KEPT_UPLOAD_KEY] = (upload.name, upload.getvalue())
        st.session_state[HELD_KEY] = True
        return upload, f"the upload {upload.name}"
    if mounted_now:
        st.session_state[HELD_KEY] = False  # empty because it was unmounted: the kept file stays
    elif st.session_state.get(HELD_KEY):  # it held the file and now holds none: the user removed it
        st.session_state.pop(KEPT_UPLOAD_KEY, None)
        st.session_state[HELD_KEY] = False
    kept = st.session_state.get(KEPT_UPLOAD_KEY)
    if kept is None:
        return None, ""
    name, data = kept
    row = st.container(horizontal=True, vertical_alignment="center")
    row.caption(f"Reading {literal(name)}, uploaded before. Upload another file to read it instead.")
    row.button("Remove", key=f"{K}forget_upload", on_click=st.session_state.pop, args=(KEPT_UPLOAD_KEY, None))
    kept_file = io.BytesIO(data)
    kept_file.name = name  # read as the upload was: a message about the file names it
    return kept_file, f"the upload {name}"


def nothing_to_read() -> None:
    if source() == "Upload":
        st.info("Upload a photo or a scan of one handwritten digit: the prediction appears when it arrives.")
        return
    st.info(
        "Draw a digit on the canvas (or upload one): the prediction appears when the stroke ends. "
        "Draw one digit, large; the toolbar above the canvas has undo, redo and reset."
    )


def show_reading(info: RunInfo, model: torch.nn.Module, dataset: str, reading: Reading, what: str) -> None:
    """The prediction, what the model sees and why; an error when the model could not read it."""
    pred = reading.prediction
    if pred is None or reading.saliency is None:  # a model that returns NaN or the wrong shape
        st.error(f"{literal(info.name)} cannot read this: {reading.error}")
        return
    names = w.class_names(dataset)
    w.show_prediction(pred, dataset)
    st.caption(f"{literal(info.name)} reading {what}.")
    seen, why = st.columns(2)
    side = 28 * SEEN_SCALE  # both at their own size, whatever their captions' length
    pixels = reading.pixels
    seen.image(explain.enlarge(pixels, SEEN_SCALE), caption="What the model sees (28x28)", width=side)
    heat_map = explain.overlay(pixels, reading.saliency, SEEN_SCALE)
    why.image(heat_map, caption=f"Why {names[pred.label]}: {w.METHOD_LABELS[reading.method]}", width=side)
    inside_charts.layer_view(model, reading.x, names, info)  # an expander, computed only while open


# -- correction ------------------------------------------------------------------------


def correction_panel(
    info: RunInfo, reading: Reading | None, dataset: str, on_teach: Callable[..., None]
) -> None:
    """The right answer, the settings and the Teach button; disabled, not hidden, with nothing to read.

    Always drawn: widgets missing from one script run (a new upload first clears
    the old file) came back at their defaults in the browser. ``on_teach`` gets
    ``(info, x, pixels, predicted)``.
    """
    st.subheader("Wrong? Teach it")
    ready = reading is not None and reading.prediction is not None
    names = w.class_names(dataset)
    drawn = drawing_id(reading.pixels) if ready and reading is not None else None
    if st.session_state.get(LABEL_FOR_KEY) != drawn:  # another drawing: no answer is picked for it yet
        st.session_state[LABEL_KEY] = None
        st.session_state[LABEL_FOR_KEY] = drawn
    label = st.segmented_control(
        "The right answer", list(range(10)), format_func=lambda i: names[i], key=LABEL_KEY, disabled=not ready
    )
    settings_panel()
    text = "Teach it" if label is None or not ready else f"Teach it: this is {names[label]}"
    args = None
    if ready and reading is not None and reading.prediction is not None:
        args = (info, reading.x, reading.pixels, reading.prediction.label)
    st.button(
        text,
        type="primary",
        icon=":material/school:",
        disabled=label is None or not ready,
        on_click=on_teach if ready else None,
        args=args,
        help=(
            "Saves a new version that remembers this drawing and re-drawings of it (and fine-tunes a "
            "copy when *Fine-tuning settings* ask for steps); the original is kept."
        ),
    )
    if not ready:
        st.caption(f"{source()} a digit first; if the model reads it wrong, pick the right answer here.")


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


def show_result(result: dict[str, Any], on_undo: Callable[..., None], drawn: str | None) -> None:
    """The last correction (:func:`ui.draw_widgets.correction_result`), its figures and Undo.

    ``drawn``: the :func:`drawing_id` of the input on show. Once it is another
    drawing than the one taught, the figures (about that one) give way to a line
    saying which version reads, and Undo.
    """
    undo = {
        "label": "Undo this correction", "icon": ":material/undo:", "on_click": on_undo,
        "args": (result["id"], result["parent"], result.get("sample")),
        "help": "Deletes the new version, and the drawing it kept in My handwriting.",
    }  # fmt: skip
    taught = result.get("drawing")
    if taught is not None and drawn != taught:
        st.caption(
            f"Reading with {literal(result['name'])}, which your last correction saved "
            f"(of another drawing); {literal(result['parent_name'])} is unchanged."
        )
        st.button(**undo)
        return
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
    st.button(**undo)


# -- my handwriting --------------------------------------------------------------------


def handwriting_view(
    info: RunInfo,
    runs: list[RunInfo],
    folder: Path,
    samples: list[handwriting.Sample],
    on_delete: Callable[[str], None],
    on_teach_set: Callable[[RunInfo], None],
) -> None:
    """The set (thumbnails, export), every MNIST run's accuracy on it, and "fine-tune on my handwriting"."""
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
    w.sample_grid(samples, folder, on_delete=on_delete)
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
        on_click=on_teach_set,
        args=(info,),
        icon=":material/school:",
    )
