"""The fast path keeps freed memory in the process (glibc's heap thresholds): no page faults a CNN step."""

from __future__ import annotations

import platform
import resource

import pytest
import torch

from mnist_core import fast
from mnist_core.fast import heap

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.fixture(autouse=True)
def _fast_path_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MNIST_LAB_FAST_PATH", raising=False)


def _faults_per_block(mb: int = 8, rounds: int = 20) -> float:
    """Minor page faults per allocate-write-free of an ``mb`` MB tensor (the size of a CNN's activations)."""
    torch.empty(mb * 2**18).fill_(1.0)  # the first one may grow the heap
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        torch.empty(mb * 2**18).fill_(1.0)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / rounds


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_training_math_keeps_large_blocks_in_the_heap() -> None:
    fast.ensure_math("cpu")  # what train() calls before its first step
    # Without them an 8 MB block is mmap'ed afresh and faulted in again: up to 2,048 faults (4 kB pages).
    assert _faults_per_block() < 20  # measured 0; 205 without the thresholds (glibc adapts some)
    assert heap.keep_freed_memory()


def test_fast_path_off_leaves_the_heap_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MNIST_LAB_FAST_PATH", "0")
    monkeypatch.setattr(heap, "_done", None)
    monkeypatch.setattr(heap, "_set_thresholds", lambda: pytest.fail("mallopt called with the fast path off"))
    assert heap.keep_freed_memory() is False
    fast.ensure_math("cpu")
    assert heap._done is None
