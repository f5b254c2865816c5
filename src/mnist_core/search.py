"""Budgeted search: the most accurate model that trains under a time budget, found with ASHA.

"Find the most accurate model that trains in under N seconds per epoch": the
candidates are a grid over depth, width, batch size and learning rate
(:func:`mnist_core.sweeps.grid_configs`), less those whose estimated time per
epoch is over the budget (:func:`within_budget`, the Train page's estimate).
Ray Tune then trains them with the ASHA scheduler, which stops the trials
that trail the others at each rung and lets the best go on. Its time axis is
**training images seen** (``samples``), not steps or epochs of steps, so a
batch size of 32 and one of 512 are compared after the same amount of data.

Each trial is a normal run, tagged with the search's sweep tag (the search
is saved as a sweep of kind ``"search"``, so the Runs and Sweeps pages list
it); a trial ASHA stopped early is closed as a "stopped" run with its test
figures and tagged :data:`EARLY_TAG`. The grid mode stays for reproducing a
study: early stopping would bias its tables.

Trials write their runs straight into ``runs_dir`` (and Tune its files into a
hidden folder there), so on a cluster that folder must be the same on every
node (a shared folder); on one machine it is. Ray (with Tune) is optional: imported only when a search runs.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import sweeps
from .config import RunConfig
from .errors import ConfigError, MnistLabError
from .estimate import ProbeFn
from .jobs import PathLike
from .runs import RESUMABLE, RunInfo, default_runs_dir, list_runs, load_run, update_meta
from .sweeps import EARLY_TAG

KIND = "search"
REDUCTION_FACTOR = 3  # ASHA keeps the best third at each rung
GRACE_EPOCHS = 1  # no trial is stopped before it has seen this many epochs of images
CLOSE_WAIT_S = 60  # how long a stopped trial's run may still read "running" (its process ending)

EpochSeconds = Callable[[RunConfig], float]  # estimated seconds per epoch of a configuration


def within_budget(
    configs: Sequence[RunConfig], budget_s: float, seconds_per_epoch: EpochSeconds
) -> tuple[list[RunConfig], list[tuple[RunConfig, float]]]:
    """The configurations estimated to train an epoch in at most ``budget_s``, and the others with
    their estimate. Raises :class:`ConfigError` when the budget is not a positive number."""
    if not isinstance(budget_s, (int, float)) or isinstance(budget_s, bool) or not budget_s > 0:
        raise ConfigError("budget", f"{budget_s!r} is not a positive number of seconds per epoch")
    kept, over = [], []
    for cfg in configs:
        seconds = seconds_per_epoch(cfg)
        if seconds <= budget_s:
            kept.append(cfg)
        else:
            over.append((cfg, seconds))
    return kept, over


def create(configs: Sequence[RunConfig], name: str, budget_s: float | None, runs_dir: PathLike | None = None,
           *, over_budget: int = 0) -> sweeps.Sweep:
    """Save a search (a sweep of kind "search"); its trials start with :func:`run_search`."""
    if not configs:
        raise ConfigError("budget", "no configuration fits the budget: raise it, or choose smaller models")
    return sweeps.create(configs, name, runs_dir, kind=KIND,
                         extra={"budget_s_per_epoch": budget_s, "over_budget": over_budget,
                                "scheduler": "asha", "reduction_factor": REDUCTION_FACTOR})


@dataclass(frozen=True)
class Trial:
    """One configuration of a search and what became of it."""

    name: str
    run_id: str | None
    samples: int  # training images it was trained on (its compute, on the search's time axis)
    val_accuracy: float | None
    early: bool  # stopped by ASHA before its last epoch
    error: str | None = None


@dataclass(frozen=True)
class SearchResult:
    sweep: sweeps.Sweep
    trials: list[Trial]
    train_size: int  # images per epoch

    @property
    def samples(self) -> int:
        """Images trained on by all the search's trials together."""
        return sum(t.samples for t in self.trials)

    @property
    def grid_samples(self) -> int:
        """Images the full grid would train on: every candidate to its last epoch."""
        return sum(c.epochs for c in self.sweep.configs) * self.train_size

    @property
    def best(self) -> Trial | None:
        """The trial that went the whole way with the best validation accuracy."""
        full = [t for t in self.trials if not t.early and t.run_id and t.val_accuracy is not None]
        return max(full, key=lambda t: t.val_accuracy or 0.0, default=None)

    def summary(self) -> str:
        best = self.best
        early = sum(t.early for t in self.trials)
        share = self.samples / self.grid_samples if self.grid_samples else 0.0
        head = (f"{len(self.trials)} configurations, {early} stopped early; {self.samples:,} images trained, "
                f"{share:.0%} of the full grid's {self.grid_samples:,}")
        if best is None:
            return head + "; no trial finished"
        return head + f"; best: {best.name} ({best.val_accuracy:.2%} validation accuracy, run {best.run_id})"


