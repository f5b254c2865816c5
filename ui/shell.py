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

SHELL_KEY = "_shell_ran"
WANTED_KEY = "_shell_wanted"
APP = "app.py"


def opened() -> None:
    """Called by app.py after ``st.navigation``: the shell is up; go where a deep link wanted."""
    st.session_state[SHELL_KEY] = True
    wanted = st.session_state.pop(WANTED_KEY, None)
    if wanted is not None:
        page, query = wanted
        st.switch_page(page, query_params=query)


def require_shell(page_file: str) -> None:
    """First line of every page: reach this page through app.py if it was run without it."""
    if st.session_state.get(SHELL_KEY):
        return
    page = f"pages/{Path(page_file).name}"
    st.session_state[WANTED_KEY] = (page, dict(st.query_params))
    st.switch_page(APP)
