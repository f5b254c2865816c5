"""The fast path keeps freed memory in the process (glibc's heap thresholds), set once with the math."""

from __future__ import annotations

import platform

import pytest

from mnist_core import fast
from mnist_core.fast import heap

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.fixture(autouse=True)
def _fast_path_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MNIST_LAB_FAST_PATH", raising=False)


def test_training_math_sets_the_heap_thresholds_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(heap, "_done", None)
    monkeypatch.setattr(heap, "_set_thresholds", lambda: calls.append(1) or True)
    fast.ensure_math("cpu")  # what train() calls before its first step
    fast.ensure_math("cpu")
    assert calls == [1] and heap.keep_freed_memory()


def test_fast_path_off_leaves_the_heap_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_done", None)
    monkeypatch.setattr(heap, "_set_thresholds", lambda: pytest.fail("mallopt called with the fast path off"))
    monkeypatch.setenv("MNIST_LAB_FAST_PATH", "0")
    assert heap.keep_freed_memory() is False
    fast.ensure_math("cpu")
    assert heap._done is None


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_glibc_takes_the_thresholds() -> None:
    """mallopt answers 1 only for values it accepts (an mmap threshold over 32 MB is refused)."""
    assert heap._set_thresholds() is True
