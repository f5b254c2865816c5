"""Fixtures of the cluster tests: one real two-node Ray cluster per module, always torn down."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from ray_cluster import LocalCluster

from tests.support.apptest import app_path

__all__ = ["app_path"]  # the fixture: app.py, ui/ importable, fresh Streamlit caches


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    pytest.importorskip("ray", reason="needs ray: pip install -r requirements-ray.txt")
    # Its own short folder: Ray's socket paths must stay under a Unix socket's 107 bytes, and pytest's
    # numbered temp folders are pruned by any later pytest run on the machine, live cluster or not.
    root = Path(tempfile.mkdtemp(prefix="mnist-rc-"))
    nodes = LocalCluster(root)
    try:
        yield nodes.start()
    finally:
        nodes.stop()  # even when start() or a test failed half-way
        left = nodes.pids()
        shutil.rmtree(root, ignore_errors=True)
    assert left == [], f"processes of the cluster outlived it: {left}"
