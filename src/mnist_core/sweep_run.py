"""Training a sweep's points: in the local job queue, or as trials on a Ray cluster.

Which points are done is read from the runs (:func:`mnist_core.sweeps.points`),
so starting again never redoes a finished run: completed points are skipped,
stopped or interrupted ones resume from their checkpoint, the rest start.
Locally each point is a training job of the :class:`~mnist_core.jobs.JobRegistry`;
on Ray the sweep's driver is one job of the same registry (kind
:data:`RAY_KIND`), which hands the points to :mod:`mnist_core.raytrials`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .config import RunConfig
from .errors import MnistLabError
from .estimate import ProbeFn, probe_config, run_seconds
from .jobs import Job, JobRegistry
from .runs import RunInfo, list_runs
from .sizing import split_sizes
from .sweeps import PathOrNone, Point, Progress, Sweep, _key, create, point_eta_s, points, progress, states
from .tasks import Task

RAY_KIND = "ray-sweep"  # the registry's kind of job that drives a sweep's trials on Ray
MAX_MEASURED = 24  # distinct models a sweep's time left may measure (the study has 15)


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
    no two points of a sweep share a name. The sweep's name comes last: first, it was all that
    a chart's cut-short label or a narrow column showed ("Reproduce the study: MLP 78...").
    """
    extra = "".join(f" {axis} {getattr(cfg, axis):g}" if axis == "lr" else f" {getattr(cfg, axis)}"
                    for axis in ("dataset", "lr") if axis in sweep.axes)
    return f"{cfg.label()}{extra} seed {cfg.seed} ({sweep.name})"


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
    sweep: Sweep, registry: JobRegistry, *, address: str | None, runs_dir: PathOrNone = None,
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


def any_active(saved: Iterable[Sweep], registry: JobRegistry, runs: Iterable[RunInfo] = ()) -> bool:
    """One of ``saved`` has queued or running jobs in ``registry``, a driver on Ray runs, or one of
    its runs in ``runs`` reads "running".

    A page that stops polling when this turns False must pass the runs it draws: a run listed
    "running" just before its job ended here (a Stop, the sweep's last run) would otherwise stay
    "running" on the page with nothing left to redraw it, as would a run that another process trains.
    """
    saved = list(saved)
    if any(sweep_jobs(s, registry) for s in saved) or any(t.running for t in registry.tasks(RAY_KIND)):
        return True
    return "running" in states(saved, runs)


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


# -- one call per user action: start, resume, how long, how far -------------------------------


@dataclass(frozen=True)
class Started:
    """What :func:`start` did: runs queued in the registry, or the points handed to a driver on Ray."""

    sweep: Sweep
    queued: int  # runs queued here (0 on Ray)
    on_ray: bool  # a driver of the registry (:func:`ray_task`) sends the points to Ray


def start(
    sweep: Sweep, registry: JobRegistry, *, runs_dir: PathOrNone = None, data_root: PathOrNone = None,
    on_ray: bool = False, address: str | None = None,
) -> Started:
    """Train the sweep's unfinished points in the background: Start, Resume, and the CLI's local sweep.

    Locally every point not done and not queued is queued (:func:`submit`;
    finished runs are kept, stopped ones resume from their checkpoint). With
    ``on_ray`` a driver of ``registry`` sends them to the cluster at
    ``address`` (None: ``$RAY_ADDRESS``, else a local Ray; see
    :func:`start_on_ray`).
    """
    if on_ray:
        from .raytrials import ray_address

        start_on_ray(sweep, registry, address=ray_address(address), runs_dir=runs_dir, data_root=data_root)
        return Started(sweep, 0, True)
    jobs = submit(sweep, registry, list_runs(runs_dir), runs_dir=runs_dir, data_root=data_root)
    return Started(sweep, len(jobs), False)


