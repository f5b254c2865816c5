"""Runs page: every saved run in a table, and charts that compare the ones you pick.

Thin UI: ``mnist_core.runs`` reads the folders and ``mnist_core.compare``
turns them into rows; the page shows the table, the picker and the saved
sweeps (``ui/sweep_view.py``), and ``ui/runs_views.py`` (the comparison
charts) and ``ui/runs_manage.py`` (rename, tag, export, delete, import) do
the rest. The listing is cached by
the checkpoints folder's fingerprint (``runs.folder_state``, a ``stat`` per
run folder and per file in it: a file edited in place counts), so a widget
click does not re-read 500 folders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from mnist_core import compare, runs, seeds, sweeps
from mnist_core.errors import MnistLabError
from ui import choices, sweep_view
from ui.runs_manage import K, import_section, leftover_messages, manage_section
from ui.runs_views import charts_section
from ui.shared import SESSION, literal
from ui.shell import require_shell

SELECT_KEY = f"{K}selected"
DEFAULT_SELECTION = 3  # newest completed runs picked on a first visit
NAME_WIDTH = 240  # px: the pinned Name column (about 30 characters); the rest of a phone's table scrolls

SORTS = (
    "created",
    "test_accuracy",
    "train_time_s",
    "parameters",
    "flops",
    "latency_p50_ms",
    "co2_kg",
    "name",
    "depth",
    "width",
    "batch_size",
)
TABLE_COLUMNS = (
    "name",
    "status",
    "test_pct",
    "test_std",
    "n_seeds",
    "model",
    "depth",
    "width",
    "channels",
    "batch_size",
    "epochs",
    "lr",
    "optimizer",
    "train_time_s",
    "time_per_epoch_s",
    "parameters",
    "macs",
    "flops",
    "weights_mb",
    "latency_p50_ms",
    "latency_p95_ms",
    "energy_wh",
    "co2_g",
    "created",
    "tags",
    "notes",
    "id",
)

INTRO = (
    "Every saved run, with its configuration and what it cost. Filter and sort the table, "
    "pick runs to compare, and read in the charts what depth, width and batch size did."
)


def main() -> None:
    require_shell(__file__)
    st.title("Runs")
    st.markdown(INTRO)
    runs_dir = runs.default_runs_dir()
    try:
        state = runs.folder_state(runs_dir)
        rows, broken = listing(str(runs_dir), state)
    except MnistLabError as exc:
        st.error(str(exc))
        st.stop()
    rows = refresh_running(rows, runs_dir)
    stamps = dict(state)
    broken_section(broken)
    if not rows:
        leftover_messages()  # the last run was just deleted: its section is gone
        st.info(f"No runs in `{runs_dir}` yet. Train one on the Train page, or import a run below.")
        import_section(runs_dir)
        return
    shown = table_section(rows)
    selected = selection_section(rows, shown)
    manage_section(rows, selected, runs_dir)
    import_section(runs_dir)
    charts_section([r for r in rows if r["id"] in set(selected)], runs_dir, stamps)
    sweep_section(runs_dir, state)


# -- reading (cached) ----------------------------------------------------------------


@st.cache_data(max_entries=8, show_spinner=False)
def listing(runs_dir: str, state: tuple[tuple[str, int], ...]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Rows of the readable runs and the broken folders; ``state`` is only the cache key."""
    good, broken = runs.scan_runs(runs_dir)
    return compare.table(good), broken


def refresh_running(rows: list[dict[str, Any]], runs_dir: Path) -> list[dict[str, Any]]:
    """A cached "running" may be stale (its process died without writing): ask again."""
    for row in rows:
        if row["status"] == "running":
            try:
                row["status"] = runs.load_run(row["id"], runs_dir).status
            except MnistLabError:
                pass  # removed meanwhile: the next listing drops it
    return rows


def broken_section(broken: Mapping[str, str]) -> None:
    if not broken:
        return
    noun = "folder" if len(broken) == 1 else "folders"
    with st.expander(f"{len(broken)} broken run {noun} (not listed)", icon=":material/warning:"):
        for name, reason in sorted(broken.items()):
            st.markdown(f"- {literal(name)}: {literal(reason)}")  # the reason may quote the file
        st.caption("Fix or remove these folders by hand; nothing on this page reads them.")


