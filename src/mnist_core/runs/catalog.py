"""Reading runs: one run's files, every run in a listing, a run's model and its resumable state.

Every file is checked against :mod:`.schema` as it is read, so a folder
copied, imported or edited by hand is either a valid run or a broken one
with a one-line reason; a single bad folder never takes a listing down. A
run marked "running" whose lock nobody holds was interrupted (its process
died); it is reported as "interrupted".
"""

from __future__ import annotations

import logging
import math
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import memory
from ..config import RunConfig
from ..errors import CorruptRun, MnistLabError, RunNotFound
from ..models import build_model
from . import schema
from .fileio import one_line, read_json, read_torch
from .locks import is_locked
from .paths import run_path, runs_root
from .state import TrainState

log = logging.getLogger(__name__)

STATUSES = schema.STATUSES  # running, completed, stopped, interrupted, failed
RESUMABLE = ("stopped", "interrupted", "failed")


@dataclass(frozen=True)
class RunInfo:
    """What a listing shows of a run (history and weights are loaded on demand)."""

    id: str
    path: Path
    status: str
    config: RunConfig
    name: str
    created: str  # ISO 8601, UTC
    updated: str
    summary: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # the whole run.json
    has_weights: bool = True  # False: no weights.pt (nothing to predict with), set by load_run

    @property
    def test_accuracy(self) -> float | None:
        value = self.summary.get("test_accuracy")  # checked by the schema when read from disk
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        try:
            number = float(value)
        except OverflowError:
            return None
        return number if math.isfinite(number) else None


def resumable(info: RunInfo) -> bool:
    """Whether "Resume" makes sense for ``info``.

    A stopped, interrupted or failed run resumes, from its checkpoint or, if it
    died before the first one, from step 0 of its configuration. A saved
    version (it has a parent) without a checkpoint does not: training it would
    replace the parent's weights with a fresh model.
    """
    if info.status not in RESUMABLE:
        return False
    return not info.meta.get("parent") or (info.path / "checkpoint.pt").is_file()


# -- one run ---------------------------------------------------------------------------------
def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def load_run(run_id: str, runs_dir: str | os.PathLike[str] | None = None) -> RunInfo:
    """Read one run's config, status and summary; raises RunNotFound / CorruptRun."""
    path = run_path(run_id, runs_dir)
    if not path.is_dir():
        raise RunNotFound(f"No run {run_id!r} in {path.parent}")
    if path.is_symlink():  # it would read, and on resume write, files outside the checkpoints folder
        raise CorruptRun(f"{path} is a symbolic link; a run must be a real folder inside {path.parent}")
    small = schema.MAX_SMALL_JSON_BYTES  # every file checked against the schema
    meta = schema.meta(read_json(path / "run.json", small), str(path / "run.json"))
    cfg = schema.config(read_json(path / "config.json", small), str(path / "config.json"))
    summary_path = path / "summary.json"
    exists = summary_path.is_symlink() or summary_path.exists()  # a link is refused by read_json
    summary = schema.summary(read_json(summary_path, small), str(summary_path)) if exists else {}
    status = meta["status"]
    if status == "running" and not is_locked(path):
        status = "interrupted"
    return RunInfo(
        id=path.name, path=path, status=status, config=cfg, name=meta.get("name") or cfg.label(),
        created=meta.get("created", ""), updated=meta.get("updated", ""),
        summary=summary, meta=meta, has_weights=_is_regular(path / "weights.pt"),
    )


