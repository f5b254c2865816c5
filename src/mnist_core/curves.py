"""Learning curves as chart-ready columns, from live progress events or a saved history.

A live job gives :class:`~mnist_core.train.ProgressEvent` objects; a saved
run gives the dicts of its ``history.json``. Both carry the same fields, so
one function turns either into numpy columns: the running training loss and
accuracy per step point, and the validation figures per epoch. The x axis is
in epochs (fractional for step points), so curves of runs with different
batch sizes line up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .train import ProgressEvent

Point = ProgressEvent | Mapping[str, Any]
# Points drawn per curve: enough for a smooth line, few enough that a live chart
# redrawn twice a second stays cheap to build, send and draw (a long run has tens of thousands).
MAX_POINTS = 800


@dataclass(frozen=True)
class Curves:
    """Columns of a learning curve; every array is float64, NaN where a value is missing."""

    step_x: np.ndarray  # (S,) epochs elapsed at each step point, e.g. 1.25
    step_loss: np.ndarray  # (S,) mean training loss since the previous point
    step_acc: np.ndarray  # (S,) mean training accuracy since the previous point, 0..1
    epoch_x: np.ndarray  # (E,) 1, 2, ... epochs finished
    epoch_loss: np.ndarray  # (E,) mean training loss of each epoch
    epoch_acc: np.ndarray  # (E,) mean training accuracy of each epoch
    val_loss: np.ndarray  # (E,) validation loss at each epoch end
    val_acc: np.ndarray  # (E,) validation accuracy at each epoch end

    @property
    def empty(self) -> bool:
        return not (len(self.step_x) or len(self.epoch_x))


def _get(point: Point, name: str) -> Any:
    # Exact type checks first: this runs for every point twice a second during a live run.
    if type(point) is ProgressEvent:
        return getattr(point, name)
    if type(point) is dict or isinstance(point, Mapping):
        return point.get(name)
    return getattr(point, name)


def _column(points: Sequence[Point], name: str) -> np.ndarray:
    values = [_get(p, name) for p in points]
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _epochs_elapsed(points: Sequence[Point]) -> np.ndarray:
    """Step count converted to epochs: step / (total_steps / epochs)."""
    out = []
    for p in points:
        total, epochs = _get(p, "total_steps"), _get(p, "epochs")
        per_epoch = total / epochs if total and epochs else 1.0
        out.append(_get(p, "step") / per_epoch)
    return np.array(out, dtype=np.float64)


def thin(n: int, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` evenly spaced rows of ``n``, first and last kept."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def learning_curves(points: Sequence[Point], max_points: int = MAX_POINTS) -> Curves:
    """Split ``points`` into step and epoch series; step series thinned to ``max_points``."""
    steps = [p for p in points if _get(p, "kind") == "step"]
    epochs = [p for p in points if _get(p, "kind") == "epoch"]
    keep = thin(len(steps), max_points)
    steps = [steps[i] for i in keep]
    return Curves(
        step_x=_epochs_elapsed(steps),
        step_loss=_column(steps, "loss"),
        step_acc=_column(steps, "train_acc"),
        epoch_x=_column(epochs, "epoch"),
        epoch_loss=_column(epochs, "loss"),
        epoch_acc=_column(epochs, "train_acc"),
        val_loss=_column(epochs, "val_loss"),
        val_acc=_column(epochs, "val_acc"),
    )


def merge_history(saved: Sequence[Mapping[str, Any]], live: Sequence[Point]) -> list[Point]:
    """A resumed run's whole curve: the saved points before the first live one, then the live ones.

    ``saved`` is the run's history from disk (which the resumed job keeps
    rewriting); ``live`` the job's own events, which start where it resumed.
    """
    if not live:
        return list(saved)
    first = _get(live[0], "step")
    return [*(p for p in saved if p["step"] < first), *live]
