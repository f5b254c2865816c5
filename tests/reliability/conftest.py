"""Fixtures of the reliability tests: the app's pages through AppTest, with fresh caches.

The root tests/conftest.py already gives each test an empty checkpoints folder
and the generated dataset.
"""

from __future__ import annotations

from tests.support.apptest import app_path  # the fixture: app.py, ui/ importable, fresh caches

__all__ = ["app_path"]
