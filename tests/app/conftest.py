"""AppTest fixtures: a fresh process-wide cache for every test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mnist_core.jobs import JobRegistry
from tests.support.apptest import app_path, fresh_caches

__all__ = ["app_path"]  # the fixture: app.py, ui/ importable, fresh caches


@pytest.fixture(autouse=True)
def _fresh_streamlit_caches() -> Iterator[None]:
    # Every test here, with or without app_path (the registry fixture's too).
    with fresh_caches():
        yield


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
