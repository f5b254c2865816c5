"""Sweeps: a list of configurations run as one unit, tagged, resumable.

A :class:`Sweep` is built from a grid (:func:`grid_configs`: every combination
of the values chosen for depth, width, batch size, learning rate, model and
dataset, times seed repeats) or from any list of configurations (the study
reproduction in :mod:`mnist_core.study`). It is saved beside the runs, and
each of its runs is a normal run tagged ``sweep:<id>``. Which points are done
is read from the runs themselves, so stopping and resuming never redoes a
finished run: completed points are skipped, stopped or interrupted ones are
resumed from their checkpoint, the rest start.

This module builds, saves and reads sweeps and says which points are done.
Two others hold the rest, and their names are reachable from here too
(``sweeps.submit``, ``sweeps.effects``):

- :mod:`mnist_core.sweep_run` trains the points: in the job registry's local
  queue, or on a Ray cluster (a kind of job of the same registry);
- :mod:`mnist_core.sweep_analysis` groups the runs by one swept value, averages
  over seed repeats and says whether the step from one value to the next is
  larger than the seed-to-seed noise.
"""

from __future__ import annotations

import datetime as dt
import importlib
import itertools
import json
import math
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import RunConfig
from .errors import ConfigError, CorruptRun
from .estimate import from_past_runs
from .jobs import PathLike
from .runs import RunInfo, list_sweep_data, load_sweep_data, save_sweep_data
from .sizing import SplitSizes

TAG_PREFIX = "sweep:"
EARLY_TAG = "stopped-early"  # a budgeted search's trial stopped by its scheduler: done, not resumable
AXES = ("model", "dataset", "depth", "width", "batch_size", "lr")
AXIS_LABELS = {
    "model": "Model", "dataset": "Dataset", "depth": "Depth (hidden layers)", "width": "Width (units)",
    "batch_size": "Batch size", "lr": "Learning rate", "seed": "Seed",
}
MAX_POINTS = 500  # a grid larger than this is almost certainly a mistake
MAX_REPEATS = 20
PathOrNone = PathLike | None


# -- building ------------------------------------------------------------------------


@dataclass(frozen=True)
class GridSpec:
    """Values to try on each axis; an empty tuple keeps the base configuration's value."""

    depth: tuple[int, ...] = ()
    width: tuple[int, ...] = ()
    batch_size: tuple[int, ...] = ()
    lr: tuple[float, ...] = ()
    model: tuple[str, ...] = ()
    dataset: tuple[str, ...] = ()
    repeats: int = 1  # seeds base.seed, base.seed + 1, ...

    def swept(self) -> dict[str, tuple[Any, ...]]:
        """The axes with at least one value chosen, in :data:`AXES` order."""
        return {axis: tuple(getattr(self, axis)) for axis in AXES if getattr(self, axis)}


def grid_configs(base: RunConfig, spec: GridSpec) -> list[RunConfig]:
    """Every combination of the chosen values (then each seed repeat), validated.

    Depth and width set the hidden layers: ``depth`` layers of ``width`` units
    (the base's depth or first width where one of them is not swept).
    Raises :class:`ConfigError` naming the first combination that is invalid.
    """
    repeats = spec.repeats
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= MAX_REPEATS:
        raise ConfigError("repeats", f"{spec.repeats!r} is not an integer in [1, {MAX_REPEATS}]")
    values = {axis: getattr(spec, axis) or (_base_value(base, axis),) for axis in AXES}
    for axis in AXES:
        if len(set(values[axis])) != len(values[axis]):
            raise ConfigError(axis, f"a value is listed twice: {list(values[axis])}")
    total = math.prod(len(v) for v in values.values()) * spec.repeats
    if total > MAX_POINTS:
        raise ConfigError("sweep", f"{total} runs is more than the {MAX_POINTS} a sweep may hold")
    out: list[RunConfig] = []
    for combo in itertools.product(*(values[a] for a in AXES)):
        point = dict(zip(AXES, combo, strict=True))
        for repeat in range(spec.repeats):
            out.append(_point_config(base, point, base.seed + repeat))
    return out


def _base_value(base: RunConfig, axis: str) -> Any:
    if axis == "depth":
        return base.depth
    if axis == "width":
        return base.hidden[0] if base.hidden else 128
    return getattr(base, axis)


def _point_config(base: RunConfig, point: Mapping[str, Any], seed: int) -> RunConfig:
    hidden = (int(point["width"]),) * int(point["depth"]) if (point["depth"] and point["width"]) else ()
    try:
        return base.replace(
            model=point["model"], dataset=point["dataset"], hidden=hidden,
            batch_size=point["batch_size"], lr=float(point["lr"]), seed=seed,
        )
    except ConfigError as exc:
        where = ", ".join(f"{k}={v}" for k, v in point.items())
        raise ConfigError(exc.field, f"{exc.reason} (in the point {where})") from exc


