"""Sweeps: a list of configurations run as one unit, tagged, resumable.

A :class:`Sweep` is built from a grid (:func:`grid_configs`: every combination
of the values chosen for depth, width, batch size, learning rate, model and
dataset, times seed repeats) or from any list of configurations (the study
reproduction in :mod:`mnist_core.study`). It is saved beside the runs, and
each of its runs is a normal run tagged ``sweep:<id>``. Which points are done
is read from the runs themselves, so stopping and resuming never redoes a
finished run: completed points are skipped, stopped or interrupted ones are
resumed from their checkpoint, the rest start.

Analysis (:func:`effects`) groups the runs by one swept value, averages over
seed repeats and says whether the step from one value to the next is larger
than the seed-to-seed noise.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import re
import secrets
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .compare import number
from .config import RunConfig
from .errors import ConfigError, CorruptRun
from .estimate import SplitSizes, from_past_runs
from .jobs import Job, JobRegistry, PathLike
from .runs import RunInfo, list_runs, list_sweep_data, load_sweep_data, save_sweep_data

TAG_PREFIX = "sweep:"
AXES = ("model", "dataset", "depth", "width", "batch_size", "lr")
AXIS_LABELS = {
    "model": "Model", "dataset": "Dataset", "depth": "Depth (hidden layers)", "width": "Width (units)",
    "batch_size": "Batch size", "lr": "Learning rate", "seed": "Seed",
}
MAX_POINTS = 500  # a grid larger than this is almost certainly a mistake
MAX_REPEATS = 20
# Two means differ by more than the noise when the gap exceeds this many standard
# errors of the difference (about a 95% two-sided test for normal noise).
NOISE_Z = 2.0
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


def _state(run: RunInfo | None) -> str:
    if run is None:
        return "todo"
    if run.status == "completed":
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


# -- running ------------------------------------------------------------------------


def sweep_jobs(sweep: Sweep, registry: JobRegistry) -> list[Job]:
    """The registry's queued and running jobs that belong to ``sweep``."""
    return [j for j in registry.active() if sweep.tag in j.tags]


def submit(
    sweep: Sweep,
    registry: JobRegistry,
    runs: Sequence[RunInfo],
    *,
    runs_dir: PathOrNone = None,
    data_root: PathOrNone = None,
    only: Iterable[int] | None = None,
) -> list[Job]:
    """Queue every point that is not done and not already queued; returns the new jobs.

    Completed points are skipped; stopped, interrupted or failed runs of the
    sweep are resumed from their last checkpoint. ``only`` limits it to some
    point indexes (the study's "without batch size 1").
    """
    keep = set(only) if only is not None else None
    active = {_key(j.config) for j in sweep_jobs(sweep, registry)}
    jobs = []
    for p in points(sweep, runs):
        if p.state in ("done", "running") or (keep is not None and p.index not in keep):
            continue
        if _key(p.config) in active:
            continue
        resume = p.run.id if p.state == "resumable" and p.run else None
        jobs.append(registry.submit(
            p.config, runs_dir=runs_dir, data_root=data_root, name=point_name(sweep, p.config),
            resume_id=resume, tags=(sweep.tag,),
        ))
    return jobs


def point_name(sweep: Sweep, cfg: RunConfig) -> str:
    """The name a sweep's run gets, in the local queue or on Ray: repeats differ by their seed."""
    return f"{sweep.name}: {cfg.label()} seed {cfg.seed}"


@dataclass(frozen=True)
class RayOutcome:
    """What :func:`run_on_ray` did: points resumed in the local queue, messages of failed trials."""

    resumed_here: list[int]
    errors: list[str]

    def summary(self) -> str | None:
        """One line for a page when trials failed, else None."""
        return f"{len(self.errors)} trials failed on Ray; first: {self.errors[0]}" if self.errors else None


def run_on_ray(
    sweep: Sweep,
    registry: JobRegistry,
    *,
    address: str | None,
    runs_dir: PathOrNone = None,
    data_root: PathOrNone = None,
    should_stop: Callable[[], bool] | None = None,
    on_done: Callable[[str, str], None] | None = None,
    on_error: Callable[[str, str], None] | None = None,
) -> RayOutcome:
    """Train the sweep's unfinished points: those never run on Ray, the stopped ones here.

    Stopped, interrupted or failed runs resume from their checkpoints in
    ``registry`` (queued before the Ray trials start, so they train meanwhile;
    a Ray trial always starts from step 0, see :func:`split_for_ray`); the
    others are sent to the Ray cluster at ``address`` (None: a local Ray) and
    this call returns once they have landed or ``should_stop()`` cancelled
    them. ``on_done(name, run_id)`` and ``on_error(name, message)`` report each
    trial. Raises what :func:`mnist_core.raytrials.run_trials` raises.
    """
    from . import raytrials  # Ray itself is imported only when trials run

    runs = list_runs(runs_dir)
    fresh, local = split_for_ray(sweep, runs)
    if local:
        submit(sweep, registry, runs, runs_dir=runs_dir, data_root=data_root, only=local)
    names = [point_name(sweep, p.config) for p in fresh]
    errors: list[str] = []

    def failed(i: int, message: str) -> None:
        errors.append(message)
        if on_error is not None:
            on_error(names[i], message)

    raytrials.run_trials(
        [p.config for p in fresh], address=address, runs_dir=runs_dir, data_root=data_root, tags=(sweep.tag,),
        names=names, should_stop=should_stop, on_error=failed,
        on_done=(lambda i, run_id: on_done(names[i], run_id)) if on_done is not None else None,
    )
    return RayOutcome(resumed_here=local, errors=errors)


def split_for_ray(sweep: Sweep, runs: Iterable[RunInfo]) -> tuple[list[Point], list[int]]:
    """Points to send to Ray as fresh trials, and indexes of points to resume locally.

    A Ray trial always starts from step 0, so a stopped, interrupted or failed
    run of the sweep is resumed from its checkpoint in the local queue instead
    (no second run for the same point); points never started go to Ray.
    """
    pts = points(sweep, runs)
    fresh = [p for p in pts if p.state == "todo"]
    local = [p.index for p in pts if p.state == "resumable"]
    return fresh, local


def stop(sweep: Sweep, registry: JobRegistry) -> int:
    """Stop the sweep's running job and drop its queued ones; finished runs stay. Returns how many."""
    jobs = sweep_jobs(sweep, registry)
    for job in jobs:
        job.stop()
    return len(jobs)


# -- analysis ------------------------------------------------------------------------------


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
                "id": p.run.id if p.run else None}
        for metric in ("test_accuracy", "train_time_s", "time_per_epoch_s", "parameters", "macs",
                       "latency_p50_ms", "co2_kg"):
            row[metric] = metric_value(p.run, metric) if p.run else None
        out.append(row)
    return out

