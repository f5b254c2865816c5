"""AppTest fixtures: a fresh process-wide cache for every test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st

from mnist_core.jobs import JobRegistry

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


@pytest.fixture
def registry(app_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobRegistry]:
    """The registry the pages use (st.cache_resource, shared with the test); stopped afterwards."""
    monkeypatch.syspath_prepend(str(app_path.parent))  # as the app finds ui/ beside app.py
    from ui.shared import job_registry

    reg = job_registry()
    yield reg
    for job in reg.jobs():
        job.stop()
    assert reg.wait(timeout=60), "a job did not stop"


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch):
    """AppTest sending back the labels a real browser holds (see browser_state.py)."""
    from browser_state import browser_fixture

    return browser_fixture(monkeypatch)
