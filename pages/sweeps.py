"""Sweeps page: not built yet (issue #6). Says what it will do."""

import streamlit as st

st.title("Sweeps")
st.info("Not built yet — tracked in issue #6.", icon=":material/construction:")
st.markdown(
    """
**What it will do:** run a grid of configurations in one go (for example depth 1 to 4
at widths 128 to 1024, or batch sizes 1 to 512) and **reproduce the study**: the blog's
table of MLPs, LeNet-5 and CNNs, trained here and compared with its published numbers
(MLP 784-512-10: 96.2% after 2 epochs; 2 x 1024 MLP: 408 s at batch size 1 vs 13 s at 64).
"""
)
