"""``python -m mnist_core teach``: correct a saved run from the command line, as "Teach it" does.

``teach RUN image.png --label 1`` teaches one image; ``teach RUN --handwriting``
teaches the whole handwriting set. Either way a new version is saved (the run
is never modified) and the before -> after figures are printed as JSON. The
settings are :class:`online.CorrectionSettings`' fields as flags, with its
defaults (the Draw page's).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..online import CorrectionSettings


def add_parser(sub: Any) -> None:
    """The ``teach`` subcommand of ``python -m mnist_core``."""
    teach = sub.add_parser("teach", help="correct a saved run: teach it an image or your handwriting (JSON)")
    teach.add_argument("run")
    teach.add_argument("image", nargs="?", type=Path, help="a drawing, photo or scan of one digit")
    teach.add_argument("--label", type=int, help="what the image really is (0-9)")
    teach.add_argument("--handwriting", action="store_true", help="teach the whole handwriting set instead")
    teach.add_argument(
        "--handwriting-dir",
        type=Path,
        default=None,
        help="the handwriting folder (default: $MNIST_LAB_HANDWRITING or beside the checkpoints)",
    )
    group = teach.add_argument_group("fine-tuning settings")
    for f in dataclasses.fields(CorrectionSettings):
        flag = f"--{f.name.replace('_', '-')}"
        if isinstance(f.default, bool):  # --memory / --no-memory
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                               help=f"(default: {f.default})")  # fmt: skip
        else:
            group.add_argument(flag, type=type(f.default), default=None, help=f"(default: {f.default})")


def run(args: argparse.Namespace) -> int:
    """Teach, save the version, print its figures as JSON."""
    from .. import teach
    from ..infer import read
    from ..runs import load_model, load_run

    changes = {f.name: getattr(args, f.name) for f in dataclasses.fields(CorrectionSettings)}
    settings = CorrectionSettings(**{k: v for k, v in changes.items() if v is not None})
    parent = load_run(args.run, args.runs_dir)
    root = None if args.data_dir is None else str(args.data_dir)
    if args.handwriting:
        if args.image is not None or args.label is not None:
            raise ConfigError("handwriting", "give either an image with --label, or --handwriting, not both")
        folder = None if args.handwriting_dir is None else str(args.handwriting_dir)
        taught = teach.correct_handwriting(parent, settings, folder=folder, root=root)
    else:
        if args.image is None or args.label is None:
            raise ConfigError("label", "give an image and its --label (0-9), or --handwriting")
        if not 0 <= args.label <= 9:
            raise ConfigError("label", f"{args.label} is not a digit 0-9")
        model, cfg = load_model(parent.id, parent.path.parent)
        reading = read(model, args.image, cfg.dataset)  # as the Draw page reads it: one call
        drawing = reading.pixels if cfg.dataset == "mnist" else None
        predicted = reading.prediction.label if reading.prediction is not None else None
        taught = teach.correct(parent, reading.x, args.label, settings, model=model, root=root,
                               drawing=drawing, predicted=predicted)  # fmt: skip
    print(json.dumps(report(taught), indent=1))
    return 0


def report(taught: Any) -> dict[str, Any]:
    """What the command prints: the new version, its parent and the figures saved with it."""
    return {"version": taught.version.id, "name": taught.version.name, "parent": taught.parent.id,
            **taught.details}  # fmt: skip
