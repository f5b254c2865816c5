"""Configurations out of range are refused by the core, not only by the sliders; the CLI says the same.

The CLI runs as a user runs it, ``python -m mnist_core train ...`` in a
child process: its stderr must carry the core's own message and it must
exit non-zero, leaving no run folder behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mnist_core import runs
from mnist_core.config import RunConfig
from mnist_core.errors import ConfigError
from mnist_core.jobs import JobRegistry
from mnist_core.pipeline import run_training

CASES = [
    # (CLI flags, the same configuration for the core, the field named)
    (["--depth", "0"], {"hidden": ()}, "hidden"),
    (["--width", "10000000"], {"hidden": (10_000_000,)}, "hidden"),
    (["--depth", "100"], {"hidden": (512,) * 100}, "hidden"),
    (["--batch-size", "0"], {"batch_size": 0}, "batch_size"),
    (["--batch-size", "1000000"], {"batch_size": 1_000_000}, "batch_size"),
    (["--lr", "0"], {"lr": 0.0}, "lr"),
    (["--lr", "-0.001"], {"lr": -0.001}, "lr"),
    (["--lr", "nan"], {"lr": float("nan")}, "lr"),
    (["--lr", "inf"], {"lr": float("inf")}, "lr"),
    (["--epochs", "0"], {"epochs": 0}, "epochs"),
    (["--dropout", "1"], {"dropout": 1.0}, "dropout"),
]
# The issue's four: depth 0, width 10^7, a batch larger than any training set, lr <= 0.
ISSUE_FLAGS = ("--depth 0", "--width 10000000", "--batch-size 1000000", "--lr 0", "--lr -0.001")
CLI_CASES = [c for c in CASES if " ".join(c[0]) in ISSUE_FLAGS]
TOO_BIG = "batch_size: 1000 is larger than the training set (900 images)"


def _core_message(changes: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        RunConfig(**changes)
    return str(caught.value)


def _cli(runs_dir: Path, data_dir: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MNIST_LAB_CHECKPOINTS": str(runs_dir), "MNIST_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "mnist_core", "train", "--quiet", *flags],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


@pytest.mark.parametrize(("flags", "changes", "field"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_the_core_refuses_it_naming_the_field(flags: list[str], changes: dict[str, Any], field: str) -> None:
    message = _core_message(changes)
    assert message.startswith(f"{field}: "), message
    with pytest.raises(ConfigError, match=field):
        RunConfig.from_dict(RunConfig().to_dict() | {k: list(v) if isinstance(v, tuple) else v
                                                    for k, v in changes.items()})  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("flags", "changes", "field"), CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_the_cli_prints_the_core_message_and_exits_non_zero(
    runs_dir: Path, synthetic_data_dir: Path, flags: list[str], changes: dict[str, Any], field: str
) -> None:
    proc = _cli(runs_dir, synthetic_data_dir, *flags)
    assert proc.returncode != 0
    assert proc.stderr.strip() == f"error: {_core_message(changes)}", proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(runs_dir.iterdir()) == []


def test_a_batch_larger_than_this_training_set_is_refused_before_any_run_folder(
    runs_dir: Path, synthetic_data_dir: Path
) -> None:
    """The generated training split has 900 images: a batch of 1000 passes the config, not the data."""
    cfg = RunConfig(hidden=(16,), batch_size=1000)
    with pytest.raises(ConfigError) as caught:
        run_training(cfg, runs_dir=runs_dir, data_root=synthetic_data_dir)
    assert str(caught.value) == TOO_BIG and caught.value.field == "batch_size"
    assert list(runs_dir.iterdir()) == []
    registry = JobRegistry()  # as the app runs it: the job fails with the same message
    job = registry.submit(cfg, runs_dir=runs_dir, data_root=synthetic_data_dir)
    assert registry.wait(timeout=60)
    snap = job.snapshot()
    assert snap.state == "failed" and snap.error == TOO_BIG
    assert snap.run_id is None and list(runs_dir.iterdir()) == []


@pytest.mark.slow
def test_the_cli_refuses_a_batch_larger_than_the_training_set_with_the_same_message(
    runs_dir: Path, synthetic_data_dir: Path
) -> None:
    proc = _cli(runs_dir, synthetic_data_dir, "--width", "16", "--batch-size", "1000")
    assert proc.returncode != 0
    assert proc.stderr.strip() == f"error: {TOO_BIG}"
    assert runs.list_runs(runs_dir) == [] and list(runs_dir.iterdir()) == []