def axis_value(cfg: RunConfig, axis: str) -> Any:
    """The value of a swept axis in one configuration ("depth" and "width" read ``hidden``)."""
    if axis == "depth":
        return cfg.depth
    if axis == "width":
        return max(cfg.hidden) if cfg.hidden else None
    return getattr(cfg, axis)


# -- the sweep itself --------------------------------------------------------------------


@dataclass(frozen=True)
class Sweep:
    """A named list of configurations; its runs carry the tag :attr:`tag`."""

    id: str
    name: str
    configs: tuple[RunConfig, ...]
    axes: dict[str, list[Any]]  # swept axis -> values, in the order to show them
    created: str
    kind: str = "grid"  # "grid" or "study"
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the study's experiments

    @property
    def tag(self) -> str:
        return f"{TAG_PREFIX}{self.id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "kind": self.kind, "created": self.created,
            "axes": self.axes, "configs": [c.to_dict() for c in self.configs], "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Sweep:
        """Rebuild a saved sweep; anything malformed is a :class:`CorruptRun`."""
        if not isinstance(data, dict):
            raise CorruptRun("a sweep file must hold a JSON object")
        try:
            configs = tuple(RunConfig.from_dict(c) for c in data["configs"])
            axes = {str(k): list(v) for k, v in dict(data.get("axes") or {}).items()}
            return cls(
                id=str(data["id"]), name=str(data["name"]), configs=configs, axes=axes,
                created=str(data.get("created", "")), kind=str(data.get("kind", "grid")),
                extra=dict(data.get("extra") or {}),
            )
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise CorruptRun(f"sweep file is not valid: {exc}") from exc


_SLUG = re.compile(r"[^a-z0-9]+")


def new_sweep_id(name: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    slug = _SLUG.sub("-", name.lower()).strip("-")[:32] or "sweep"
    return f"{now:%Y%m%d-%H%M%S}-{slug}-{secrets.token_hex(2)}"


def create(
    configs: Sequence[RunConfig],
    name: str,
    runs_dir: PathOrNone = None,
    *,
    axes: Mapping[str, Sequence[Any]] | None = None,
    kind: str = "grid",
    extra: Mapping[str, Any] | None = None,
) -> Sweep:
    """Save a new sweep (its runs start when it is submitted)."""
    if not configs:
        raise ConfigError("sweep", "choose at least one value for each swept setting")
    unique = list(dict.fromkeys(configs))
    if len(unique) > MAX_POINTS:
        raise ConfigError("sweep", f"{len(unique)} runs is more than the {MAX_POINTS} a sweep may hold")
    name = name.strip() or "sweep"
    sweep = Sweep(
        id=new_sweep_id(name), name=name[:120], configs=tuple(unique),
        axes={k: list(v) for k, v in (axes or swept_axes(unique)).items()},
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), kind=kind, extra=dict(extra or {}),
    )
    save_sweep_data(sweep.id, sweep.to_dict(), runs_dir)
    return sweep


def swept_axes(configs: Iterable[RunConfig]) -> dict[str, list[Any]]:
    """Axes (and "seed") that take more than one value across ``configs``."""
    configs = list(configs)
    out: dict[str, list[Any]] = {}
    for axis in (*AXES, "seed"):
        values = sorted({axis_value(c, axis) for c in configs}, key=order)
        if len(values) > 1:
            out[axis] = values
    return out


def order(value: Any) -> tuple[int, Any]:
    """Sort key for swept values: numbers by size, then anything else by its text."""
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


def load(sweep_id: str, runs_dir: PathOrNone = None) -> Sweep:
    return Sweep.from_dict(load_sweep_data(sweep_id, runs_dir))


def list_sweeps(runs_dir: PathOrNone = None) -> list[Sweep]:
    """Every readable sweep, newest first (unreadable files are skipped by the runs layer)."""
    out = []
    for data in list_sweep_data(runs_dir):
        try:
            out.append(Sweep.from_dict(data))
        except CorruptRun:
            continue
    return sorted(out, key=lambda s: (s.created, s.id), reverse=True)


# -- state: which points are done ---------------------------------------------------------


def _key(cfg: RunConfig) -> str:
    return json.dumps(cfg.to_dict(), sort_keys=True)


@dataclass(frozen=True)
class Point:
    """One configuration of a sweep and the run that stands for it, if any."""

    index: int
    config: RunConfig
    run: RunInfo | None
    state: str  # "done", "running", "resumable" (stopped, interrupted or failed) or "todo"


def points(sweep: Sweep, runs: Iterable[RunInfo]) -> list[Point]:
    """Each configuration with its best run: completed first, then the newest."""
    by_key: dict[str, list[RunInfo]] = {}
    for run in runs:
        tags = run.meta.get("tags")
        if isinstance(tags, list) and sweep.tag in tags:
            by_key.setdefault(_key(run.config), []).append(run)
    out = []
    for i, cfg in enumerate(sweep.configs):
        found = sorted(by_key.get(_key(cfg), ()), key=lambda r: (r.status == "completed", r.created))
        run = found[-1] if found else None
        out.append(Point(i, cfg, run, _state(run)))
    return out


