"""The same jobs headless: ``python -m mnist_core COMMAND`` (train, evaluate, predict, runs, inside,
compare, sweep, study, teach).

One module per family of commands: :mod:`.runs_cmds` (a single run),
:mod:`.grid` (sweeps, the budgeted search, the study), :mod:`.teach`
(corrections); :mod:`.common` holds what they share. Each command is a thin
wrapper around one core call; errors of the core (:class:`MnistLabError`)
become one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ..config import RunConfig
from ..errors import MnistLabError
from ..study import EXPERIMENTS
from . import grid, runs_cmds, teach
from .common import ProgressBar, config_flags, format_table, sweep_running_flags
from .grid import format_steps, format_study
from .runs_cmds import format_comparison

_ProgressBar = ProgressBar  # older name, kept for importers
__all__ = ["format_comparison", "format_steps", "format_study", "format_table", "main"]


DESCRIPTION = ("The app's jobs without a browser: train, evaluate, predict; list, compare, look inside and "
               "teach runs; sweeps, budgeted searches and the study.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mnist_core", description=DESCRIPTION)
    parser.add_argument("--runs-dir", type=Path, default=None,
                        help="checkpoints folder (default: $MNIST_LAB_CHECKPOINTS or ./checkpoints)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="dataset root (default: $MNIST_DATA_DIR or ./data)")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model and save it as a run")
    config_flags(train)
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
    config_flags(sweep)
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
    sweep_running_flags(sweep)

    study = sub.add_parser("study", help="reproduce the blog study: ours beside the published figures")
    study.add_argument("--experiments", nargs="+", choices=EXPERIMENTS, default=list(EXPERIMENTS))
    study.add_argument("--no-batch-one", action="store_true", help="leave out the long batch-size-1 rows")
    study.add_argument("--table-only", action="store_true", help="only print the table from saved runs")
    study.add_argument("--repeats", type=int, default=1,
                       help="seeds per row (3 or more tell a real difference from seed noise)")
    study.add_argument("--missing", action="store_true", help="train only the runs the table lacks (rows "
                       "or seeds not trained yet); the others keep their figures")
    sweep_running_flags(study)
    teach.add_parser(sub)
    return parser


COMMANDS = {
    "train": runs_cmds.cmd_train, "evaluate": runs_cmds.cmd_evaluate, "predict": runs_cmds.cmd_predict,
    "runs": runs_cmds.cmd_runs, "inside": runs_cmds.cmd_inside, "compare": runs_cmds.cmd_compare,
    "sweep": grid.cmd_sweep, "study": grid.cmd_study,
    "teach": teach.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except MnistLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # piped into `head`, which has read enough: not an error
        with contextlib.suppress(OSError):  # the flush at exit would raise it again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
