"""Runs page: not built yet (issue #5). Says what it will do."""

import streamlit as st

st.title("Runs")
st.info("Not built yet — tracked in issue #5.", icon=":material/construction:")
st.markdown(
    """
**What it will do:** list every saved run and compare them in interactive charts:
test accuracy against parameters, FLOPs, model size, training time and estimated CO2,
plus the learning curves of the runs you pick. That is where the effect of depth, width
and batch size becomes visible.
"""
)
