"""What each swept value did: means over seed repeats, spreads, and verdicts against the noise.

Groups a sweep's completed runs by one swept value (one line per combination
of the other axes), pools runs that differ only by seed, and says whether the
step from one value to the next is larger than the seed-to-seed noise. Reads
runs through :mod:`mnist_core.sweeps`; draws nothing (``ui.sweep_view`` does).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .curves import number
from .runs import RunInfo
from .sweeps import AXES, AXIS_LABELS, EARLY_TAG, Sweep, _key, axis_value, order, points

# Two means differ by more than the noise when the gap exceeds this many standard
# errors of the difference (about a 95% two-sided test for normal noise).
NOISE_Z = 2.0


@dataclass(frozen=True)
class Cell:
    """One value of an axis (within one group of the other axes), over seed repeats."""

    value: Any
    mean: float
    std: float | None  # sample standard deviation; None with a single run
    n: int
    run_ids: tuple[str, ...]


@dataclass(frozen=True)
class Step:
    """The change of the mean from one value of an axis to the next, against the noise."""

    group: str
    frm: Any
    to: Any
    delta: float
    noise: float | None  # NOISE_Z standard errors of the difference; None without repeats
    verdict: str  # "larger than noise", "within noise" or "no repeats to tell"


@dataclass(frozen=True)
class Effect:
    axis: str
    metric: str
    groups: dict[str, list[Cell]]  # label of the other axes' values -> cells along the axis
    steps: list[Step]


def metric_value(run: RunInfo, metric: str) -> float | None:
    value = number(run.summary.get(metric))
    return float(value) if value is not None else None


def effects(sweep: Sweep, runs: Sequence[RunInfo], axis: str, metric: str) -> Effect:
    """``metric`` against each value of ``axis``, one line per combination of the other axes.

    Runs that differ only by seed are pooled: mean, standard deviation and
    count. Between neighbouring values the difference of means is compared
    with ``NOISE_Z`` standard errors of that difference.
    """
    others = [a for a in sweep.axes if a not in (axis, "seed")]
    groups: dict[str, dict[Any, list[tuple[float, str]]]] = {}
    for p in points(sweep, runs):
        if p.state != "done" or p.run is None:
            continue
        value = metric_value(p.run, metric)
        if value is None:
            continue
        label = ", ".join(f"{AXIS_LABELS.get(a, a).split(' (')[0].lower()} {axis_value(p.config, a)}"
                          for a in others) or "all"
        groups.setdefault(label, {}).setdefault(axis_value(p.config, axis), []).append((value, p.run.id))
    cells: dict[str, list[Cell]] = {}
    steps: list[Step] = []
    for label, by_value in groups.items():
        row = [_cell(v, by_value[v]) for v in sorted(by_value, key=order)]
        cells[label] = row
        steps += [_step(label, a, b) for a, b in itertools.pairwise(row)]
    return Effect(axis, metric, cells, steps)


def _cell(value: Any, samples: list[tuple[float, str]]) -> Cell:
    xs = [v for v, _ in samples]
    std = statistics.stdev(xs) if len(xs) > 1 else None
    return Cell(value, statistics.fmean(xs), std, len(xs), tuple(i for _, i in samples))


def _step(group: str, a: Cell, b: Cell) -> Step:
    delta = b.mean - a.mean
    if a.std is None or b.std is None:
        return Step(group, a.value, b.value, delta, None, "no repeats to tell")
    noise = NOISE_Z * math.sqrt(a.std**2 / a.n + b.std**2 / b.n)
    verdict = "larger than noise" if abs(delta) > noise else "within noise"
    return Step(group, a.value, b.value, delta, noise, verdict)


def seed_noise(sweep: Sweep, runs: Sequence[RunInfo], metric: str) -> float | None:
    """Pooled seed-to-seed standard deviation of ``metric`` over the sweep's repeated points."""
    groups: dict[str, list[float]] = {}
    for p in points(sweep, runs):
        value = metric_value(p.run, metric) if p.state == "done" and p.run else None
        if value is not None:
            groups.setdefault(_key(p.config.replace(seed=0)), []).append(value)
    num = sum((len(v) - 1) * statistics.variance(v) for v in groups.values() if len(v) > 1)
    dof = sum(len(v) - 1 for v in groups.values() if len(v) > 1)
    return math.sqrt(num / dof) if dof else None


def point_rows(sweep: Sweep, runs: Sequence[RunInfo]) -> list[dict[str, Any]]:
    """One row per point: swept values, state, run id and headline metrics (tables, heatmaps)."""
    out = []
    for p in points(sweep, runs):
        row: dict[str, Any] = {a: axis_value(p.config, a) for a in (*AXES, "seed")}
        row |= {"index": p.index, "label": p.config.label(), "state": p.state,
                "id": p.run.id if p.run else None,
                "early": bool(p.run) and EARLY_TAG in (p.run.meta.get("tags") or ())}
        for metric in ("test_accuracy", "train_time_s", "time_per_epoch_s", "parameters", "macs",
                       "latency_p50_ms", "co2_kg"):
            row[metric] = metric_value(p.run, metric) if p.run else None
        out.append(row)
    return out