def launch(
    configs: Sequence[RunConfig],
    name: str,
    registry: JobRegistry,
    *,
    runs_dir: PathOrNone = None,
    data_root: PathOrNone = None,
    on_ray: bool = False,
    address: str | None = None,
    kind: str = "grid",
    axes: Mapping[str, Sequence[Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Started:
    """Save a new sweep of ``configs`` (:func:`mnist_core.sweeps.create`) and :func:`start` it."""
    sweep = create(configs, name, runs_dir, axes=axes, kind=kind, extra=extra)
    return start(sweep, registry, runs_dir=runs_dir, data_root=data_root, on_ray=on_ray, address=address)


def launch_study(
    experiments: Sequence[str],
    registry: JobRegistry,
    *,
    batch_one: bool = True,
    repeats: int = 1,
    missing_only: bool = False,
    runs_dir: PathOrNone = None,
    data_root: PathOrNone = None,
) -> Started:
    """The Sweeps page's "Reproduce the study": the study's sweep (as the CLI saves it), queued here.

    ``missing_only``: only the runs its table lacks (:func:`mnist_core.study.create_sweep`).
    """
    from .study import create_sweep  # the study imports this package's sweeps module

    sweep = create_sweep(experiments, batch_one=batch_one, repeats=repeats, runs_dir=runs_dir,
                         missing_only=missing_only)
    return start(sweep, registry, runs_dir=runs_dir, data_root=data_root)


@dataclass(frozen=True)
class TimeEstimate:
    """Seconds to train some configurations one after another, and how many could not be estimated."""

    seconds: float  # the sum over the estimated ones
    unknown: int
    first_error: str | None = None  # why the first one that could not be measured failed


def time_estimate(
    configs: Sequence[RunConfig],
    runs: Sequence[RunInfo],
    data_root: PathOrNone = None,
    probe_fn: ProbeFn | None = None,
) -> TimeEstimate:
    """Whole runs of ``configs``: past runs of the same speed, else (with ``probe_fn``) a measurement.

    Without ``probe_fn`` only past runs count (a large grid, estimated on
    every rerun); with it each configuration gets the Train page's estimate
    (:func:`mnist_core.estimate.run_seconds`), and one that cannot be built or
    measured counts as unknown.
    """
    seconds, unknown, first_error = 0.0, 0, None
    for cfg in configs:
        try:
            sizes = split_sizes(cfg.dataset, cfg.val_fraction, data_root)
            if probe_fn is None:
                one = point_eta_s(cfg, runs, sizes)
            else:
                one = run_seconds(cfg, runs, sizes, probe_fn)
        except MnistLabError as exc:
            one, first_error = None, first_error or str(exc)
        if one is None:
            unknown += 1
        else:
            seconds += one
    return TimeEstimate(seconds, unknown, first_error)


@dataclass(frozen=True)
class Live:
    """A sweep as the Sweeps page shows it each second: how far it is, and what trains it here."""

    progress: Progress
    jobs: list[Job]  # its queued and running jobs in this process
    running: list[Job]
    on_ray: bool  # its driver on Ray is running
    ray_error: str | None  # what its latest driver on Ray said went wrong

    @property
    def queued(self) -> int:
        return sum(j.state == "queued" for j in self.jobs)


def live(
    sweep: Sweep, registry: JobRegistry, runs: Sequence[RunInfo], *, data_root: PathOrNone = None,
    probe_fn: ProbeFn | None = None,
) -> Live:
    """Progress, time left and the jobs of ``sweep``: its row on the Sweeps page.

    The time left is what the running jobs say plus, for each point still to
    run, :func:`time_estimate`'s figure. Measuring a configuration takes ~0.4 s
    (then ``probe_fn`` caches it), so it is done for a study or a small grid
    (at most :data:`MAX_MEASURED` distinct models), while a large grid relies
    on past runs and says how many points it cannot estimate.
    """
    jobs = sweep_jobs(sweep, registry)
    running = [j for j in jobs if j.state == "running"]
    driver = ray_task(sweep, registry)
    on_ray = driver is not None and driver.running
    measure = probe_fn is not None and len({probe_config(c) for c in sweep.configs}) <= MAX_MEASURED

    def one(cfg: RunConfig) -> float | None:
        found = time_estimate([cfg], runs, data_root, probe_fn)
        return None if found.unknown else found.seconds

    sizes = split_sizes(sweep.configs[0].dataset, sweep.configs[0].val_fraction, data_root)
    p = progress(sweep, runs, sizes, running_eta=sum((j.snapshot().eta_s or 0.0) for j in running),
                 active=bool(jobs) or on_ray, estimate=one if measure else None)
    return Live(p, jobs, running, on_ray, driver.error if driver is not None else None)
