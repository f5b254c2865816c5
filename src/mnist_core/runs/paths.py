"""Where runs live: the checkpoints folder, run ids and the names inside a run's folder.

::

    checkpoints/<run_id>/
        config.json      RunConfig.to_dict(): everything that rebuilds the model
        run.json         id, name, status, timestamps, lineage, tags, notes, error
        history.json     progress events (step points and epoch ends)
        summary.json     final metrics (test accuracy, cost, latency, energy...)
        weights.pt       model state_dict (what inference loads)
        checkpoint.pt    model + optimizer + scheduler state and position, to resume
        .lock            held (flock) by the process training the run
    checkpoints/.staging-<pid>-*/   a run being filled (see :mod:`.staging`)
    checkpoints/.deleted-<id>-*/    a run being deleted
    checkpoints/.sweeps/<id>.json   a sweep's definition (see :mod:`.sweepfiles`)

Names that start with a dot are never runs: every listing skips them.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
from pathlib import Path

from ..config import RunConfig
from ..errors import RunNotFound

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # a run or sweep id: one plain folder name
# The files a run folder may hold besides its locks, in the order a reader needs them.
RUN_FILES = (
    "config.json", "run.json", "summary.json", "history.json", "weights.pt", "checkpoint.pt",
    "memory.pt",  # a corrected version's memory of drawings (mnist_core.memory), if it has one
)  # fmt: skip
STAGING_PREFIX = ".staging-"
DELETED_PREFIX = ".deleted-"


def default_runs_dir() -> Path:
    """``$MNIST_LAB_CHECKPOINTS`` or ``./checkpoints``."""
    return Path(os.environ.get("MNIST_LAB_CHECKPOINTS") or "checkpoints")


def runs_root(runs_dir: str | os.PathLike[str] | None) -> Path:
    """``runs_dir`` as a path, or the default checkpoints folder when None."""
    return Path(runs_dir) if runs_dir is not None else default_runs_dir()


def run_path(run_id: str, runs_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder of ``run_id``; refuses ids that could escape the checkpoints folder."""
    if not isinstance(run_id, str) or not ID_RE.match(run_id) or ".." in run_id:
        raise RunNotFound(f"{run_id!r} is not a valid run id")
    return runs_root(runs_dir) / run_id


def new_run_id(cfg: RunConfig, now: dt.datetime | None = None) -> str:
    """Sortable and readable: ``20261126-193000-mlp-512-3f9a0c``."""
    now = now or dt.datetime.now(dt.UTC)
    arch = "-".join(map(str, cfg.hidden)) if cfg.model == "mlp" else cfg.cnn_style
    arch = arch if len(arch) <= 24 else f"{len(cfg.hidden)}x{cfg.hidden[0]}"
    return f"{now:%Y%m%d-%H%M%S}-{cfg.model}-{arch}-{secrets.token_hex(3)}"


def now_iso() -> str:
    """The time stamped in ``run.json`` (``created``, ``updated``): ISO 8601, UTC, to the second."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
