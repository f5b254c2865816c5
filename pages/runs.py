"""Runs page: every saved run in a table, and charts that compare the ones you pick.

Thin UI: ``mnist_core.runs`` reads the folders, ``mnist_core.compare`` turns
them into rows, fronts, grids and curve columns, ``ui.runs_charts`` draws
them, and ``mnist_core.archive`` exports and imports runs. The listing is
cached by the checkpoints folder's fingerprint (``runs.folder_state``, one
``stat`` per run), so a widget click does not re-read 500 folders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from mnist_core import archive, compare, gallery, runs, sweeps
from mnist_core import data as core_data
from mnist_core.errors import MnistLabError
from ui import runs_charts as charts
from ui import sweep_view
from ui.shell import require_shell

SESSION = "session"  # persist_state: values survive a switch to another page and back
K = "runs_"  # session-state key prefix of this page
FLASH_KEY, CONFIRM_KEY, UPLOAD_N_KEY = f"{K}flash", f"{K}confirm_delete", f"{K}upload_n"
SELECT_KEY = f"{K}selected"
DEFAULT_SELECTION = 3  # newest completed runs picked on a first visit
GALLERY_MAX = 48
MAX_CONFUSIONS = 4

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
    "model",
    "depth",
    "width",
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
    show_flash()
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


@st.cache_data(max_entries=2000, show_spinner=False)
def curve_columns(runs_dir: str, run_id: str, stamp: int) -> compare.CurveColumns | str:
    """The run's curve columns, or the reason its history cannot be read."""
    try:
        return compare.curve_columns(runs.load_history(run_id, runs_dir))
    except MnistLabError as exc:
        return str(exc)


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
        "dataset": info.config.dataset,
    }


@st.cache_data(max_entries=64, show_spinner=False)
def predictions(runs_dir: str, run_id: str, stamp: int, indices: tuple[int, ...]) -> list[int] | str:
    try:
        return gallery.predictions(run_id, indices, runs_dir).tolist()
    except MnistLabError as exc:
        return str(exc)


# -- messages ------------------------------------------------------------------------


def flash(kind: str, text: str) -> None:
    """Keep a message from a callback for the run that follows it."""
    st.session_state.setdefault(FLASH_KEY, []).append((kind, text))


def show_flash() -> None:
    for kind, text in st.session_state.pop(FLASH_KEY, []):
        (st.success if kind == "success" else st.error)(text)


def broken_section(broken: Mapping[str, str]) -> None:
    if not broken:
        return
    noun = "folder" if len(broken) == 1 else "folders"
    with st.expander(f"{len(broken)} broken run {noun} (not listed)", icon=":material/warning:"):
        for name, reason in sorted(broken.items()):
            st.markdown(f"- `{name}`: {reason}")
        st.caption("Fix or remove these folders by hand; nothing on this page reads them.")


# -- the table -------------------------------------------------------------------------


