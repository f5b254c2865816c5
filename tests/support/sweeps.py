"""Sweep tests' stand-ins: a saved run as the sweep code sees it, and a queue that trains nothing."""

from __future__ import annotations

from pathlib import Path

from mnist_core.config import RunConfig
from mnist_core.runs import RunInfo


def fake_run(cfg: RunConfig, tag: str, accuracy: float, i: int, status: str = "completed") -> RunInfo:
    """Run ``run-<i>`` of ``cfg``, tagged ``tag``, that reached ``accuracy`` (no folder behind it)."""
    return RunInfo(
        id=f"run-{i}", path=Path("/nonexistent"), status=status, config=cfg, name="", created=f"{i:04}",
        updated="", summary={"test_accuracy": accuracy, "train_time_s": 2.0, "samples_per_s": 900.0},
        meta={"tags": [tag]},
    )


class RecordingQueue:
    """A job registry that records what is submitted and trains nothing."""

    def __init__(self) -> None:
        self.submitted: list[dict[str, object]] = []

    def active(self) -> list[object]:
        return []

    def submit(self, cfg: RunConfig, **kwargs: object) -> object:
        self.submitted.append({"config": cfg, **kwargs})
        return object()
