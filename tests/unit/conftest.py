"""Fixtures shared by the unit tests of a correction (memory, teach): one tiny run, trained once."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnist_core import runs
from mnist_core.config import RunConfig
from tests.support.saved import copy_runs, trained_runs

TINY = RunConfig(hidden=(16,), epochs=2, batch_size=50, lr=3e-3)


@pytest.fixture(scope="session")
def tiny_trained(tmp_path_factory: pytest.TempPathFactory, synthetic_data_dir: Path) -> Path:
    """A folder holding one :data:`TINY` run trained on the synthetic data; never changed (tests copy it)."""
    return trained_runs(tmp_path_factory.mktemp("tiny-runs"), synthetic_data_dir, {"tiny": TINY})


@pytest.fixture
def parent(tiny_trained: Path, runs_dir: Path) -> runs.RunInfo:
    """The tiny run, copied into this test's ``runs_dir``: the run a correction starts from."""
    (info,) = copy_runs(tiny_trained, runs_dir)
    return info