def table_section(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Filters, sorting and the table; returns the rows shown."""
    c1, c2, c3, c4, c5 = st.columns([3, 2, 2, 2, 2])
    text = c1.text_input(
        "Search", key=f"{K}search", placeholder="name, architecture, tag, note…", persist_state=SESSION
    )
    statuses = c2.multiselect("Status", runs.STATUSES, key=f"{K}status", persist_state=SESSION)
    models = c3.multiselect("Model", ["mlp", "cnn"], key=f"{K}model", persist_state=SESSION)
    tags = c4.multiselect("Tags", compare.all_tags(rows), key=f"{K}tags", persist_state=SESSION)
    sort = c5.selectbox("Sort by", SORTS, format_func=compare.label, key=f"{K}sort", persist_state=SESSION)
    descending = c5.checkbox("Descending", value=True, key=f"{K}desc", persist_state=SESSION)
    shown = compare.sort_rows(compare.filter_rows(rows, text or "", statuses, models, tags), sort, descending)
    st.dataframe(
        display_frame(shown),
        hide_index=True,
        column_config=column_config(),
        width="stretch",
        column_order=TABLE_COLUMNS,
        height=min(420, 38 + 35 * max(len(shown), 1)),
    )
    left, right = st.columns([3, 1])
    left.caption(f"{len(shown)} of {len(rows)} runs shown. Click a column header to sort by it.")
    right.download_button(
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
    frame = pd.DataFrame(list(rows), columns=list(compare.COLUMNS))
    for key in compare.METRIC_KEYS:  # a column of only missing values must still be numeric
        frame[key] = pd.to_numeric(frame[key], errors="coerce")
    frame["test_pct"] = frame["test_accuracy"] * 100
    frame["weights_mb"] = frame["weights_bytes"] / 1e6
    frame["energy_wh"] = frame["energy_kwh"] * 1e3
    frame["co2_g"] = frame["co2_kg"] * 1e3
    frame["created"] = pd.to_datetime(frame["created"], errors="coerce", utc=True)
    return frame


def column_config() -> dict[str, Any]:
    num = st.column_config.NumberColumn
    return {
        "name": st.column_config.TextColumn("Name", pinned=True),
        "status": "Status",
        "test_pct": num("Test accuracy", format="%.2f%%"),
        "model": "Model",
        "depth": num("Depth"),
        "width": num("Width", help="Widest hidden layer"),
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
    labels = {r["id"]: f"{r['name']} · {r['id'][-6:]}" for r in rows}
    default = [r["id"] for r in rows if r["status"] == "completed"][:DEFAULT_SELECTION]
    left, mid, right = st.columns([5, 2, 1], vertical_alignment="bottom")
    if SELECT_KEY not in st.session_state:  # first visit: the buttons below also set this key
        st.session_state[SELECT_KEY] = default
    wanted = st.query_params.get("run")  # "compare this run" from the Train page
    if wanted is not None:
        del st.query_params["run"]  # once: the picker decides from now on
        if wanted in labels:
            current = [i for i in st.session_state[SELECT_KEY] if i in labels and i != wanted]
            st.session_state[SELECT_KEY] = [wanted, *current[: DEFAULT_SELECTION - 1]]
    chosen = left.multiselect(
        "Runs to compare",
        list(labels),
        format_func=labels.get,
        key=SELECT_KEY,
        persist_state=SESSION,
        placeholder="Pick runs to compare in the charts",
    )
    mid.button(
        f"Select the {len(shown)} shown",
        help="Every run the table shows (after the filters)",
        on_click=_select,
        args=([r["id"] for r in shown],),
        key=f"{K}select_shown",
        width="stretch",
    )
    right.button("Clear", on_click=_select, args=([],), key=f"{K}clear", width="stretch")
    order = {r["id"]: i for i, r in enumerate(rows)}
    return sorted(chosen, key=lambda i: order.get(i, 0))


def _select(ids: list[str]) -> None:
    st.session_state[SELECT_KEY] = ids


# -- rename, tag, annotate, delete, export, import -------------------------------------


def manage_section(rows: list[dict[str, Any]], selected: list[str], runs_dir: Path) -> None:
    by_id = {r["id"]: r for r in rows}
    candidates = selected or [r["id"] for r in rows]
    with st.expander("Rename, tag, annotate, export", icon=":material/edit:"):
        run_id = st.selectbox(
            "Run", candidates, format_func=lambda i: by_id[i]["name"] + f" · {i[-6:]}", key=f"{K}focus"
        )
        if run_id is not None:
            edit_form(by_id[run_id], compare.all_tags(rows), runs_dir)
            export_button(by_id[run_id], runs_dir)
    with st.expander(f"Delete the selected runs ({len(selected)})", icon=":material/delete:"):
        delete_controls([by_id[i] for i in selected], runs_dir)


def edit_form(row: Mapping[str, Any], tags: list[str], runs_dir: Path) -> None:
    run_id = row["id"]
    with st.form(f"{K}edit_{run_id}", border=False):
        st.text_input("Name", value=row["name"], key=f"{K}name_{run_id}", max_chars=200)
        st.multiselect(
            "Tags",
            sorted({*tags, *row["tags"]}),
            default=row["tags"],
            key=f"{K}tags_{run_id}",
            accept_new_options=True,
            placeholder="Pick or type tags",
        )
        st.text_area("Notes", value=row["notes"], key=f"{K}notes_{run_id}", height=80)
        st.form_submit_button("Save", on_click=_save_meta, args=(run_id, runs_dir), type="primary")


def _save_meta(run_id: str, runs_dir: Path) -> None:
    state = st.session_state
    try:
        runs.update_meta(
            run_id,
            runs_dir,
            name=state[f"{K}name_{run_id}"],
            tags=state[f"{K}tags_{run_id}"],
            notes=state[f"{K}notes_{run_id}"],
        )
    except MnistLabError as exc:
        flash("error", str(exc))
    else:
        flash("success", f"Saved the name, tags and notes of {run_id}.")


def export_button(row: Mapping[str, Any], runs_dir: Path) -> None:
    if row["status"] == "running":
        st.caption("A run being trained cannot be exported yet.")
        return

    def build() -> bytes:  # runs when clicked, not on every rerun
        return archive.export_run(row["id"], runs_dir)

    st.download_button(
        "Export this run (.zip)",
        data=build,
        file_name=archive.export_file_name(row["id"]),
        mime="application/zip",
        icon=":material/archive:",
        key=f"{K}export",
        on_click="ignore",
    )


def delete_controls(selected: list[Mapping[str, Any]], runs_dir: Path) -> None:
    pending = [i for i in st.session_state.get(CONFIRM_KEY, []) if i in {r["id"] for r in selected}]
    if not selected:
        st.caption("Select runs above to delete them.")
        return
    if not pending:
        st.button(
            f"Delete {len(selected)} run{'s' if len(selected) != 1 else ''}…",
            key=f"{K}delete",
            on_click=_ask_delete,
            args=([r["id"] for r in selected],),
        )
        return
    names = ", ".join(f"**{r['name']}**" for r in selected if r["id"] in pending)
    st.warning(
        f"Delete {len(pending)} run(s) for good: {names}? Their folders are removed; this cannot be undone."
    )
    yes, no = st.columns(2)
    yes.button(
        "Yes, delete", type="primary", on_click=_delete, args=(pending, runs_dir), key=f"{K}delete_yes"
    )
    no.button("Cancel", on_click=_ask_delete, args=([],), key=f"{K}delete_no")


def _ask_delete(ids: list[str]) -> None:
    st.session_state[CONFIRM_KEY] = ids


def _delete(ids: list[str], runs_dir: Path) -> None:
    st.session_state[CONFIRM_KEY] = []
    done = 0
    for run_id in ids:
        try:
            runs.delete_run(run_id, runs_dir)
            done += 1
        except MnistLabError as exc:
            flash("error", str(exc))
    if done:
        flash("success", f"Deleted {done} run{'s' if done != 1 else ''}.")


def import_section(runs_dir: Path) -> None:
    with st.expander("Import a run (.zip)", icon=":material/upload:"):
        st.caption(
            "A zip exported from this page. It is checked before anything is written: only a run's "
            "files, a valid configuration, and weights that are plain tensors of that model."
        )
        key = f"{K}upload_{st.session_state.get(UPLOAD_N_KEY, 0)}"
        uploaded = st.file_uploader("Run archive", type=["zip"], key=key)
        st.button(
            "Import", on_click=_import, args=(key, runs_dir), disabled=uploaded is None, key=f"{K}import"
        )


def _import(key: str, runs_dir: Path) -> None:
    uploaded = st.session_state.get(key)
    if uploaded is None:
        return
    try:
        info = archive.import_run(uploaded, runs_dir)  # an UploadedFile is a seekable BytesIO
    except MnistLabError as exc:
        flash("error", f"Not imported: {exc}")
    else:
        flash("success", f"Imported **{info.name}** as {info.id}.")
    st.session_state[UPLOAD_N_KEY] = st.session_state.get(UPLOAD_N_KEY, 0) + 1  # a fresh, empty uploader


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
    labels = {s.id: f"{s.name} ({len(s.configs)} runs, {s.id})" for s in grids}
    chosen = st.selectbox("Sweep", list(labels), format_func=labels.get, key=f"{K}sweep")
    sweep_view.render(next(s for s in grids if s.id == chosen), all_runs, key=f"{K}sweep_view")


# -- charts ------------------------------------------------------------------------------


def charts_section(rows: list[dict[str, Any]], runs_dir: Path, stamps: Mapping[str, int]) -> None:
    st.subheader("Compare")
    if not rows:
        st.info("Pick runs above to compare them.")
        return
    view = st.segmented_control(
        "Chart",
        charts.VIEWS,
        default=charts.VIEWS[0],
        required=True,
        key=f"{K}view",
        persist_state=SESSION,
        label_visibility="collapsed",
    )
    {
        "Learning curves": curves_view,
        "Accuracy vs cost": cost_view,
        "Parallel coordinates": parallel_view,
        "Depth x width": grid_view,
        "Bars": bars_view,
        "Confusion": confusion_view,
        "Mistakes": mistakes_view,
    }[view or charts.VIEWS[0]](rows, str(runs_dir), stamps)


def curves_view(rows: list[dict[str, Any]], runs_dir: str, stamps: Mapping[str, int]) -> None:
    x = st.columns(3)[0].selectbox(
        "Against",
        list(compare.CURVE_AXES),
        format_func=compare.CURVE_AXES.get,
        key=f"{K}curve_x",
        persist_state=SESSION,
    )
    curves: dict[str, compare.CurveColumns] = {}
    for row in rows:
        cols = curve_columns(runs_dir, row["id"], stamps.get(row["id"], 0))
        if isinstance(cols, str):
            st.warning(f"{row['name']}: {cols}")
        elif not cols.empty:
            curves[row["id"]] = cols
    if not curves:
        st.info("None of these runs has a learning curve yet.")
        return
    st.plotly_chart(charts.curves_figure(curves, {r["id"]: r for r in rows}, x), key=f"{K}curves")
    if len(curves) > charts.MAX_CURVE_TRACES:
        st.caption(f"{len(curves)} runs: drawn as one line per series; hover a line for its run.")


def cost_view(rows: list[dict[str, Any]], runs_dir: str, stamps: Mapping[str, int]) -> None:
    c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    cost = c1.selectbox(
        "Cost", compare.COSTS, format_func=compare.label, key=f"{K}cost", persist_state=SESSION
    )
    colour = c2.selectbox(
        "Colour by",
        (*compare.NUMERIC_SETTINGS, "model", "optimizer"),
        format_func=compare.label,
        key=f"{K}colour",
        persist_state=SESSION,
    )
    log_x = c3.checkbox("Log scale", value=True, key=f"{K}logx", persist_state=SESSION)
    front = compare.pareto_front([(r.get(cost), r.get("test_accuracy")) for r in rows])
    st.plotly_chart(charts.cost_figure(rows, cost, front, colour, log_x), key=f"{K}cost_chart")
    if front:
        names = ", ".join(f"**{rows[i]['name']}**" for i in front[:8])
        more = f" and {len(front) - 8} more" if len(front) > 8 else ""
        st.caption(f"On the Pareto front (no run is both cheaper and more accurate): {names}{more}.")


def parallel_view(rows: list[dict[str, Any]], runs_dir: str, stamps: Mapping[str, int]) -> None:
    left, right = st.columns([3, 1])
    settings = left.multiselect(
        "Settings",
        compare.NUMERIC_SETTINGS,
        default=["depth", "width", "batch_size", "epochs", "lr"],
        format_func=compare.label,
        key=f"{K}pc_settings",
        persist_state=SESSION,
    )
    cost = right.selectbox(
        "Cost",
        ("none", *compare.COSTS),
        index=1,
        format_func=compare.label,
        key=f"{K}pc_cost",
        persist_state=SESSION,
    )
    metrics = [*([cost] if cost != "none" else []), "test_accuracy"]
    st.plotly_chart(charts.parallel_figure(rows, settings, metrics), key=f"{K}parallel")
    st.caption("Drag along an axis to keep only the runs in a range.")


def grid_view(rows: list[dict[str, Any]], runs_dir: str, stamps: Mapping[str, int]) -> None:
    mlps = [r for r in rows if r["model"] == "mlp"]
    if not mlps:
        st.info("Depth and width describe MLPs; none of the selected runs is one.")
        return
    c1, c2 = st.columns(2)
    cost = c1.selectbox(
        "Cost", compare.COSTS, format_func=compare.label, key=f"{K}grid_cost", persist_state=SESSION
    )
    agg = c2.selectbox("Per cell", ("best", "mean", "min", "max"), key=f"{K}grid_agg", persist_state=SESSION)
    left, right = st.columns(2)
    acc = compare.grid(mlps, "test_accuracy", agg=agg)
    left.plotly_chart(charts.grid_figure(acc, "test_accuracy", agg), key=f"{K}grid_acc")
    right.plotly_chart(
        charts.grid_figure(compare.grid(mlps, cost, agg=agg), cost, agg), key=f"{K}grid_cost_chart"
    )
    if len(mlps) < len(rows):
        st.caption(f"{len(rows) - len(mlps)} CNN run(s) left out: depth and width are MLP settings.")


def bars_view(rows: list[dict[str, Any]], runs_dir: str, stamps: Mapping[str, int]) -> None:
    metric = st.selectbox(
        "Metric", compare.METRIC_KEYS, format_func=compare.label, key=f"{K}bar_metric", persist_state=SESSION
    )
    st.plotly_chart(charts.bars_figure(rows, metric), key=f"{K}bars")


def confusion_view(rows: list[dict[str, Any]], runs_dir: str, stamps: Mapping[str, int]) -> None:
    by_id = {r["id"]: r for r in rows}
    ids = st.multiselect(
        "Runs",
        list(by_id),
        default=list(by_id)[:2],
        max_selections=MAX_CONFUSIONS,
        format_func=lambda i: by_id[i]["name"],
        key=f"{K}conf_runs",
    )
    if not ids:
        return
    for col, run_id in zip(st.columns(len(ids)), ids, strict=True):
        info = details(runs_dir, run_id, stamps.get(run_id, 0))
        matrix = info.get("confusion")
        if matrix is None:
            col.info(f"{by_id[run_id]['name']}: no confusion matrix (the run has no test result).")
            continue
        names = core_data.CLASS_NAMES.get(info["dataset"], tuple(map(str, range(10))))
        col.plotly_chart(
            charts.confusion_figure(matrix, names, by_id[run_id]["name"]), key=f"{K}conf_{run_id}"
        )
    st.caption("Off-diagonal cells are coloured: the darker, the more often that mistake.")


def mistakes_view(rows: list[dict[str, Any]], runs_dir: str, stamps: Mapping[str, int]) -> None:
    by_id = {r["id"]: r for r in rows}
    ids = list(by_id)
    c1, c2 = st.columns(2)
    a = c1.selectbox("Run", ids, format_func=lambda i: by_id[i]["name"], key=f"{K}gal_a")
    b = c2.selectbox(
        "Compare with",
        [None, *ids],
        format_func=lambda i: "—" if i is None else by_id[i]["name"],
        key=f"{K}gal_b",
    )
    if a is None:
        return
    da = details(runs_dir, a, stamps.get(a, 0))
    try:
        n_test = gallery.test_size(da.get("dataset", "mnist"))
    except MnistLabError as exc:
        st.info(f"The test images are needed for this view. {exc}")
        return
    wrong_a = [i for i in da.get("misclassified", []) if i < n_test]
    if b is None or b == a:
        digits(
            f"{len(wrong_a)} test digits **{by_id[a]['name']}** gets wrong",
            wrong_a,
            {a: by_id[a]},
            da.get("dataset", "mnist"),
            runs_dir,
            stamps,
        )
        return
    db = details(runs_dir, b, stamps.get(b, 0))
    if db.get("dataset") != da.get("dataset"):
        st.info("These runs were tested on different datasets.")
        return
    only_a, only_b = compare.disagreement(wrong_a, [i for i in db.get("misclassified", []) if i < n_test])
    pair = {a: by_id[a], b: by_id[b]}
    digits(
        f"{len(only_a)} digits only **{by_id[a]['name']}** gets wrong",
        only_a,
        pair,
        da["dataset"],
        runs_dir,
        stamps,
    )
    digits(
        f"{len(only_b)} digits only **{by_id[b]['name']}** gets wrong",
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
        st.caption(f"No predictions for {runs_shown[run_id]['name']}: {reason}")
    captions = []
    for k, (index, label) in enumerate(zip(shown, labels, strict=True)):
        said = " / ".join(str(p[k]) for p in preds.values() if not isinstance(p, str))
        captions.append(f"#{index}: {label} → {said}" if said else f"#{index}: {label}")
    st.image(list(images), caption=captions, width=72)
    more = f" (first {GALLERY_MAX} of {len(indices)})" if len(indices) > GALLERY_MAX else ""
    st.caption(
        f"Caption: test index: true label → prediction{' of each run' if len(preds) > 1 else ''}{more}."
    )


main()
