"""UI helpers shared by the pages (Streamlit and Plotly glue; no training or measuring logic).

They live outside ``pages/`` so Streamlit never mistakes them for pages.
"""
