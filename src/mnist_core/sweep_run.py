"""Training a sweep's points: in the local job queue, or as trials on a Ray cluster.

Which points are done is read from the runs (:func:`mnist_core.sweeps.points`),
so starting again never redoes a finished run: completed points are skipped,
stopped or interrupted ones resume from their checkpoint, the rest start.
Locally each point is a training job of the :class:`~mnist_core.jobs.JobRegistry`;
on Ray the sweep's driver is one job of the same registry (kind
:data:`RAY_KIND`), which hands the points to :mod:`mnist_core.raytrials`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .config import RunConfig
from .jobs import Job, JobRegistry, Task
from .runs import RunInfo, list_runs
from .sweeps import PathOrNone, Point, Sweep, _key, points

RAY_KIND = "ray-sweep"  # the registry's kind of job that drives a sweep's trials on Ray


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
    """The name a sweep's run gets, in the local queue or on Ray: repeats differ by their seed.

    The label names the model and batch size; a swept learning rate or dataset is added, so
    no two points of a sweep share a name.
    """
    extra = "".join(f" {axis} {getattr(cfg, axis):g}" if axis == "lr" else f" {getattr(cfg, axis)}"
                    for axis in ("dataset", "lr") if axis in sweep.axes)
    return f"{sweep.name}: {cfg.label()}{extra} seed {cfg.seed}"


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
    hook: Callable[[Any], None] | None = None,
) -> RayOutcome:
    """Train the sweep's unfinished points: those never run on Ray, the stopped ones here.

    Stopped, interrupted or failed runs resume from their checkpoints in
    ``registry`` (queued before the Ray trials start, so they train meanwhile;
    a Ray trial always starts from step 0, see :func:`split_for_ray`); the
    others are sent to the Ray cluster at ``address`` (None: a local Ray) and
    this call returns once they have landed or ``should_stop()`` cancelled
    them. ``on_done(name, run_id)`` and ``on_error(name, message)`` report each
    trial; ``hook`` runs on the workers (see :func:`mnist_core.raytrials.run_trials`).
    Raises what :func:`mnist_core.raytrials.run_trials` raises.
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
        names=names, should_stop=should_stop, on_error=failed, hook=hook,
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


def start_on_ray(
    sweep: Sweep,
    registry: JobRegistry,
    *,
    address: str | None,
    runs_dir: PathOrNone = None,
    data_root: PathOrNone = None,
) -> Task:
    """:func:`run_on_ray` in the background, as a job of ``registry`` (one per sweep).

    The task's ``error`` says what went wrong: no cluster, or which trials failed.
    :func:`stop` stops it (pending trials cancelled, running ones stop at their next step).
    """
    def work(stop_flag: Any) -> str | None:
        outcome = run_on_ray(sweep, registry, address=address, runs_dir=runs_dir, data_root=data_root,
                             should_stop=stop_flag.is_set)
        return outcome.summary()

    return registry.start_task(RAY_KIND, sweep.id, work)


def ray_task(sweep: Sweep, registry: JobRegistry) -> Task | None:
    """The sweep's latest driver on Ray started in this process (running or ended), if any."""
    return registry.task(RAY_KIND, sweep.id)


def stop(sweep: Sweep, registry: JobRegistry) -> int:
    """Stop the sweep's running job, drop its queued ones and stop its Ray driver; finished runs stay.

    Returns how many jobs it stopped (a driver on Ray counts one).
    """
    jobs = sweep_jobs(sweep, registry)
    for job in jobs:
        job.stop()
    driver = ray_task(sweep, registry)
    if driver is not None and driver.running:
        driver.stop()
        return len(jobs) + 1
    return len(jobs)
