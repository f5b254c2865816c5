"""MNIST Lab: the Streamlit entry point. Page config and navigation, nothing else.

Run it with ``make run`` or ``streamlit run app.py``. Each page lives in
pages/ and only wires widgets to ``mnist_core``; the core never imports
Streamlit. ``streamlit run`` imports this file, finds ``app`` (an ``st.App``:
the pages plus the JSON route the live charts poll, ``ui/live_route.py``) and
serves it; each session's script run then runs this file as ``__main__``.
"""

from pathlib import Path

# Import pandas fully before any training thread can: codecarbon imports it in a
# worker thread, and plotly (on the script thread) takes a half-imported pandas
# from sys.modules ("partially initialized module 'pandas'"), a rare crash.
import pandas  # noqa: F401
import streamlit as st

import mnist_core  # noqa: F401  (before any page: it sets how OpenMP threads wait before torch loads)
from ui import live_route, shell

HOME = "pages/home.py"
ICON = str(Path(__file__).with_name("ui") / "assets" / "icon.png")


def main() -> None:
    # A local file: a Material icon as the favicon is fetched from fonts.gstatic.com (none offline).
    st.set_page_config(page_title="MNIST Lab", page_icon=ICON, layout="wide")
    pages = [
        st.Page(HOME, title="Home", icon=":material/home:", default=True),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/runs.py", title="Runs", icon=":material/monitoring:"),
        st.Page("pages/draw.py", title="Draw", icon=":material/draw:"),
        st.Page("pages/sweeps.py", title="Sweeps", icon=":material/science:"),
    ]
    page = st.navigation(pages)
    shell.opened()  # after a deep link on a fresh server: back to the page the user asked for
    missing = shell.missing_page()
    if missing is None:
        page.run()
    else:  # Streamlit would show Home without a word
        shell.page_not_found(missing, HOME)


if __name__ == "__main__":  # each session's script run (Streamlit and AppTest run this file as __main__)
    main()
else:  # `streamlit run app.py` imports this file to find `app`: the server, with the live charts' route
    # st.App mounts its routes as given, not under server.baseUrlPath: the route goes there itself
    app = st.App(__file__, routes=live_route.routes(st.get_option("server.baseUrlPath")))
