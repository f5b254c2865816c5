"""Browser-test fixtures: a real Streamlit server on a free port and a headless Chromium page.

The server runs on the generated dataset and the test's empty checkpoints
folder (see tests/conftest.py); both it and the browser come from
``app_server.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from app_server import ROOT, AppDidNotStart, running_app
from playwright.sync_api import Page

from tests.support.browser import chromium


@pytest.fixture
def server(tmp_path: Path, runs_dir: Path, synthetic_data_dir: Path) -> Iterator[str]:
    """A Streamlit server on a free port, on the generated data and an empty checkpoints folder."""
    with ExitStack() as stack:
        try:
            app = running_app(runs_dir, synthetic_data_dir, tmp_path / "streamlit.log")
            url, _ = stack.enter_context(app)
        except AppDidNotStart as exc:
            pytest.fail(str(exc))
        yield url


@pytest.fixture
def blank_page(server: str) -> Iterator[Page]:
    """A browser tab that has not opened the app yet (the server has seen no request)."""
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
        page.set_default_timeout(60_000)
        yield page


@pytest.fixture
def page(server: str, blank_page: Page) -> Page:
    blank_page.goto(server)
    return blank_page


@pytest.fixture
def artifacts_dir() -> Path:
    """Where browser tests leave their screenshots (git-ignored)."""
    path = ROOT / "artifacts"
    path.mkdir(exist_ok=True)
    return path
