"""The same jobs headless: ``python -m mnist_core train|evaluate|predict|runs|sweep|study``."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from . import cli_teach
from .config import RunConfig
from .errors import ConfigError, MnistLabError
from .study import EXPERIMENTS
from .train import ProgressEvent


def _config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per RunConfig field, typed and defaulted from the dataclass."""
    group = parser.add_argument_group("run configuration")
    for f in dataclasses.fields(RunConfig):
        flag = f"--{f.name.replace('_', '-')}"
        choices = RunConfig._choices.get(f.name)
        if isinstance(f.default, tuple):
            group.add_argument(flag, type=int, nargs="+", default=None, help=f"list of ints (default: "
                               f"{' '.join(map(str, f.default))})")
        elif isinstance(f.default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                               help=f"(default: {f.default})")
        else:
            group.add_argument(flag, type=type(f.default), choices=choices, default=None,
                               help=f"(default: {f.default})")


DESCRIPTION = "The app's jobs without a browser: train, evaluate, predict, list runs, sweeps, the study."


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mnist_core", description=DESCRIPTION)
    parser.add_argument("--runs-dir", type=Path, default=None,
                        help="checkpoints folder (default: $MNIST_LAB_CHECKPOINTS or ./checkpoints)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="dataset root (default: $MNIST_DATA_DIR or ./data)")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model and save it as a run")
    _config_flags(train)
    train.add_argument("--depth", type=int, help="hidden layers, all of --width (instead of --hidden)")
    train.add_argument("--width", type=int, help="units per hidden layer with --depth (default 512)")
    train.add_argument("--name", help="a name for the run (default: the architecture)")
    train.add_argument("--quick", action="store_true", help="start from the quick default model's settings")
    train.add_argument("--resume", metavar="RUN", help="resume a stopped or interrupted run")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    evaluate = sub.add_parser("evaluate", help="test accuracy of a saved run (JSON)")
    evaluate.add_argument("run")

    predict = sub.add_parser("predict", help="predict digits in image files with a saved run (JSON)")
    predict.add_argument("run")
    predict.add_argument("images", nargs="+", type=Path)

    sub.add_parser("runs", help="list saved runs")

    inside = sub.add_parser("inside", help="inside a saved run: per-layer weights, activations, dead units")
    inside.add_argument("run")
    inside.add_argument("--json", action="store_true", help="everything as JSON, histograms included")

    compare = sub.add_parser("compare", help="is the difference real? each run against the best one")
    compare.add_argument("runs", nargs="+", metavar="RUN", help="two or more run ids")
    compare.add_argument("--json", action="store_true", help="the tests and calibration as JSON")

    sweep = sub.add_parser("sweep", help="train a grid of configurations as one resumable sweep")
    _config_flags(sweep)
    axes = sweep.add_argument_group("swept values (each combination is one run)")
    axes.add_argument("--depths", type=int, nargs="+", default=(), help="hidden layers, e.g. 1 2 3")
    axes.add_argument("--widths", type=int, nargs="+", default=(), help="units per hidden layer")
    axes.add_argument("--batch-sizes", type=int, nargs="+", default=(), help="e.g. 16 64 256")
    axes.add_argument("--lrs", type=float, nargs="+", default=(), help="learning rates")
    axes.add_argument("--models", nargs="+", default=(), choices=RunConfig._choices["model"])
    axes.add_argument("--datasets", nargs="+", default=(), choices=RunConfig._choices["dataset"])
    axes.add_argument("--repeats", type=int, default=1, help="seed repeats of every point")
    sweep.add_argument("--name", default="sweep", help="a name for the sweep")
    sweep.add_argument("--search", choices=["asha"], help="a budgeted search on Ray Tune instead of the "
                       "whole grid: ASHA stops the trials that trail (grid mode stays for studies)")
    sweep.add_argument("--budget", type=float, metavar="SECONDS", help="with --search: only configurations "
                       "estimated to train an epoch in at most this many seconds")
    _sweep_running_flags(sweep)

    study = sub.add_parser("study", help="reproduce the blog study: ours beside the published figures")
    study.add_argument("--experiments", nargs="+", choices=EXPERIMENTS, default=list(EXPERIMENTS))
    study.add_argument("--no-batch-one", action="store_true", help="leave out the long batch-size-1 rows")
    study.add_argument("--table-only", action="store_true", help="only print the table from saved runs")
    study.add_argument("--repeats", type=int, default=1,
                       help="seeds per row (3 or more tell a real difference from seed noise)")
    _sweep_running_flags(study)
    cli_teach.add_parser(sub)
    return parser


