"""Commands on many runs: sweep (grid or budgeted search), study, and following a sweep."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from ..config import RunConfig
from .common import config_from_args, ctrl_c_stops


def cmd_sweep(args: argparse.Namespace) -> int:
    from .. import sweeps

    if args.list:
        return _list_sweeps(args)
    if args.resume:
        sweep = sweeps.load(args.resume, args.runs_dir)
    else:
        spec = sweeps.GridSpec(
            depth=tuple(args.depths), width=tuple(args.widths), batch_size=tuple(args.batch_sizes),
            lr=tuple(args.lrs), model=tuple(args.models), dataset=tuple(args.datasets), repeats=args.repeats,
        )
        base = config_from_args(args)
        if args.search:
            return _run_search(sweeps.grid_configs(base, spec), args)
        sweep = sweeps.create(sweeps.grid_configs(base, spec), args.name, args.runs_dir)
    return _run_sweep(sweep, args)


def _run_search(configs: Sequence[RunConfig], args: argparse.Namespace) -> int:
    """``sweep --search asha``: the configurations under the budget, trained on Ray Tune with ASHA."""
    from .. import raytrials, search

    found, over = search.plan(configs, args.name, args.budget, args.runs_dir, args.data_dir)
    sys.stderr.write(f"search {found.id}: {len(found.configs)} configurations, {len(over)} over the budget\n")
    result = search.run_search(found, address=raytrials.ray_address(args.ray_address), runs_dir=args.runs_dir,
                               data_root=args.data_dir)
    for trial in result.trials:
        acc = "-" if trial.val_accuracy is None else f"{trial.val_accuracy:.2%}"
        state = trial.error or ("stopped early" if trial.early else "completed")
        print(f"{trial.name:<60} {trial.samples:>10,} images  {acc:>7}  {state}  {trial.run_id or ''}")
    print(result.summary())
    return 0 if result.best is not None else 1


def cmd_study(args: argparse.Namespace) -> int:
    from .. import study, sweeps
    from ..runs import list_runs

    if args.list:
        return _list_sweeps(args)
    if not args.table_only:
        if args.resume:
            sweep = sweeps.load(args.resume, args.runs_dir)
        else:
            if args.missing:
                _say_stopped_study(args)
            sweep = study.create_sweep(args.experiments, batch_one=not args.no_batch_one,
                                       repeats=args.repeats, runs_dir=args.runs_dir,
                                       missing_only=args.missing)
        code = _run_sweep(sweep, args)
        if code:
            return code
    studies = sweeps.list_sweeps(args.runs_dir)  # ours come from the study's own runs only
    saved = list_runs(args.runs_dir)
    rows = study.table(saved, args.experiments, studies=studies)
    print(format_study(rows))
    print(format_steps(study.steps(rows, saved, studies=studies)))
    return 0


def _say_stopped_study(args: argparse.Namespace) -> None:
    """Before --missing trains runs afresh: a stopped study would continue them from their checkpoints."""
    from .. import study, sweeps
    from ..runs import list_runs

    todo = study.plan(args.experiments, batch_one=not args.no_batch_one, repeats=args.repeats,
                      runs=list_runs(args.runs_dir), studies=sweeps.list_sweeps(args.runs_dir))
    if todo.stopped is not None:
        sweep_id, left = todo.stopped.id, len(todo.left)
        sys.stderr.write(f"note: study {sweep_id} was stopped (or never started) with {left} runs left; "
                         f"`study --resume {sweep_id}` continues them (finished runs kept), "
                         "--missing trains the missing runs in a new sweep\n")


def format_steps(steps: Sequence[Any]) -> str:
    """The blog's findings (one row to the next) against ours, beyond seed noise or not."""
    def f(value: Any, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    lines = ["", "Findings: one row to the next, the published difference and ours (points, mean of seeds)"]
    for s in steps:
        verdict = {True: "real", False: "within seed noise", None: "needs 2+ seeds a row"}[s.real]
        verdict = "not trained" if s.ours_diff is None else verdict
        lines.append(f"  {s.before:<30} -> {s.after:<30} published {s.published_diff:+.1f}  "
                     f"ours {f(s.ours_diff, '+.2f'):>6}  p {f(s.p_value, '.2g'):>7}  {verdict}")
    return "\n".join(lines)


def format_study(rows: Sequence[dict[str, Any]]) -> str:
    """The study table as fixed-width text: published, ours, ratio for each measure."""
    def f(value: Any, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    head = (f"{'model':<34} {'acc% pub':>8} {'ours':>6} {'seeds':>5} {'± sd':>5}  {'ours - published':<36} "
            f"{'time pub':>9} {'ours':>7} {'speedup':>7} "
            f"{'params pub':>10} {'ours':>9} {'FLOPs pub':>10} {'2xMACs':>10}  {'time is':<21}  "
            "ours from run")
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['model']:<34} {f(r['published_accuracy_pct'], '.1f'):>8} "
            f"{f(r['ours_accuracy_pct'], '.2f'):>6} {r.get('ours_seeds', 0):>5} "
            f"{f(r.get('ours_accuracy_std_pct'), '.2f'):>5}  {r.get('noise_verdict', ''):<36} "
            f"{f(r['published_time_s'], '.2f'):>9} {f(r['ours_time_s'], '.2f'):>7} "
            f"{f(r['speedup'], '.1f'):>6}x {r['published_parameters']:>10,} "
            f"{f(r['ours_parameters'], ',.0f'):>9} "
            f"{r['published_flops']:>10,} {f(r['ours_flops_2x_macs'], ',.0f'):>10}  {r['time_kind']:<21}"
            f"  {r.get('run_id') or '-'}"
        )
    lines.append("FLOPs: published MLP figures count 2 per multiply-add (= 2 x fvcore MACs, ours); "
                 "the published LeNet-5 figure is a hand formula that also counts pooling.")
    lines.append("Accuracy: ours is the mean over its seeds; seed noise is the standard deviation across "
                 "seeds pooled over an experiment's rows. 'Beyond noise': the published figure (one run, "
                 "rounded to 0.1) lies outside the 95% prediction interval of our seeds.")
    return "\n".join(lines)


