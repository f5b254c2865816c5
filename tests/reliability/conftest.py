"""Fixtures of the reliability tests: the app's pages through AppTest, with fresh caches.

The root tests/conftest.py already gives each test an empty checkpoints folder
and the generated dataset.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """app.py, with ui/ importable and st.cache_resource cleared before and after.

    A job registry or a cached model left by one test must not show up in the next.
    """
    import streamlit as st

    monkeypatch.syspath_prepend(str(ROOT))  # as the app finds ui/ beside app.py
    st.cache_resource.clear()
    st.cache_data.clear()
    yield ROOT / "app.py"
    st.cache_resource.clear()
    st.cache_data.clear()