def _sweep_running_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resume", metavar="SWEEP", help="continue a sweep: finished runs are not redone")
    parser.add_argument("--list", action="store_true", help="list saved sweeps and their progress")
    parser.add_argument("--ray", action="store_true", help="run the trials on a Ray cluster")
    parser.add_argument("--ray-address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, "
                        "else a local Ray instance)")


def _config_from_args(args: argparse.Namespace) -> RunConfig:
    from .config import quick_default

    base = quick_default() if getattr(args, "quick", False) else RunConfig()
    changes = {f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig)}
    depth, width = getattr(args, "depth", None), getattr(args, "width", None)  # train only
    if depth is not None or width is not None:
        if args.hidden is not None:
            raise ConfigError("hidden", "give either --hidden or --depth/--width, not both")
        changes["hidden"] = [width or 512] * (depth if depth is not None else len(base.hidden))
    return base.replace(**{k: v for k, v in changes.items() if v is not None})


class _ProgressBar:
    """One redrawn line on stderr while an epoch trains; one kept line per finished epoch.

    A step line shows the loss and accuracy of the last few steps. The end of
    an epoch shows the means over the whole epoch (a higher loss than the last
    steps': the first steps count too) and the validation accuracy, labelled
    as such.
    """

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.width = 0  # of the longest step line, to overwrite it entirely

    def __call__(self, e: ProgressEvent) -> None:
        if e.kind == "epoch":
            val = f" | validation accuracy {e.val_acc:.2%}" if e.val_acc is not None else ""
            line = (f"epoch {e.epoch}/{e.epochs} done | mean over the epoch: loss {e.loss:.4f}, "
                    f"train accuracy {e.train_acc:.2%}{val} | {e.samples_per_s:,.0f} img/s")
            self.out.write(f"\r{line:<{self.width}}\n")
        else:
            done = int(30 * e.step / max(1, e.total_steps))
            line = (f"epoch {e.epoch}/{e.epochs} [{'#' * done}{'.' * (30 - done)}] "
                    f"last steps: loss {e.loss:.4f} acc {e.train_acc:.4f} {e.samples_per_s:,.0f} img/s "
                    f"ETA {e.eta_s:5.0f}s")
            self.width = max(self.width, len(line))
            self.out.write(f"\r{line}")
        self.out.flush()


@contextlib.contextmanager
def _ctrl_c_stops(message: str) -> Iterator[dict[str, bool]]:
    """While inside, a first Ctrl-C sets ``stop["requested"]`` (the work ends cleanly), a second aborts."""
    stop = {"requested": False}

    def on_sigint(_signum: int, _frame: Any) -> None:
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        sys.stderr.write(f"\n{message} (Ctrl-C again to abort)...\n")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _cmd_train(args: argparse.Namespace) -> int:
    from .pipeline import run_training

    cfg = None if args.resume else _config_from_args(args)
    with _ctrl_c_stops("stopping after this step") as stop:
        info = run_training(
            cfg, runs_dir=args.runs_dir, data_root=args.data_dir, name=args.name, resume_id=args.resume,
            on_start=lambda run_id: sys.stderr.write(f"run {run_id}\n"),
            on_progress=None if args.quiet else _ProgressBar(sys.stderr),
            should_stop=lambda: stop["requested"],
        )
    print(_format_summary(info.id, info.status, info.summary))
    return 0


