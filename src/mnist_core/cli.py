"""The same jobs headless: ``python -m mnist_core train|evaluate|predict|runs``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from .config import RunConfig
from .errors import ConfigError, MnistLabError
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


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mnist_core", description=__doc__)
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
    return parser


def _config_from_args(args: argparse.Namespace) -> RunConfig:
    from .config import quick_default

    base = quick_default() if args.quick else RunConfig()
    changes = {f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig)}
    if args.depth is not None or args.width is not None:
        if args.hidden is not None:
            raise ConfigError("hidden", "give either --hidden or --depth/--width, not both")
        depth = args.depth if args.depth is not None else len(base.hidden)
        changes["hidden"] = [args.width or 512] * depth
    return base.replace(**{k: v for k, v in changes.items() if v is not None})


class _ProgressBar:
    """One redrawn line on stderr: epoch, bar, loss, accuracy, speed, ETA."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, e: ProgressEvent) -> None:
        width = 30
        done = int(width * e.step / max(1, e.total_steps))
        val = f" val_acc {e.val_acc:.4f}" if e.val_acc is not None else ""
        self.out.write(
            f"\repoch {e.epoch}/{e.epochs} [{'#' * done}{'.' * (width - done)}] "
            f"loss {e.loss:.4f} acc {e.train_acc:.4f}{val} {e.samples_per_s:,.0f} img/s "
            f"ETA {e.eta_s:5.0f}s "
        )
        if e.kind == "epoch":
            self.out.write("\n")
        self.out.flush()


def _cmd_train(args: argparse.Namespace) -> int:
    from .pipeline import run_training

    cfg = None if args.resume else _config_from_args(args)
    stop = {"requested": False}

    def on_sigint(_signum: int, _frame: Any) -> None:
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        sys.stderr.write("\nstopping after this step (Ctrl-C again to abort)...\n")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        info = run_training(
            cfg, runs_dir=args.runs_dir, data_root=args.data_dir, name=args.name, resume_id=args.resume,
            on_start=lambda run_id: sys.stderr.write(f"run {run_id}\n"),
            on_progress=None if args.quiet else _ProgressBar(sys.stderr),
            should_stop=lambda: stop["requested"],
        )
    finally:
        signal.signal(signal.SIGINT, previous)
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
    from .errors import ImageError
    from .infer import predict, preprocess
    from .runs import load_model

    model, cfg = load_model(args.run, args.runs_dir)
    results = []
    for path in args.images:
        try:
            p = predict(model, preprocess(path.read_bytes(), cfg.dataset))
            results.append({"image": str(path), "label": p.label, "confidence": p.confidence,
                            "probabilities": list(p.probabilities)})
        except (OSError, ImageError) as exc:
            results.append({"image": str(path), "error": str(exc)})
    print(json.dumps(results, indent=1))
    return 0 if all("error" not in r for r in results) else 1


def _cmd_runs(args: argparse.Namespace) -> int:
    from .runs import broken_runs, list_runs

    header = f"{'run':<36} {'status':<11} {'test acc':>8} {'time s':>8} {'params':>11}  name"
    print(header)
    for r in list_runs(args.runs_dir):
        acc = f"{r.test_accuracy:.2%}" if r.test_accuracy is not None else "-"
        secs = r.summary.get("train_time_s")
        params = r.summary.get("parameters")
        print(f"{r.id:<36} {r.status:<11} {acc:>8} {secs or 0:>8.1f} {params or 0:>11,}  {r.name}")
    for run_id, reason in broken_runs(args.runs_dir).items():
        print(f"{run_id:<36} {'broken':<11} {reason}")
    return 0


COMMANDS = {"train": _cmd_train, "evaluate": _cmd_evaluate, "predict": _cmd_predict, "runs": _cmd_runs}


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except MnistLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