def run_search(
    sweep: sweeps.Sweep,
    *,
    address: str | None = None,
    runs_dir: PathLike | None = None,
    data_root: PathLike | None = None,
    max_concurrent: int | None = None,
    grace_epochs: int = GRACE_EPOCHS,
    should_stop: Callable[[], bool] | None = None,
) -> SearchResult:
    """Train the search's configurations with Ray Tune and ASHA; returns every trial's outcome.

    ``address`` None starts a local Ray (see :func:`mnist_core.raytrials.connect`).
    Once ``should_stop()`` is True the search ends: trials not started stay
    to do, those cut short stay resumable (neither is marked stopped early).
    Raises :class:`~mnist_core.raytrials.RayUnavailable` without Ray and Tune,
    :class:`~mnist_core.raytrials.RayConnectError` when no cluster is reached.
    """
    from . import raytrials
    from .sizing import split_sizes

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # no experiment tables on the CLI's output
    tune = _import_tune()
    root = os.path.abspath(runs_dir if runs_dir is not None else default_runs_dir())
    data = os.path.abspath(data_root) if data_root is not None else None
    first = sweep.configs[0]
    train_size = split_sizes(first.dataset, first.val_fraction, data).n_train
    epochs = max(c.epochs for c in sweep.configs)
    names = [sweeps.point_name(sweep, c) for c in sweep.configs]
    # Tune's own files go beside the runs (a hidden folder, removed after): where the runs go, every
    # node can write, so a cluster needs one shared folder, not two.
    os.makedirs(root, exist_ok=True)
    with raytrials.connect(address), tempfile.TemporaryDirectory(prefix=".tune-", dir=root) as storage:
        from ray.tune.schedulers import ASHAScheduler

        trainable = tune.with_resources(
            tune.with_parameters(_trial, configs=[c.to_dict() for c in sweep.configs], names=names,
                                 tag=sweep.tag, runs_dir=root, data_root=data), {"cpu": 1})
        scheduler = ASHAScheduler(
            time_attr="samples", metric="val_acc", mode="max", max_t=epochs * train_size,
            grace_period=grace_epochs * train_size, reduction_factor=REDUCTION_FACTOR)
        tuner = tune.Tuner(
            trainable, param_space={"point": tune.grid_search(list(range(len(sweep.configs))))},
            tune_config=tune.TuneConfig(scheduler=scheduler, max_concurrent_trials=max_concurrent),
            run_config=tune.RunConfig(name=sweep.id, storage_path=storage, verbose=0,
                                      stop=_Stopper(should_stop) if should_stop is not None else None),
        )
        grid = tuner.fit()
        results = [grid[i] for i in range(len(grid))]
    asked = should_stop is not None and should_stop()
    trials = [_outcome(r, sweep, names, root, asked) for r in results]
    return SearchResult(sweep, sorted(trials, key=lambda t: names.index(t.name)), train_size)


def _import_tune() -> Any:
    from . import raytrials

    raytrials._import_ray()  # the install hint when Ray itself is missing
    try:
        from ray import tune
    except Exception as exc:
        raise raytrials.RayUnavailable(
            f"A budgeted search needs Ray Tune, which does not import here ({exc}). "
            f"Install it with: {raytrials.INSTALL_HINT}."
        ) from exc
    return tune


def _trial(params: dict[str, Any], *, configs: list[dict[str, Any]], names: list[str], tag: str,
           runs_dir: str, data_root: str | None) -> None:
    """One configuration on a Tune worker: a normal run that reports each finished epoch to ASHA.

    ``samples`` (images seen) is ASHA's time axis. An epoch is reported once
    its checkpoint is saved, before the next step (from ``should_stop``); when
    ASHA stops the trial, ``tune.report`` does not return, so the run holds
    exactly the epochs it was judged on, and :func:`_close_early` finishes it
    on the driver.
    """
    os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
    from ray import tune

    from .pipeline import run_training

    i = int(params["point"])
    started: list[str] = []
    pending: list[dict[str, Any]] = []

    def on_progress(event: Any) -> None:
        if event.kind == "epoch":  # its checkpoint is written right after this event
            pending.append({"samples": event.samples, "val_acc": event.val_acc or 0.0, "run_id": started[0],
                            "epoch": event.epoch})

    def report() -> bool:
        while pending:
            tune.report(pending.pop(0))
        return False

    run_training(RunConfig.from_dict(configs[i]), runs_dir=runs_dir, data_root=data_root, name=names[i],
                 tags=(tag,), on_start=started.append, on_progress=on_progress, should_stop=report)
    report()  # the last epoch