def _format_summary(run_id: str, status: str, s: dict[str, Any]) -> str:
    rows = [
        ("run", run_id), ("status", status),
        ("test accuracy", f"{s['test_accuracy']:.2%}"),
        ("training time", f"{s['train_time_s']:.1f} s ({s['time_per_epoch_s'] or 0:.1f} s/epoch)"),
        ("parameters", f"{s['parameters']:,}"),
        ("MACs (fvcore)", f"{s['macs']:,}"), ("FLOPs (2 x MACs)", f"{s['flops']:,}"),
        ("fp32 weights", f"{s['weights_bytes']:,} bytes"),
        ("checkpoint (with optimizer)", f"{s['checkpoint_bytes']:,} bytes"),
        ("latency p50 / p95", f"{s['latency_p50_ms']:.3f} / {s['latency_p95_ms']:.3f} ms"),
    ]
    if "energy_kwh" in s:
        estimated = " (estimated)" if s.get("energy_estimated") else ""
        rows.append(("energy / CO2", f"{s['energy_kwh']:.3g} kWh / {s['co2_kg']:.3g} kg "
                     f"({s['co2_country']}){estimated}"))
    return "\n".join(f"{k:>28}: {v}" for k, v in rows)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .data import load_split
    from .metrics import evaluate
    from .runs import load_model

    model, cfg = load_model(args.run, args.runs_dir)
    test = load_split(cfg.dataset, train=False, root=args.data_dir)
    result = evaluate(model, test.x, test.y)
    out = {"run": args.run, "test_accuracy": result.accuracy, "test_loss": result.loss,
           "per_class_accuracy": result.per_class_accuracy, "misclassified": len(result.misclassified)}
    print(json.dumps(out, indent=1))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from .errors import CorruptRun, ImageError
    from .infer import predict, preprocess
    from .runs import load_model

    model, cfg = load_model(args.run, args.runs_dir)
    results = []
    for path in args.images:
        try:
            x = preprocess(path, cfg.dataset)  # the path, not its bytes: errors name the file
        except (OSError, ImageError) as exc:
            results.append({"image": str(path), "error": str(exc)})
            continue
        try:
            p = predict(model, x)
        except ValueError as exc:  # NaN/infinite outputs: the run is at fault, not the image
            raise CorruptRun(
                f"Run {args.run} cannot predict: {exc} Train it again (a lower learning rate avoids "
                "diverging), or choose another run (python -m mnist_core runs)."
            ) from exc
        result = {"image": str(path), "label": p.label, "confidence": p.confidence,
                  "probabilities": list(p.probabilities)}
        results.append(result if p.warning is None else result | {"warning": p.warning})  # unsure
    print(json.dumps(results, indent=1))
    return 0 if all("error" not in r for r in results) else 1


def _cmd_runs(args: argparse.Namespace) -> int:
    from .runs import broken_runs, list_runs

    rows = []
    for r in list_runs(args.runs_dir):
        acc = f"{r.test_accuracy:.2%}" if r.test_accuracy is not None else "-"
        secs, params = r.summary.get("train_time_s"), r.summary.get("parameters")
        rows.append((r.id, r.status, acc, f"{secs or 0:.1f}", f"{params or 0:,}", r.name))
    rows += [(run_id, "broken", "", "", "", reason) for run_id, reason in broken_runs(args.runs_dir).items()]
    print(format_table(("run", "status", "test acc", "time s", "params", "name"), rows, right=(2, 3, 4)))
    return 0


def _cmd_inside(args: argparse.Namespace) -> int:
    from .internals import inspect_run

    inside = inspect_run(args.run, args.runs_dir, args.data_dir)
    if args.json:
        print(json.dumps(inside.as_dict(), indent=1, ensure_ascii=False))
        return 0
    if inside.data_note:
        print(inside.data_note)

    def pct(share: float | None) -> str:
        return "-" if share is None else f"{share:.1%}"

    rows = [
        (layer.name, f"{layer.weights.std:.4f}",
         "-" if layer.activations is None else f"{layer.activations.mean:.4f}",
         pct(layer.dead_share), pct(layer.saturated_share))
        for layer in inside.layers
    ]
    head = ("layer", "weight std", "mean output", "dead", "saturated")
    print(format_table(head, rows, right=(1, 2, 3, 4)))
    print(f"on {inside.sample_size} test images; --json for the histograms and the first-layer order")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from .significance import compare_runs

    found = compare_runs(args.runs, args.runs_dir, args.data_dir)
    if args.json:
        print(json.dumps(found.as_dict(), indent=1, ensure_ascii=False))
        return 0
    print(format_comparison(found))
    return 0


def format_comparison(found: Any) -> str:
    """The verdicts (each run against the best), then each run's accuracy, NLL and ECE."""
    lines = [t.verdict for t in found.tests]
    rows = [
        (r.label, f"{r.accuracy:.2%}", "-" if r.test_loss is None else f"{r.test_loss:.4f}",
         "-" if r.reliability is None else f"{r.reliability.ece:.2%}", r.id)
        for r in sorted(found.records, key=lambda r: -r.accuracy)
    ]
    table = format_table(("run", "test acc", "test NLL", "ECE", "id"), rows, right=(1, 2, 3))
    n = found.records[0].correct.size
    note = (f"on the same {n:,} test images; McNemar's exact test, bootstrap 95% interval, "
            "Holm's correction over the comparisons")
    return "\n".join([*lines, "", table, note])


