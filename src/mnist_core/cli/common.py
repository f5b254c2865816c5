"""What the commands share: flags from RunConfig, the progress line, Ctrl-C, text tables."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from ..config import RunConfig
from ..errors import ConfigError
from ..train import ProgressEvent


def config_flags(parser: argparse.ArgumentParser) -> None:
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


def sweep_running_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resume", metavar="SWEEP", help="continue a sweep: finished runs are not redone")
    parser.add_argument("--list", action="store_true", help="list saved sweeps and their progress")
    parser.add_argument("--at-once", type=int, default=1, metavar="N",
                        help="runs trained at once here, sharing the CPU threads (default: 1; on 2 cores, "
                        "2 finishes the study sooner, each run's time then measured beside another)")
    parser.add_argument("--ray", action="store_true", help="run the trials on a Ray cluster")
    parser.add_argument("--ray-address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, "
                        "else a local Ray instance)")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    from ..config import quick_default

    base = quick_default() if getattr(args, "quick", False) else RunConfig()
    changes = {f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig)}
    depth, width = getattr(args, "depth", None), getattr(args, "width", None)  # train only
    if depth is not None or width is not None:
        if args.hidden is not None:
            raise ConfigError("hidden", "give either --hidden or --depth/--width, not both")
        changes["hidden"] = [width or 512] * (depth if depth is not None else len(base.hidden))
    return base.replace(**{k: v for k, v in changes.items() if v is not None})


class ProgressBar:
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
def ctrl_c_stops(message: str) -> Iterator[dict[str, bool]]:
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
