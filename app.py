"""MNIST Lab: the Streamlit entry point. Page config and navigation, nothing else.

Run it with ``make run`` or ``streamlit run app.py``. Each page lives in
pages/ and only wires widgets to ``mnist_core``; the core never imports
Streamlit.
"""

# Import pandas fully before any training thread can: codecarbon imports it in a
# worker thread, and plotly (on the script thread) takes a half-imported pandas
# from sys.modules ("partially initialized module 'pandas'"), a rare crash.
import pandas  # noqa: F401
import streamlit as st

import mnist_core  # noqa: F401  (before any page: it sets GOMP_SPINCOUNT before torch loads)
from ui import shell

st.set_page_config(page_title="MNIST Lab", page_icon=":material/edit:", layout="wide")

HOME = "pages/home.py"
PAGES = [
    st.Page(HOME, title="Home", icon=":material/home:", default=True),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/monitoring:"),
    st.Page("pages/draw.py", title="Draw", icon=":material/draw:"),
    st.Page("pages/sweeps.py", title="Sweeps", icon=":material/science:"),
]

page = st.navigation(PAGES)
shell.opened()  # after a deep link on a fresh server: back to the page the user asked for
missing = shell.missing_page()
if missing is None:
    page.run()
else:  # Streamlit would show Home without a word
    shell.page_not_found(missing, HOME)