def format_table(head: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """Text columns as wide as their longest cell (header included); columns in ``right`` right-aligned.

    The last column is not padded, and no line ends in spaces.
    """
    widths = [max(len(str(row[i])) for row in (head, *rows)) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        out = [
            str(c) if i == len(cells) - 1 else (f"{c:>{w}}" if i in right else f"{c:<{w}}")
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    return "\n".join(line(row) for row in (head, *rows))


def _cmd_sweep(args: argparse.Namespace) -> int:
    from . import sweeps

    if args.list:
        return _list_sweeps(args)
    if args.resume:
        sweep = sweeps.load(args.resume, args.runs_dir)
    else:
        spec = sweeps.GridSpec(
            depth=tuple(args.depths), width=tuple(args.widths), batch_size=tuple(args.batch_sizes),
            lr=tuple(args.lrs), model=tuple(args.models), dataset=tuple(args.datasets), repeats=args.repeats,
        )
        base = _config_from_args(args)
        if args.search:
            return _run_search(sweeps.grid_configs(base, spec), args)
        sweep = sweeps.create(sweeps.grid_configs(base, spec), args.name, args.runs_dir)
    return _run_sweep(sweep, args)


def _run_search(configs: Sequence[RunConfig], args: argparse.Namespace) -> int:
    """``sweep --search asha``: the configurations under the budget, trained on Ray Tune with ASHA."""
    from . import raytrials, search

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


def _cmd_study(args: argparse.Namespace) -> int:
    from . import study, sweeps
    from .runs import list_runs

    if args.list:
        return _list_sweeps(args)
    if not args.table_only:
        if args.resume:
            sweep = sweeps.load(args.resume, args.runs_dir)
        else:
            configs = study.configs(args.experiments, batch_one=not args.no_batch_one, repeats=args.repeats)
            sweep = sweeps.create(configs, "Reproduce the study", args.runs_dir, kind="study",
                                  axes={}, extra={"experiments": list(args.experiments)})
        code = _run_sweep(sweep, args)
        if code:
            return code
    studies = sweeps.list_sweeps(args.runs_dir)  # ours come from the study's own runs only
    saved = list_runs(args.runs_dir)
    rows = study.table(saved, args.experiments, studies=studies)
    print(format_study(rows))
    print(format_steps(study.steps(rows, saved, studies=studies)))
    return 0


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
    from . import sweeps
    from .estimate import split_sizes
    from .runs import list_runs

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
    from . import sweeps
    from .jobs import JobRegistry
    from .runs import list_runs

    sys.stderr.write(f"sweep {sweep.id}: {len(sweep.configs)} runs\n")
    with _ctrl_c_stops("stopping the sweep after this step") as stop:
        registry = JobRegistry(max_concurrent=1)
        if args.ray:
            try:
                _run_on_ray(sweep, registry, args, lambda: stop["requested"])
            except BaseException:  # no Ray cluster: the runs resuming here stop too, before the error shows
                sweeps.stop(sweep, registry)
                raise
        elif not stop["requested"]:
            sweeps.submit(sweep, registry, list_runs(args.runs_dir), runs_dir=args.runs_dir,
                          data_root=args.data_dir)
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


def _follow(sweep: Any, registry: Any, args: argparse.Namespace, stop: dict[str, bool]) -> None:
    from . import sweeps

    last = ""
    while registry.active():
        if stop["requested"]:
            sweeps.stop(sweep, registry)
        running = registry.running()
        snap = running[0].snapshot() if running else None
        done = sum(j.state == "completed" for j in registry.jobs())
        line = f"{done}/{len(registry.jobs())} of this session"
        if snap is not None:
            line += f" | {snap.label} seed {running[0].config.seed}: epoch {snap.epoch}/{snap.epochs}"
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
    from . import raytrials, sweeps

    outcome = sweeps.run_on_ray(
        sweep, registry, address=raytrials.ray_address(args.ray_address), runs_dir=args.runs_dir,
        data_root=args.data_dir, should_stop=should_stop,
        on_done=lambda name, run_id: sys.stderr.write(f"{name}: done ({run_id})\n"),
        on_error=lambda name, msg: sys.stderr.write(f"{name}: failed: {msg}\n"),
    )
    if outcome.resumed_here:
        sys.stderr.write(f"{len(outcome.resumed_here)} stopped runs of the sweep resume here, "
                         "from their checkpoints\n")


COMMANDS = {
    "train": _cmd_train, "evaluate": _cmd_evaluate, "predict": _cmd_predict, "runs": _cmd_runs,
    "sweep": _cmd_sweep, "study": _cmd_study, "inside": _cmd_inside, "compare": _cmd_compare,
    "teach": cli_teach.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except MnistLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # piped into `head`, which has read enough: not an error
        with contextlib.suppress(OSError):  # the flush at exit would raise it again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