def states(saved: Iterable[Sweep], runs: Iterable[RunInfo]) -> tuple[str, ...]:
    """Every point's state, sweep after sweep: two differ once a run starts or ends, whoever trains it."""
    runs = list(runs)
    return tuple(p.state for sweep in saved for p in points(sweep, runs))


def _state(run: RunInfo | None) -> str:
    if run is None:
        return "todo"
    if run.status == "completed" or (run.status == "stopped" and EARLY_TAG in (run.meta.get("tags") or ())):
        return "done"
    return "running" if run.status == "running" else "resumable"  # every other status is RESUMABLE


STATUSES = ("running", "stopped", "not started", "done")
STATUS_HELP = {
    "running": "its runs are training or queued",
    "stopped": "some runs are not finished and nothing is training: resume it to finish them",
    "not started": "none of its runs has started",
    "done": "every run finished",
}


def status(pts: Sequence[Point], active: bool = False) -> str:
    """The one word for a sweep's state, the same on the page and in ``sweep --list``.

    ``active``: the caller knows of queued or running jobs of the sweep (the
    page's job queue, a Ray driver). Without it a sweep still reads "running"
    while one of its runs is training, seen from its run folder, so another
    process (the CLI beside the app) says the same.
    """
    if active or any(p.state == "running" for p in pts):
        return "running"
    if all(p.state == "done" for p in pts):
        return "done"
    return "not started" if all(p.state == "todo" for p in pts) else "stopped"


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    running: int
    waiting: int  # not done and not running: queued, resumable or not started
    eta_s: float | None  # time still needed for every point not done (a lower bound with unknowns)
    eta_detail: str
    status: str = "stopped"  # one of STATUSES

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


Estimator = Callable[[RunConfig], float | None]  # seconds a whole run of the config takes


def progress(
    sweep: Sweep,
    runs: Sequence[RunInfo],
    sizes: SplitSizes,
    running_eta: float = 0.0,
    *,
    active: bool = False,
    estimate: Estimator | None = None,
) -> Progress:
    """Runs done out of the total, the sweep's :func:`status`, and the time left.

    Each point not done and not running is estimated from its own
    configuration: ``estimate(cfg)`` when given (the page measures configs no
    past run covers), else past runs of the same model and batch size
    (:func:`point_eta_s`). A point nothing covers is counted as unknown, never
    guessed from other points: a study's rows differ 100x in time, so an
    average of the finished ones says little about the rest. ``running_eta``
    is the time the running jobs say they still need.
    """
    pts = points(sweep, runs)
    done = sum(p.state == "done" for p in pts)
    running = sum(p.state == "running" for p in pts)
    state = status(pts, active)
    left, unknown = running_eta, 0
    for p in pts:
        if p.state in ("done", "running"):
            continue
        seconds = estimate(p.config) if estimate is not None else None
        if seconds is None:
            seconds = point_eta_s(p.config, runs, sizes)
        if seconds is None:
            unknown += 1
        else:
            left += seconds
    waiting = len(pts) - done - running
    if waiting and unknown == waiting and not running_eta:
        return Progress(len(pts), done, running, waiting, None, "known after the first run finishes", state)
    detail = ("each run from its own configuration" if not unknown
              else f"{unknown} run{'s' if unknown > 1 else ''} not estimated yet")
    return Progress(len(pts), done, running, waiting, left, detail, state)


def point_eta_s(cfg: RunConfig, runs: Sequence[RunInfo], sizes: SplitSizes) -> float | None:
    """Expected training time of one configuration from past runs, or None."""
    estimate = from_past_runs(cfg, runs, sizes)
    return estimate.seconds * cfg.epochs if estimate is not None else None


# -- the rest of the sweep's names, from the modules that hold them ---------------------------

_ELSEWHERE = {
    "sweep_run": ("sweep_jobs", "submit", "point_name", "RayOutcome", "run_on_ray", "split_for_ray",
                  "stop", "start_on_ray", "ray_task", "RAY_KIND", "Started", "start", "launch",
                  "launch_study", "TimeEstimate", "time_estimate", "Live", "live", "MAX_MEASURED",
                  "any_active"),
    "sweep_analysis": ("NOISE_Z", "Cell", "Step", "Effect", "metric_value", "effects", "seed_noise",
                       "point_rows"),
}
_HOME = {name: module for module, names in _ELSEWHERE.items() for name in names}


def __getattr__(name: str) -> Any:
    """``sweeps.submit`` and friends: imported on first use (those modules import this one)."""
    if name in _HOME:
        return getattr(importlib.import_module(f".{_HOME[name]}", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
