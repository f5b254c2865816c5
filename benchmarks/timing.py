"""Timing helpers shared by the benchmark parts: calls timed one after another, or in turns."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any], repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn``."""
    return timed_in_turn({"fn": fn}, repeats)["fn"]


def timed_in_turn(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each call of each of ``fns``, called in turn ``repeats`` times.

    Taking turns, every function meets the same moments of a host whose speed
    drifts: blocks of one function after another made a half (preprocessing)
    slower than the whole it is part of.
    """
    out: dict[str, list[float]] = {key: [] for key in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            out[key].append(time.perf_counter() - start)
    return out
