"""Saved runs for tests that need a model to read with, without training one."""

from __future__ import annotations

from pathlib import Path

from mnist_core import runs
from mnist_core.config import RunConfig
from mnist_core.models import build_model


def untrained_run(runs_dir: Path, cfg: RunConfig, name: str, test_accuracy: float = 0.5) -> str:
    """A completed run whose weights are ``cfg``'s untrained model; its id.

    ``test_accuracy`` only orders the runs (the Draw page picks the best).
    """
    writer = runs.RunWriter.create(cfg, runs_dir, name=name)
    runs.write_torch(writer.path / "weights.pt", build_model(cfg).state_dict())
    writer.finish("completed", {"test_accuracy": test_accuracy})
    return writer.id
