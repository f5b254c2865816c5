"""Learning curves as chart-ready columns, from live progress events or a saved history.

A live job gives :class:`~mnist_core.train.ProgressEvent` objects; a saved
run gives the dicts of its ``history.json``. Both carry the same fields, so
one function turns either into numpy columns: the running training loss and
accuracy per step point, and the validation figures per epoch. The x axis is
in epochs (fractional for step points), so curves of runs with different
batch sizes line up. A saved run's curve for the Runs page
(:func:`curve_columns`) also keeps every x axis it offers (:data:`CURVE_AXES`).
"""

from __future__ import annotations

import math
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


def number(value: Any) -> float | int | None:
    """A finite number (ints stay ints), or None for anything else (missing, text, NaN, bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        return value if abs(value) < 2**63 else None
    return value if math.isfinite(value) else None


def column(points: Sequence[Point], name: str) -> np.ndarray:
    """One field of every point as float64; NaN where it is missing or not a number (a damaged file)."""
    values = [number(_get(p, name)) for p in points]
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def split(points: Sequence[Point], max_points: int) -> tuple[list[Point], list[Point]]:
    """The step points, thinned to ``max_points`` (:func:`thin`), and the epoch points; others dropped."""
    steps = [p for p in points if _get(p, "kind") == "step"]
    epochs = [p for p in points if _get(p, "kind") == "epoch"]
    return [steps[i] for i in thin(len(steps), max_points)], epochs


def epochs_elapsed(points: Sequence[Point]) -> np.ndarray:
    """Step count converted to epochs (``step / steps_per_epoch``), so batch sizes line up.

    NaN where the step is not a number; a point without ``total_steps`` and
    ``epochs`` (a damaged file) is placed at its own ``epoch``.
    """
    out = []
    for p in points:
        step, total, epochs = (number(_get(p, name)) for name in ("step", "total_steps", "epochs"))
        if step is None:
            out.append(math.nan)
        elif total and epochs:
            out.append(step * epochs / total)
        else:
            epoch = number(_get(p, "epoch"))
            out.append(math.nan if epoch is None else epoch)
    return np.array(out, dtype=np.float64)


def thin(n: int, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` evenly spaced rows of ``n``, first and last kept."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def learning_curves(points: Sequence[Point], max_points: int = MAX_POINTS) -> Curves:
    """Split ``points`` into step and epoch series; step series thinned to ``max_points``."""
    steps, epochs = split(points, max_points)
    return Curves(
        step_x=epochs_elapsed(steps),
        step_loss=column(steps, "loss"),
        step_acc=column(steps, "train_acc"),
        epoch_x=column(epochs, "epoch"),
        epoch_loss=column(epochs, "loss"),
        epoch_acc=column(epochs, "train_acc"),
        val_loss=column(epochs, "val_loss"),
        val_acc=column(epochs, "val_acc"),
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


# -- a saved run's curve, with every x axis the Runs page offers ------------------------------

# x axes of a learning curve: history field -> label.
CURVE_AXES = {"epoch": "epoch", "step": "optimizer step", "samples": "images seen",
              "elapsed_s": "wall time (s)"}


@dataclass(frozen=True)
class CurveColumns:
    """One run's learning curve as float64 columns, NaN where a value is missing.

    ``train`` are the running means of the step points; ``val`` the epoch ends.
    Each maps a field of :data:`CURVE_AXES` ("epoch" fractional for steps),
    plus "loss" and "accuracy", to an array: train arrays have length S, val
    arrays length E.
    """

    train: dict[str, np.ndarray]
    val: dict[str, np.ndarray]

    @property
    def empty(self) -> bool:
        return not (len(self.train["loss"]) or len(self.val["loss"]))

    def thinned(self, max_points: int) -> CurveColumns:
        """At most ``max_points`` training points (first and last kept); validation untouched."""
        keep = thin(len(self.train["loss"]), max_points)
        if len(keep) == len(self.train["loss"]):
            return self
        return CurveColumns({k: v[keep] for k, v in self.train.items()}, self.val)


def curve_columns(history: Sequence[Any], max_points: int = 400) -> CurveColumns:
    """Split a ``history.json`` list into step and epoch columns; steps thinned to ``max_points``.

    The same columns as :func:`learning_curves` (a live run's), with the
    fields the Runs page can put on the x axis. Tolerates damaged entries:
    anything that is not an object with a known ``kind`` is skipped, and
    non-numeric fields become NaN.
    """
    steps, epochs = split([h for h in history if isinstance(h, Mapping)], max_points)
    train = _columns(steps, "train_acc", "loss")
    train["epoch"] = epochs_elapsed(steps)
    val = _columns(epochs, "val_acc", "val_loss")
    return CurveColumns(train, val)


def _columns(points: Sequence[Mapping[str, Any]], acc: str, loss: str) -> dict[str, np.ndarray]:
    names = {"epoch": "epoch", "step": "step", "samples": "samples", "elapsed_s": "elapsed_s",
             "loss": loss, "accuracy": acc}
    return {key: column(points, name) for key, name in names.items()}
