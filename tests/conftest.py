"""Fixtures shared by tests/unit, tests/app and tests/e2e.

Every test runs with its own empty checkpoints folder (``MNIST_LAB_CHECKPOINTS``)
and, unless marked ``realdata``, with ``MNIST_DATA_DIR`` pointing at a small
generated dataset, so no test reads or writes the developer's ./data or
./checkpoints. Tests marked ``realdata`` keep the caller's ``MNIST_DATA_DIR``
and are skipped, with a reason, when it is unset.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# codecarbon reads its log level when imported; set it before any test imports it.
os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
# Ray 2.60 settles its authentication mode once per process, and turns token
# authentication on when ~/.ray/auth_token exists. The tests start local Ray
# instances and a two-node cluster (tests/cluster, its nodes without a token)
# from the same pytest process: one mode for all of them, set before Ray is imported.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

ROOT = Path(__file__).resolve().parent.parent

# Size of the generated dataset: big enough to learn something, small enough
# that the quick default model trains on it in a few seconds.
SYNTHETIC_TRAIN = 1000
SYNTHETIC_TEST = 200


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding a generated MNIST in the real IDX layout (MNIST/raw/)."""
    from tests.support.synthetic import write_dataset

    root = tmp_path_factory.mktemp("synthetic-data")
    return write_dataset(root, n_train=SYNTHETIC_TRAIN, n_test=SYNTHETIC_TEST)


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    """An empty checkpoints folder; the same one ``MNIST_LAB_CHECKPOINTS`` points at."""
    path = tmp_path / "checkpoints"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def real_data_dir() -> Path:
    """The real MNIST root from ``MNIST_DATA_DIR``; skips when it is not there."""
    return _real_data_root_or_skip()


@pytest.fixture(autouse=True)
def _isolated_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> None:
    monkeypatch.setenv("CODECARBON_LOG_LEVEL", "error")
    monkeypatch.setenv("MNIST_LAB_CHECKPOINTS", str(runs_dir))
    if request.node.get_closest_marker("realdata"):
        monkeypatch.setenv("MNIST_DATA_DIR", str(_real_data_root_or_skip()))
    else:
        monkeypatch.setenv("MNIST_DATA_DIR", str(request.getfixturevalue("synthetic_data_dir")))


@pytest.fixture(autouse=True)
def _fresh_matmul_math() -> Iterator[None]:
    """Each test starts as a fresh process: PyTorch's matmul precision, none chosen, no fast-path setting.

    A run sets the process-wide float32 matmul precision and keeps it
    (mnist_core.fast.precision); this puts it back after every test, so no
    test depends on which ran before it.
    """
    import torch

    from mnist_core import fast
    from mnist_core.fast import precision

    before = torch.get_float32_matmul_precision()
    yield
    torch.set_float32_matmul_precision(before)
    precision._chosen = None
    fast.set_enabled(None)


def _real_data_root_or_skip() -> Path:
    value = os.environ.get("MNIST_DATA_DIR")
    if not value:
        pytest.skip("needs the real MNIST: set MNIST_DATA_DIR to the folder that contains MNIST/raw/")
    root = Path(value).resolve()
    if not (root / "MNIST" / "raw").is_dir():
        pytest.skip(f"MNIST_DATA_DIR={value} has no MNIST/raw/ folder")
    return root
