"""AppTest helpers of the reliability tests (not a test module): the shared ones, with these tests' defaults.

The helpers themselves live in ``tests/support`` (one copy for every test folder).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.support.apptest import no_exception, open_app, page_text
from tests.support.apptest import run_until as _run_until
from tests.support.drawing import CANVAS_KEY, canvas_png, inject

__all__ = ["CANVAS_KEY", "canvas_png", "inject", "no_exception", "open_page", "run_until", "texts"]


def open_page(app_path: Path | str, page: str | None = None) -> AppTest:
    return open_app(app_path, page, timeout=60)


def texts(at: AppTest) -> str:
    return page_text(at, subheaders=True)


def run_until(at: AppTest, done: Callable[[AppTest], bool], timeout_s: float = 90) -> AppTest:
    return _run_until(at, done, timeout_s, describe=texts)