def load_history(run_id: str, runs_dir: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """The run's learning curve, checked point by point (``schema.history``); [] if it has none."""
    path = run_path(run_id, runs_dir) / "history.json"
    if not (path.is_symlink() or path.exists()):
        return []
    return schema.history(read_json(path, schema.MAX_HISTORY_BYTES), str(path))


def load_model(
    run_id: str, runs_dir: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu"
) -> tuple[nn.Module, RunConfig]:
    """The run's model in eval mode, rebuilt from config.json with weights.pt.

    Nothing is built until the weights are known to fit: the configuration is
    within ``schema.MAX_PARAMETERS`` (checked by :func:`load_run`),
    ``weights.pt`` is a regular file no larger than those tensors need, and it
    holds exactly their names, shapes and types.
    """
    info = load_run(run_id, runs_dir)
    path = info.path / "weights.pt"
    if not (path.is_symlink() or path.exists()):  # something else there is refused by read_torch
        raise CorruptRun(
            f"weights.pt is missing in {info.path}: run {info.id} has no trained weights to use. "
            "Pick another run, or resume or retrain this one."
        )
    expected = schema.expected_state(info.config)
    state = read_torch(path, "cpu", schema.weights_bytes_bound(expected))
    try:
        schema.check_state(state, expected, str(path))
    except CorruptRun as exc:
        raise CorruptRun(f"{exc} It does not match the run's configuration.") from None
    model = build_model(info.config)
    load_state(model, state, path)
    memory.attach(model, load_memory(info.path))  # a corrected version's memory of drawings, if any
    return model.to(device).eval(), info.config


def load_memory(folder: Path) -> memory.Memory | None:
    """The run's ``memory.pt`` (:mod:`mnist_core.memory`), checked; None when it has none (older runs)."""
    path = folder / memory.MEMORY_FILE
    if not (path.is_symlink() or path.exists()):
        return None
    return memory.from_state(read_torch(path, "cpu", memory.max_bytes()), str(path))


def load_state(model: nn.Module, state: Any, path: Path) -> None:
    """Put ``state`` (a state_dict read from ``path``) into ``model``; a mismatch is a CorruptRun."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CorruptRun(f"{path} is not a state_dict of tensors")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CorruptRun(f"{path} does not match the run's configuration: {exc}") from exc


def has_checkpoint(run_id: str, runs_dir: str | os.PathLike[str] | None = None) -> bool:
    """Whether the run saved a resumable state (after an epoch, or when stopped).

    Anything named checkpoint.pt counts (a link, a FIFO): :func:`load_train_state`
    then refuses it with a message, rather than the run silently starting over.
    """
    path = run_path(run_id, runs_dir) / "checkpoint.pt"
    return path.is_symlink() or path.exists()


def load_train_state(run_id: str, runs_dir: str | os.PathLike[str] | None = None) -> TrainState:
    """What :func:`mnist_core.train.train` needs to resume the run.

    The checkpoint is checked against the run's configuration first
    (``schema.check_checkpoint``: position, model tensors, optimizer and
    scheduler state, history): a crafted one is a :class:`CorruptRun` naming
    checkpoint.pt, not a ``KeyError`` in the middle of training.
    """
    info = load_run(run_id, runs_dir)
    file = info.path / "checkpoint.pt"
    expected = schema.expected_state(info.config)
    ckpt = schema.check_checkpoint(
        read_torch(file, "cpu", schema.checkpoint_bytes_bound(expected)), info.config, str(file)
    )
    history = ckpt["history"]  # checkpoints written before it travelled with them: history.json
    return TrainState(
        epoch=ckpt["epoch"], step_in_epoch=ckpt["step_in_epoch"], model=ckpt["model"],
        optimizer=ckpt["optimizer"], scheduler=ckpt["scheduler"], elapsed_s=ckpt["elapsed_s"],
        history=history if history is not None else load_history(run_id, info.path.parent),
    )


# -- every run: listings (pages, CLI) ----------------------------------------------------------
def scan_runs(runs_dir: str | os.PathLike[str] | None = None) -> tuple[list[RunInfo], dict[str, str]]:
    """Readable runs (newest first) and broken folders (with the reason) in one pass.

    A page that shows both calls this once instead of ``list_runs`` and
    ``broken_runs``, which each read every folder.
    Any error while reading one folder (whatever its type) is that folder's
    one-line reason: a single bad folder never takes the listing down.
    """
    root = runs_root(runs_dir)
    good: list[RunInfo] = []
    broken: dict[str, str] = {}
    try:
        names = sorted(e.name for e in os.scandir(root) if not e.name.startswith(".") and _entry_is_dir(e))
    except OSError:  # no checkpoints folder yet (or unreadable): no runs
        names = []
    for name in names:
        try:
            good.append(load_run(name, root))
        except MnistLabError as exc:
            broken[name] = one_line(exc)
        except Exception as exc:  # a bug or an OS error on one folder: report it, list the rest
            log.warning("Unexpected error reading run folder %s", root / name, exc_info=True)
            broken[name] = f"cannot be read ({type(exc).__name__}): {one_line(exc)}"
    return sorted(good, key=lambda r: (r.created, r.id), reverse=True), broken


def _entry_is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # a link to a folder counts: load_run then reports it
    except OSError:
        return False


_warned: set[tuple[str, str]] = set()  # (folder, reason) already logged by this process
_warned_lock = threading.Lock()


def list_runs(runs_dir: str | os.PathLike[str] | None = None) -> list[RunInfo]:
    """Every readable run, newest first; broken folders are skipped with a warning.

    The warning is logged once per folder and reason in a process: pages list
    the runs on every rerun (108 identical lines in ten minutes, before).
    """
    good, broken = scan_runs(runs_dir)
    for name, reason in broken.items():
        folder = str(runs_root(runs_dir) / name)
        with _warned_lock:
            new = (folder, reason) not in _warned
            _warned.add((folder, reason))
        if new:
            log.warning("Skipping broken run folder %s: %s", folder, reason)
    return good


def broken_runs(runs_dir: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Folders that look like runs but cannot be read, with the reason."""
    return scan_runs(runs_dir)[1]


def best_run(runs_dir: str | os.PathLike[str] | None = None) -> RunInfo | None:
    """The completed MNIST run with the highest test accuracy, if any."""
    return best_of(list_runs(runs_dir))


def best_of(runs: list[RunInfo]) -> RunInfo | None:
    """The completed MNIST run of ``runs`` with the highest test accuracy (any dataset if none).

    Only runs with weights count: a run that claims 100% without any is never the default. Of runs
    with the same accuracy, a trained one goes before a corrected version of it (a correction keeps
    its parent's accuracy, and then became everyone's default model after one taught drawing).
    """
    done = [r for r in runs if r.status == "completed" and r.has_weights and r.test_accuracy is not None]
    mnist = [r for r in done if r.config.dataset == "mnist"] or done
    return max(mnist, key=lambda r: (r.test_accuracy or 0.0, not r.meta.get("parent")), default=None)


def folder_state(runs_dir: str | os.PathLike[str] | None = None) -> tuple[tuple[str, int], ...]:
    """A cheap fingerprint that changes whenever a run is added, removed or written.

    Every write of ours is a temp file renamed inside the run's folder, which
    updates the folder's mtime; a file edited in place (by hand, by another
    tool) updates only its own. So each entry's stamp is the latest mtime of
    the folder and its files, without reading any file (a stat each). Use it
    as a cache key for listings.
    """
    root = runs_root(runs_dir)
    state = []
    try:
        with os.scandir(root) as entries:
            for e in entries:
                if e.name.startswith(".") or not _entry_is_dir(e):
                    continue
                state.append((e.name, _latest_mtime(e)))
    except OSError:
        return ()
    return tuple(sorted(state))


def _latest_mtime(folder: os.DirEntry[str]) -> int:
    """The latest mtime (ns) of ``folder`` and the files in it; 0 when it is gone or a dangling link."""
    try:
        latest = folder.stat().st_mtime_ns
        with os.scandir(folder.path) as files:
            for f in files:
                try:
                    latest = max(latest, f.stat(follow_symlinks=False).st_mtime_ns)
                except OSError:  # removed meanwhile
                    continue
    except OSError:
        return 0
    return latest