def _list_sweeps(args: argparse.Namespace) -> int:
    from .. import sweeps
    from ..runs import list_runs
    from ..sizing import split_sizes

    runs = list_runs(args.runs_dir)
    stopped = []
    for sweep in sweeps.list_sweeps(args.runs_dir):
        sizes = split_sizes(sweep.configs[0].dataset, sweep.configs[0].val_fraction, args.data_dir)
        p = sweeps.progress(sweep, runs, sizes)  # the status word is the page's (sweeps.status)
        print(f"{sweep.id:<48} {f'{p.done}/{p.total}':>7} runs done  {p.status:<11}  {sweep.name}")
        if p.status in ("stopped", "not started"):
            stopped.append(sweep)
    for sweep in stopped[:1]:
        command = "study" if sweep.kind == "study" else "sweep"
        print(f"a stopped sweep continues with: python -m mnist_core {command} --resume {sweep.id}")
    return 0


def _run_sweep(sweep: Any, args: argparse.Namespace) -> int:
    """Train the sweep's unfinished points (locally or on Ray), printing one line per change."""
    from .. import sweeps
    from ..jobs import JobRegistry
    from ..runs import list_runs

    sys.stderr.write(f"sweep {sweep.id}: {len(sweep.configs)} runs\n")
    with ctrl_c_stops("stopping the sweep after this step") as stop:
        registry = JobRegistry()
        registry.set_max_concurrent(args.at_once)  # ConfigError (exit 2 with its message) out of 1-8
        if args.ray:
            try:
                _run_on_ray(sweep, registry, args, lambda: stop["requested"])
            except BaseException:  # no Ray cluster: the runs resuming here stop too, before the error shows
                sweeps.stop(sweep, registry)
                raise
        elif not stop["requested"]:
            sweeps.start(sweep, registry, runs_dir=args.runs_dir, data_root=args.data_dir)
        _follow(sweep, registry, args, stop)
    points = sweeps.points(sweep, list_runs(args.runs_dir))
    done = sum(p.state == "done" for p in points)
    for p in points:
        acc = p.run.test_accuracy if p.run else None
        print(f"{p.config.label():<40} seed {p.config.seed:<3} {p.state:<10} "
              f"{'-' if acc is None else f'{acc:.2%}':>7}  {p.run.id if p.run else ''}")
    print(f"sweep {sweep.id}: {done}/{len(points)} runs done, {sweeps.status(points)}")
    if done < len(points):
        print(f"resume with: python -m mnist_core {'study' if sweep.kind == 'study' else 'sweep'} "
              f"--resume {sweep.id}")
        return 1
    return 0


def progress_line(done: int, total: int, snap: Any) -> str:
    """"3/13 of this session | <the running job's name>: epoch 1/2"; a sweep's job names say the seed."""
    line = f"{done}/{total} of this session"
    return line if snap is None else f"{line} | {snap.label}: epoch {snap.epoch}/{snap.epochs}"


def _follow(sweep: Any, registry: Any, args: argparse.Namespace, stop: dict[str, bool]) -> None:
    from .. import sweeps

    last = ""
    while registry.active():
        if stop["requested"]:
            sweeps.stop(sweep, registry)
        running = registry.running()
        jobs = registry.jobs()
        line = progress_line(
            sum(j.state == "completed" for j in jobs), len(jobs), running[0].snapshot() if running else None
        )
        if line != last:
            sys.stderr.write(line + "\n")
            last = line
        time.sleep(0.5)
    for job in registry.jobs():
        snap = job.snapshot()
        if snap.error:
            sys.stderr.write(f"{snap.label}: failed: {snap.error}\n")


def _run_on_ray(sweep: Any, registry: Any, args: argparse.Namespace, should_stop: Any) -> None:
    """Send the points never run (or failed) to Ray; stopped ones resume in ``registry``, here."""
    from .. import raytrials, sweeps

    outcome = sweeps.run_on_ray(
        sweep, registry, address=raytrials.ray_address(args.ray_address), runs_dir=args.runs_dir,
        data_root=args.data_dir, should_stop=should_stop,
        on_done=lambda name, run_id: sys.stderr.write(f"{name}: done ({run_id})\n"),
        on_error=lambda name, msg: sys.stderr.write(f"{name}: failed: {msg}\n"),
    )
    if outcome.resumed_here:
        sys.stderr.write(f"{len(outcome.resumed_here)} stopped runs of the sweep resume here, "
                         "from their checkpoints\n")