# -- the table -------------------------------------------------------------------------


def table_section(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Filters, sorting and the table; returns the rows shown."""
    search_col, sort_col, order_col = st.columns([3, 1.6, 1.2], vertical_alignment="bottom")
    text = search_col.text_input(
        "Search", key=f"{K}search", placeholder="name, architecture, tag, note…", persist_state=SESSION
    )
    sort = sort_col.selectbox(
        "Sort by", SORTS, format_func=compare.label, key=f"{K}sort", persist_state=SESSION
    )
    descending = order_col.checkbox("Descending", value=True, key=f"{K}desc", persist_state=SESSION)
    status_col, model_col, tags_col = st.columns(3)
    statuses = status_col.multiselect("Status", runs.STATUSES, key=f"{K}status", persist_state=SESSION)
    models = model_col.multiselect("Model", ["mlp", "cnn"], key=f"{K}model", persist_state=SESSION)
    tags = tags_col.multiselect("Tags", compare.all_tags(rows), key=f"{K}tags", persist_state=SESSION)
    group = st.checkbox(  # its own line: in a fifth of a laptop's row its label was cut short
        "Group seeds", value=True, key=f"{K}group", persist_state=SESSION,
        help="Completed runs that differ only in seed as one row: mean test accuracy, its standard "
        "deviation (in points) and the number of seeds",
    )  # fmt: skip
    shown, table = compare.table_view(
        rows, text or "", statuses, models, tags, sort=sort, descending=descending, group=group
    )
    st.dataframe(
        display_frame(table),
        hide_index=True,
        column_config=column_config(),
        width="stretch",
        column_order=TABLE_COLUMNS,
        height=min(420, 38 + 35 * max(len(table), 1)),
        placeholder="—",  # a failed run has no figures; Streamlit's default shows the word "None"
    )
    below = st.container(horizontal=True, vertical_alignment="center")
    merged = f" ({len(table)} rows: seeds grouped)" if len(table) < len(shown) else ""
    below.caption(f"{len(shown)} of {len(rows)} runs shown{merged}. Click a column header to sort by it.")
    below.download_button(
        "Download the table (CSV)",
        data=lambda: compare.to_csv(shown),
        file_name="runs.csv",
        mime="text/csv",
        icon=":material/download:",
        key=f"{K}csv",
        on_click="ignore",
    )
    return shown


def display_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The rows in display units (MB, Wh, g, dates)."""
    std = seeds.std_key("test_accuracy")
    frame = pd.DataFrame(list(rows), columns=[*compare.COLUMNS, std, seeds.N_KEY])
    for key in (*compare.METRIC_KEYS, std, seeds.N_KEY):  # an all-missing column must still be numeric
        frame[key] = pd.to_numeric(frame[key], errors="coerce")
    frame["test_pct"] = frame["test_accuracy"] * 100
    frame["test_std"] = frame[std] * 100
    frame[seeds.N_KEY] = frame[seeds.N_KEY].fillna(1)
    frame["weights_mb"] = frame["weights_bytes"] / 1e6
    frame["energy_wh"] = frame["energy_kwh"] * 1e3
    frame["co2_g"] = frame["co2_kg"] * 1e3
    frame["created"] = pd.to_datetime(frame["created"], errors="coerce", utc=True)
    return frame


def column_config() -> dict[str, Any]:
    num = st.column_config.NumberColumn
    return {
        # Pinned at a set width: sized to its longest name it filled a phone's whole table, and the other
        # columns could not be scrolled into view.
        "name": st.column_config.TextColumn("Name", pinned=True, width=NAME_WIDTH),
        "status": "Status",
        "test_pct": num("Test accuracy", format="%.2f%%", help="The mean over the seeds of a grouped row"),
        "test_std": num("± (points)", format="%.2f", help="Test accuracy's standard deviation across seeds"),
        "n_seeds": num("Seeds", help="Runs of this configuration that differ only in seed"),
        "model": "Model",
        "depth": num("Depth"),
        "width": num(
            "Width",
            help="Units of the widest hidden layer; for a CNN, of its dense layers after the convolutions",
        ),
        "channels": st.column_config.TextColumn("Conv channels", help="A CNN's channels per conv stage"),
        "batch_size": num("Batch"),
        "epochs": num("Epochs"),
        "lr": num("LR", format="%g"),
        "optimizer": "Optimizer",
        "train_time_s": num("Train time (s)", format="%.1f"),
        "time_per_epoch_s": num("s / epoch", format="%.2f"),
        "parameters": num("Parameters", format="compact"),
        "macs": num("MACs", format="compact", help="Multiply-adds per image (fvcore)"),
        "flops": num("FLOPs", format="compact", help="2 x MACs per image"),
        "weights_mb": num("Weights (MB)", format="%.2f"),
        "latency_p50_ms": num("Latency p50 (ms)", format="%.3f"),
        "latency_p95_ms": num("Latency p95 (ms)", format="%.3f"),
        "energy_wh": num("Energy (Wh)", format="%.3g"),
        "co2_g": num("CO2 (g)", format="%.3g"),
        "created": st.column_config.DatetimeColumn("Created (UTC)", format="YYYY-MM-DD HH:mm"),
        "tags": st.column_config.ListColumn("Tags"),
        "notes": "Notes",
        "id": "Run id",
    }


# -- selection -------------------------------------------------------------------------


def selection_section(rows: list[dict[str, Any]], shown: list[dict[str, Any]]) -> list[str]:
    """The runs to compare (kept across pages); returns their ids in table order."""
    labels = choices.run_labels(rows)
    default = [r["id"] for r in rows if r["status"] == "completed"][:DEFAULT_SELECTION]
    if SELECT_KEY not in st.session_state:  # first visit: the buttons below also set this key
        st.session_state[SELECT_KEY] = default
    wanted = st.query_params.get("run")  # "compare this run" from the Train page
    if wanted is not None:
        del st.query_params["run"]  # once: the picker decides from now on
        if wanted in labels:
            current = [i for i in st.session_state[SELECT_KEY] if i in labels and i != wanted]
            st.session_state[SELECT_KEY] = [wanted, *current[: DEFAULT_SELECTION - 1]]
    choices.sync_multi(SELECT_KEY, labels)  # renamed or deleted meanwhile: here, another tab, the CLI
    chosen = st.multiselect(
        "Runs to compare",
        list(labels),
        format_func=choices.labeller(labels),
        key=SELECT_KEY,
        persist_state=SESSION,
        placeholder="Pick runs to compare in the charts",
    )
    buttons = st.container(horizontal=True)
    buttons.button(
        f"Select the {len(shown)} shown",
        help="Every run the table shows (after the filters)",
        on_click=_select,
        args=([r["id"] for r in shown],),
        key=f"{K}select_shown",
    )
    buttons.button("Clear", on_click=_select, args=([],), key=f"{K}clear")
    order = {r["id"]: i for i, r in enumerate(rows)}
    return sorted(chosen, key=lambda i: order.get(i, 0))


def _select(ids: list[str]) -> None:
    st.session_state[SELECT_KEY] = ids


# -- sweeps ------------------------------------------------------------------------------


@st.cache_data(max_entries=4, show_spinner=False)
def sweep_listing(
    runs_dir: str, state: tuple[tuple[str, int], ...], sweeps_stamp: int
) -> tuple[list[sweeps.Sweep], list[runs.RunInfo]]:
    """Saved grid sweeps and the runs they read from; ``state`` and ``sweeps_stamp`` are the cache key."""
    grids = [s for s in sweeps.list_sweeps(runs_dir) if s.kind == "grid"]
    return grids, (runs.list_runs(runs_dir) if grids else [])


def sweep_section(runs_dir: Path, state: tuple[tuple[str, int], ...]) -> None:
    """A sweep as lines and heatmaps against each swept value (the Sweeps page shows the same)."""
    grids, all_runs = sweep_listing(str(runs_dir), state, runs.sweeps_folder_mtime(runs_dir))
    if not grids:
        return
    st.subheader("Sweeps")
    # Short enough for a phone (390 px cut the whole id short); the id's tail tells same-named sweeps apart.
    labels = {s.id: f"{s.name} · {len(s.configs)} runs · {s.id[-4:]}" for s in grids}
    choices.sync_single(f"{K}sweep", labels)
    chosen = st.selectbox("Sweep", list(labels), format_func=choices.labeller(labels), key=f"{K}sweep")
    sweep_view.render(next(s for s in grids if s.id == chosen), all_runs, key=f"{K}sweep_view")


main()
