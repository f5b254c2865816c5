"""The Runs page's edits: rename, tag and annotate a run, export it, delete runs, import one.

Not a page (app.py lists the pages): ``pages/runs.py`` calls :func:`manage_section`
and :func:`import_section`. ``mnist_core.runs`` and ``mnist_core.archive`` do the
work; a callback's outcome is left under :data:`FLASH_KEY` (``ui.shared.flash``)
for the page to show on the rerun that follows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import streamlit as st

from mnist_core import archive, compare, runs
from mnist_core.errors import MnistLabError
from ui import choices
from ui.shared import flash, literal, show_flash

K = "runs_"  # session-state key prefix of the Runs page (here, ui/runs_views.py, pages/runs.py)
CONFIRM_KEY, UPLOAD_N_KEY = f"{K}confirm_delete", f"{K}upload_n"
# Each section's messages are drawn in it, and its expander keeps its state by key: a message at the
# top of the page moved everything below it, and the expander the user had just used closed.
EDIT, DELETE, IMPORT = f"{K}edit_section", f"{K}delete_section", f"{K}import_section"
FLASH_KEYS = {section: f"{section}_flash" for section in (EDIT, DELETE, IMPORT)}


def section(title: str, key: str, icon: str) -> Any:
    """An expander that stays as the user left it, whatever appears above it, with its messages at the top."""
    box = st.expander(title, key=key, icon=icon, on_change="rerun")
    with box:
        show_flash(FLASH_KEYS[key])
    return box


def leftover_messages() -> None:
    """The messages of the sections a page without runs does not draw (the last one was just deleted)."""
    for key in (EDIT, DELETE):
        show_flash(FLASH_KEYS[key])


# -- rename, tag, annotate, export, delete -----------------------------------------------


def manage_section(rows: list[dict[str, Any]], selected: list[str], runs_dir: Path) -> None:
    by_id = {r["id"]: r for r in rows}
    labels = choices.run_labels(by_id[i] for i in (selected or by_id))
    with section("Rename, tag, annotate, export", EDIT, ":material/edit:"):
        choices.sync_single(f"{K}focus", labels)  # the run just renamed stays in the form
        run_id = st.selectbox("Run", list(labels), format_func=choices.labeller(labels), key=f"{K}focus")
        if run_id is not None:
            edit_form(by_id[run_id], compare.all_tags(rows), runs_dir)
            export_button(by_id[run_id], runs_dir)
    # One label whatever the selection: a keyed expander whose label changes is a new one, closed.
    with section("Delete the selected runs", DELETE, ":material/delete:"):
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
        flash(FLASH_KEYS[EDIT], "error", str(exc))
    else:
        flash(FLASH_KEYS[EDIT], "success", f"Saved the name, tags and notes of {run_id}.")


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
    names = ", ".join(literal(r["name"]) for r in selected if r["id"] in pending)
    st.warning(
        f"Delete {len(pending)} run(s) for good: {names}? Their folders are removed; this cannot be undone."
    )
    with st.container(horizontal=True):  # side by side (in two half-width columns they stood far apart)
        st.button(
            "Yes, delete", type="primary", on_click=_delete, args=(pending, runs_dir), key=f"{K}delete_yes"
        )
        st.button("Cancel", on_click=_ask_delete, args=([],), key=f"{K}delete_no")


def _ask_delete(ids: list[str]) -> None:
    st.session_state[CONFIRM_KEY] = ids


def _delete(ids: list[str], runs_dir: Path) -> None:
    st.session_state[CONFIRM_KEY] = []
    done, errors = runs.delete_runs(ids, runs_dir)
    for error in errors:
        flash(FLASH_KEYS[DELETE], "error", error)
    if done:
        flash(FLASH_KEYS[DELETE], "success", f"Deleted {done} run{'s' if done != 1 else ''}.")


def import_section(runs_dir: Path) -> None:
    with section("Import a run (.zip)", IMPORT, ":material/upload:"):
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
        flash(FLASH_KEYS[IMPORT], "error", f"Not imported: {exc}")
    else:
        flash(FLASH_KEYS[IMPORT], "success", f"Imported {literal(info.name)} as {info.id}.")
    st.session_state[UPLOAD_N_KEY] = st.session_state.get(UPLOAD_N_KEY, 0) + 1  # a fresh, empty uploader
