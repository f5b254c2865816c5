"""Draw page: not built yet (issue #4). Says what it will do."""

import streamlit as st

st.title("Draw")
st.info("Not built yet — tracked in issue #4.", icon=":material/construction:")
st.markdown(
    """
**What it will do:** draw a digit with the mouse (or upload a picture), see what a
saved model predicts with its confidence for each class, and correct it when it is wrong:
the correction becomes a training example, so the model learns from your handwriting.
"""
)
