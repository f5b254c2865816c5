"""AppTest fixtures: a fresh process-wide cache for every test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st

APP = Path(__file__).resolve().parents[2] / "app.py"


@pytest.fixture(autouse=True)
def _fresh_streamlit_caches() -> Iterator[None]:
    # st.cache_resource outlives an AppTest: without this, one test's job
    # registry (and its jobs) would show up in the next test.
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


@pytest.fixture
def app_path() -> Path:
    return APP
