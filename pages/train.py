"""Train page: choose a model and its training, see what it costs, train it and watch it learn.

Thin UI: widgets build a ``RunConfig`` (the core validates it), ``mnist_core``
estimates the cost and trains in the process-wide job registry (so a run
outlives its tab and every tab sees it). The views of the jobs (live progress,
queue, result, recent runs) are in ``ui/train_jobs.py``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from mnist_core import data as core_data
from mnist_core import estimate, report, seeds, sizing
from mnist_core.config import MAX_EPOCHS, RunConfig
from mnist_core.costs import CostReport
from mnist_core.device import resolve_device
from mnist_core.errors import MnistLabError
from mnist_core.jobs import JobRegistry
from mnist_core.runs import RunInfo, default_runs_dir, scan_runs
from ui.shared import SESSION, broken_caption, job_registry, metric_row, probe_fn
from ui.shell import require_shell
from ui.train_jobs import ERROR_KEY, live_section, result_section, runs_section, submit

WIDTHS = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
BATCH_SIZES = [2**i for i in range(13)]  # 1 (as in the study) ... 4096
LEARNING_RATES = [m * 10.0**e for e in range(-5, 0) for m in (1, 2, 5)] + [1.0]
# 8-32: the quick default model's (Home), so it can be trained here too.
CHANNELS = {
    "6-16": (6, 16), "8-32": (8, 32), "16-32": (16, 32), "32-64": (32, 64), "32-64-128": (32, 64, 128),
}  # fmt: skip
MODELS = {"MLP": "mlp", "CNN": "cnn"}
DATASETS = {"mnist": "MNIST", "fashion": "Fashion-MNIST"}
# Short enough for the box at 390 px and in a third of 1280 px (the long forms were cut); details in help.
CNN_STYLES = {"modern": "Modern", "lenet": "LeNet-5"}
CNN_STYLES_HELP = (
    "**Modern**: 3x3 convolutions, batch norm, ReLU, max pooling. "
    "**LeNet-5** (LeCun, 1998): 5x5 convolutions, tanh, average pooling, no batch norm."
)


def main() -> None:
    require_shell(__file__)
    st.title("Train")
    st.markdown(
        "Pick a network and how to train it, see what it costs, then train it here. "
        "Runs train in the background: closing the tab does not stop them, and every tab shows them."
    )
    registry, root, runs_dir = job_registry(), core_data.data_root(), default_runs_dir()
    cfg, notes = config_form(root)
    runs = _runs()
    start_section(cfg, notes, registry, root, runs_dir, runs)
    live_section(registry, runs_dir)
    result_section(registry, runs_dir, runs)
    runs_section(registry, root, runs_dir, runs)


# -- controls -------------------------------------------------------------------


Notes = dict[str, DeltaGenerator]  # a setting's name -> the place right under its field


def config_form(root: Path) -> tuple[RunConfig | None, Notes]:
    """The controls: the configuration (None after showing why it is invalid), and where each field's
    message goes."""
    model_col, train_col, data_col = st.columns(3, gap="large")
    # A field's message goes right under it: on a phone the three columns stack, and the general
    # place below them is a screen away from the field the user just changed.
    notes: Notes = {}
    with model_col:
        st.subheader("Model")
        kind = MODELS[
            st.radio("Kind", list(MODELS), horizontal=True, key="train_model", persist_state=SESSION)
        ]
        cnn: dict[str, object] = {}
        if kind == "cnn":
            style = st.selectbox(
                "Style",
                list(CNN_STYLES),
                format_func=CNN_STYLES.get,
                key="train_cnn_style",
                persist_state=SESSION,
                help=CNN_STYLES_HELP,
            )
            channels = st.selectbox(
                "Conv channels per stage",
                list(CHANNELS),
                index=list(CHANNELS).index("32-64"),
                key="train_channels",
                persist_state=SESSION,
            )
            notes["cnn_channels"] = st.empty()
            cnn = {"cnn_style": style, "cnn_channels": CHANNELS[channels]}
        hidden = _layers(kind)
        activation = "relu"
        if kind == "mlp":
            activation = st.selectbox(
                "Activation",
                ["relu", "gelu", "tanh", "sigmoid"],
                key="train_activation",
                persist_state=SESSION,
            )
        dropout = st.slider("Dropout", 0.0, 0.9, 0.0, 0.05, key="train_dropout", persist_state=SESSION)
    with train_col:
        st.subheader("Training")
        batch = st.select_slider(
            "Batch size", BATCH_SIZES, value=64, key="train_batch", persist_state=SESSION
        )
        notes["batch_size"] = st.empty()
        # No range on the field itself: the browser turned 5000 red and quietly kept the old value, which
        # Start then trained. Out of range, the configuration's own message says so and Start is off.
        epochs = st.number_input(
            "Epochs", value=2, step=1, key="train_epochs", persist_state=SESSION,
            help=f"Passes over the training set, from 1 to {MAX_EPOCHS}.",
        )  # fmt: skip
        notes["epochs"] = st.empty()
        lr = st.select_slider(
            "Learning rate (log scale)",
            LEARNING_RATES,
            value=1e-3,
            format_func=_lr_text,
            key="train_lr",
            persist_state=SESSION,
        )
        optimizer = st.selectbox(
            "Optimizer",
            ["adam", "adamw", "sgd"],
            key="train_optimizer",
            persist_state=SESSION,
            help="SGD uses momentum 0.9.",
        )
        schedule = st.selectbox(
            "Learning-rate schedule",
            ["none", "cosine", "onecycle"],
            key="train_schedule",
            persist_state=SESSION,
        )
    with data_col:
        st.subheader("Data and device")
        dataset = st.selectbox(
            "Dataset", list(DATASETS), format_func=DATASETS.get, key="train_dataset", persist_state=SESSION
        )
        if not core_data.is_available(dataset, root):
            st.caption(f"{DATASETS[dataset]} is not on disk yet: the run downloads it first.")
        augment = st.checkbox(
            "Augmentation",
            key="train_augment",
            persist_state=SESSION,
            help="Random small shifts (up to 2.5 px), rotations (up to 12°) and scales (0.85-1.15) "
            "of the training images, drawn anew for every batch.",
        )
        amp = st.checkbox(
            "Mixed precision",
            key="train_amp",
            persist_state=SESSION,
            help="Matrix products in bfloat16, weights and optimizer in float32. Faster at batch sizes of "
            "64 and more on GPUs and on CPUs with bfloat16 instructions (AVX-512 BF16, AMX); slower at "
            "batch size 1 and on CPUs without them.",
        )
        seed = st.number_input("Seed", 0, 2**31 - 1, 0, key="train_seed", persist_state=SESSION)
        device = st.selectbox(
            "Device", sizing.available_devices(), key="train_device", persist_state=SESSION
        )
        st.caption(f"`auto` trains on **{resolve_device('auto')}** on this machine.")
    try:
        cfg = RunConfig(
            model=kind,
            hidden=hidden,
            activation=activation,
            dropout=float(dropout),
            dataset=dataset,
            epochs=int(epochs),
            batch_size=int(batch),
            optimizer=optimizer,
            lr=float(lr),
            schedule=schedule,
            seed=int(seed),
            device=device,
            augment=bool(augment),
            amp=bool(amp),
            **cnn,  # type: ignore[arg-type]
        )
    except MnistLabError as exc:
        show_error(exc, notes)
        return None, notes
    return cfg, notes


def show_error(exc: MnistLabError, notes: Notes) -> None:
    """The message under the field a ``ConfigError`` names, where the form has a place there; else here."""
    field = getattr(exc, "field", None)
    (notes[field] if field in notes else st).error(str(exc))


def _layers(kind: str) -> tuple[int, ...]:
    """Hidden widths: one slider for all layers, or one input per layer."""
    noun = "Hidden layers" if kind == "mlp" else "Dense layers after the convolutions"
    depth = st.slider(noun, 1, 8, 1, key="train_depth", persist_state=SESSION)
    width = st.select_slider(
        "Width (units per layer)", WIDTHS, value=512, key="train_width", persist_state=SESSION
    )
    per_layer = st.checkbox(
        "Per-layer widths",
        key="train_per_layer",
        persist_state=SESSION,
        help="Set each hidden layer's width on its own; the width slider gives their starting value.",
    )
    if not per_layer:
        return (int(width),) * depth
    cols = st.columns(4)
    return tuple(
        int(
            cols[i % 4].number_input(
                f"Layer {i + 1}", 16, 4096, int(width), step=16, key=f"train_width_{i}", persist_state=SESSION
            )
        )
        for i in range(depth)
    )


def _lr_text(lr: float) -> str:
    return f"{lr:.0e}".replace("e-0", "e-").replace("e+00", "")


# -- cost and start -----------------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=256)
def _cost(cfg: RunConfig) -> CostReport:
    return sizing.cost_preview(cfg)


def cost_preview(
    cfg: RunConfig, notes: Notes, registry: JobRegistry, root: Path, runs: list[RunInfo]
) -> bool:
    """Size, compute and time of ``cfg``; False (with the reason shown) if it cannot train."""
    try:
        with st.spinner("Measuring the model…"):
            found = estimate.preview(cfg, runs, probe_fn(registry), root, cost_fn=_cost)
    except MnistLabError as exc:
        show_error(exc, notes)
        return False
    cost, epoch, sizes = found.cost, found.epoch, found.sizes
    items = [*report.cost_items(cost, epoch, cfg.epochs), report.prediction_item(cfg, cost, runs)]
    with metric_row():
        for item in items:
            st.metric(item.label, item.value, help=item.help)
    st.caption(report.steps_caption(cfg.label(), epoch.steps_per_epoch, cfg.epochs, sizes.n_train))
    return True


def _runs() -> list[RunInfo]:
    try:
        good, broken = scan_runs()
    except MnistLabError as exc:
        st.error(str(exc))
        return []
    broken_caption(broken)
    return good


def _repeat(
    cfg: RunConfig | None, registry: JobRegistry, root: Path, runs_dir: Path, runs: list[RunInfo], name: str
) -> None:
    """Button callback: the configuration with seeds its runs have not used (``mnist_core.seeds``)."""
    if cfg is None:
        return
    try:
        seeds.queue_repeats(
            registry, cfg, [r.config for r in runs], runs_dir=runs_dir, data_root=root, name=name or None
        )
    except MnistLabError as exc:
        st.session_state[ERROR_KEY] = str(exc)


def start_section(
    cfg: RunConfig | None,
    notes: Notes,
    registry: JobRegistry,
    root: Path,
    runs_dir: Path,
    runs: list[RunInfo],
) -> None:
    st.subheader("What this choice costs")
    if cfg is not None and not cost_preview(cfg, notes, registry, root, runs):
        cfg = None
    name_col, button_col = st.columns([3, 1], vertical_alignment="bottom")
    name = name_col.text_input(
        "Run name (optional)", key="train_name", persist_state=SESSION, placeholder=cfg.label() if cfg else ""
    )
    if cfg is None:
        st.caption("Start is off until the setting named in red is changed.")
    button_col.button(
        "Start training",
        type="primary",
        disabled=cfg is None,
        on_click=submit,
        width="stretch",
        kwargs={"cfg": cfg, "registry": registry, "root": root, "runs_dir": runs_dir, "name": name.strip()},
    )
    st.button(  # its own line, at its own width: in a fifth of a laptop's row its label was cut short
        f"Repeat with {seeds.REPEAT_SEEDS} seeds",
        disabled=cfg is None,
        on_click=_repeat,
        help="Queue this configuration with 3 seeds none of its runs used yet: the Runs page shows them "
        "as one row, mean ± standard deviation, so you can tell a real difference from seed noise.",
        kwargs={"cfg": cfg, "registry": registry, "root": root, "runs_dir": runs_dir, "runs": runs,
                "name": name.strip()},
    )  # fmt: skip
    error = st.session_state.pop(ERROR_KEY, None)
    if error:
        st.error(error)


main()
