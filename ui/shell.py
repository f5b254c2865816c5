"""Every page runs inside app.py's shell (page config, navigation), even from a deep link.

Not a page. Streamlit 1.67 serves a ``pages/`` folder in its old multipage
mode until some session has run ``st.navigation``: on a freshly started
server, a first visit to ``/train`` runs ``pages/train.py`` alone, with
Streamlit's generic page list and without app.py's page config. Each page
calls :func:`require_shell` first; without the shell it remembers where the
user was going (and the query, e.g. ``?run=<id>``) and switches to app.py,
whose :func:`opened` switches back once navigation is in place.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from mnist_core.runs import clean_stale_staging, default_runs_dir
from ui.shared import literal

SHELL_KEY = "_shell_ran"
WANTED_KEY = "_shell_wanted"
APP = "app.py"


def opened() -> None:
    """Called by app.py after ``st.navigation``: the shell is up; go where a deep link wanted."""
    clean_leftovers(str(default_runs_dir()))
    st.session_state[SHELL_KEY] = True
    wanted = st.session_state.pop(WANTED_KEY, None)
    if wanted is not None:
        page, query = wanted
        st.switch_page(page, query_params=query)


def missing_page() -> str | None:
    """The path the browser asked for when no page has it, else None.

    Streamlit then runs the default page (Home) without a word. Read from the
    script run's page intent, the one place Streamlit keeps it; on a
    Streamlit without it, None (Home is shown, as before).
    """
    try:
        manager = get_script_run_ctx().pages_manager  # type: ignore[union-attr]
        pages, main = manager.get_pages(), manager.main_script_hash
        wanted_hash, wanted_name = manager.intended_page_script_hash, manager.intended_page_name
    except AttributeError:
        return None
    if wanted_hash:  # a page link or a switch_page; app.py itself is the shell, not a missing page
        return None if wanted_hash in pages or wanted_hash == main else (wanted_name or "")
    if wanted_name and not any(p.get("url_pathname") == wanted_name for p in pages.values()):
        return wanted_name
    return None


def page_not_found(path: str, home: str) -> None:
    """What app.py draws instead of Home for a path that names no page."""
    st.title("Page not found")
    page = f"The page {literal('/' + path)}" if path else "This page"
    st.warning(f"{page} does not exist in MNIST Lab. Check the address, or pick a page in the menu.")
    st.page_link(home, label="Go to Home", icon=":material/home:")


@st.cache_resource(show_spinner=False)
def clean_leftovers(runs_dir: str) -> list[str]:
    """Once per server process (and checkpoints folder): remove what killed processes left.

    Staging folders of runs, versions and imports whose process died, and
    half-deleted runs; never a folder a live process is filling (see
    ``runs.clean_stale_staging``).
    """
    return clean_stale_staging(runs_dir)


def require_shell(page_file: str) -> None:
    """First line of every page: reach this page through app.py if it was run without it."""
    if st.session_state.get(SHELL_KEY):
        return
    page = f"pages/{Path(page_file).name}"
    st.session_state[WANTED_KEY] = (page, dict(st.query_params))
    st.switch_page(APP)
