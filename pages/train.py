"""Train page: not built yet (issue #3). Says what it will do."""

import streamlit as st

st.title("Train")
st.info("Not built yet — tracked in issue #3.", icon=":material/construction:")
st.markdown(
    """
**What it will do:** pick a model (an MLP of any depth and width, LeNet-5 or a small CNN),
a batch size, epochs and optimiser, then train it here in the background while a live chart
shows loss and accuracy. You can stop a run and resume it later; every run is saved to the
checkpoints folder with its configuration, learning curves and test accuracy.

Until then, train the quick default model from the **Home** page, or from a terminal:
`python -m mnist_core train --help`.
"""
)
