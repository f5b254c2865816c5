"""Waiting on a condition, never on a bare sleep."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], object], timeout_s: float = 30, poll_s: float = 0.02) -> None:
    """Until ``condition()`` is true; fails with "timed out" after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(poll_s)