class _Stopper:
    """Tune's stop criterion from a ``should_stop`` flag: every trial, and the experiment, end."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self.should_stop = should_stop

    def __call__(self, _trial_id: str, _result: dict[str, Any]) -> bool:
        return bool(self.should_stop())

    def stop_all(self) -> bool:
        return bool(self.should_stop())


def _outcome(result: Any, sweep: sweeps.Sweep, names: list[str], runs_dir: str, asked: bool) -> Trial:
    i = int(result.config["point"])
    metrics = dict(result.metrics or {})
    run_id = metrics.get("run_id")
    samples = int(metrics.get("samples") or 0)
    error = None if result.error is None else f"{type(result.error).__name__}: {result.error}"
    # Cut short by the user's stop, a trial is not "stopped early": it resumes like any stopped run.
    early = bool(run_id) and int(metrics.get("epoch") or 0) < sweep.configs[i].epochs and not asked
    if early and run_id:
        try:
            _close_early(run_id, runs_dir)
        except MnistLabError as exc:
            error = str(exc)
    val = metrics.get("val_acc")
    return Trial(names[i], run_id, samples, float(val) if val is not None else None, early, error)


def _close_early(run_id: str, runs_dir: str) -> RunInfo:
    """Finish a trial ASHA stopped: test it from its last checkpoint, mark it "stopped", tag it."""
    from .pipeline import run_training

    deadline = time.monotonic() + CLOSE_WAIT_S
    while (info := load_run(run_id, runs_dir)).status not in (*RESUMABLE, "completed"):
        if time.monotonic() > deadline:  # its worker still holds the run
            raise MnistLabError(f"Run {run_id}, stopped early by the search, is still held by its worker.")
        time.sleep(0.2)
    if info.status != "stopped":
        info = run_training(runs_dir=runs_dir, resume_id=run_id, should_stop=lambda: True)
    return update_meta(run_id, runs_dir, tags=[*info.meta.get("tags", []), EARLY_TAG])


def plan(
    configs: Sequence[RunConfig],
    name: str,
    budget_s: float | None,
    runs_dir: PathLike | None = None,
    data_root: PathLike | None = None,
    seconds_per_epoch: EpochSeconds | None = None,
    probe_fn: ProbeFn | None = None,
) -> tuple[sweeps.Sweep, list[tuple[RunConfig, float]]]:
    """Save a search of the ``configs`` that fit ``budget_s`` seconds per epoch (None: all of them).

    Each configuration's time per epoch is the Train page's estimate (past
    runs of the same speed, else a short measurement here) unless
    ``seconds_per_epoch`` is given; ``probe_fn`` times a configuration (the
    app's probes, taken once per server; by default a fresh
    :class:`~mnist_core.estimate.ProbeCache`). Returns the search and the
    configurations left out, with their estimate.
    """
    over: list[tuple[RunConfig, float]] = []
    if budget_s is not None:
        if seconds_per_epoch is None:
            seconds_per_epoch = _estimator(runs_dir, data_root, probe_fn)
        configs, over = within_budget(configs, budget_s, seconds_per_epoch)
    return create(configs, name, budget_s, runs_dir, over_budget=len(over)), over


def _estimator(
    runs_dir: PathLike | None, data_root: PathLike | None, probe_fn: ProbeFn | None
) -> EpochSeconds:
    from .estimate import ProbeCache, epoch_estimate
    from .sizing import split_sizes

    runs, probe = list_runs(runs_dir), probe_fn or ProbeCache().get

    def seconds(cfg: RunConfig) -> float:
        sizes = split_sizes(cfg.dataset, cfg.val_fraction, data_root)
        return epoch_estimate(cfg, runs, sizes, probe).seconds

    return seconds


def start_search(
    sweep: sweeps.Sweep,
    registry: Any,
    *,
    address: str | None,
    runs_dir: PathLike | None = None,
    data_root: PathLike | None = None,
) -> Any:
    """:func:`run_search` in the background, as the sweep's Ray driver in ``registry`` (a
    :class:`~mnist_core.tasks.Task`; ``sweeps.stop`` stops it). Its ``error`` names failed trials."""
    from .sweep_run import RAY_KIND

    def work(stop_flag: Any) -> str | None:
        result = run_search(sweep, address=address, runs_dir=runs_dir, data_root=data_root,
                            should_stop=stop_flag.is_set)
        failed = [t for t in result.trials if t.error]
        return f"{len(failed)} trials failed; first: {failed[0].error}" if failed else None

    return registry.start_task(RAY_KIND, sweep.id, work)


def launch(
    configs: Sequence[RunConfig],
    name: str,
    budget_s: float | None,
    registry: Any,
    *,
    address: str | None = None,
    runs_dir: PathLike | None = None,
    data_root: PathLike | None = None,
    probe_fn: ProbeFn | None = None,
) -> tuple[sweeps.Sweep, list[tuple[RunConfig, float]]]:
    """The Sweeps page's "Start the search": :func:`plan` (0 or None: no budget), then :func:`start_search`.

    ``address`` None: ``$RAY_ADDRESS``, else a local Ray. Returns the search
    and the configurations left out over the budget.
    """
    from .raytrials import ray_address

    found, over = plan(configs, name or "search", budget_s or None, runs_dir, data_root, probe_fn=probe_fn)
    start_search(found, registry, address=ray_address(address), runs_dir=runs_dir, data_root=data_root)
    return found, over


def search_runs(sweep: sweeps.Sweep, runs: Sequence[RunInfo] | None = None,
                runs_dir: PathLike | None = None) -> list[RunInfo]:
    """The search's runs, from the folder (or ``runs``)."""
    pool = list(runs) if runs is not None else list_runs(runs_dir)
    return [r for r in pool if sweep.tag in (r.meta.get("tags") or [])]
