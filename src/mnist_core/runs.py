"""Runs on disk: the only module that knows the layout of ``checkpoints/``.

::

    checkpoints/<run_id>/
        config.json      RunConfig.to_dict(): everything that rebuilds the model
        run.json         id, name, status, timestamps, lineage, tags, notes, error
        history.json     progress events (step points and epoch ends)
        summary.json     final metrics (test accuracy, cost, latency, energy...)
        weights.pt       model state_dict (what inference loads)
        checkpoint.pt    model + optimizer + scheduler state and position, to resume
        .lock            held (flock) by the process training the run

Every write goes to a temporary file in the same folder and is renamed over
the old one, so a crash leaves the previous version intact. A new run, a
saved version and an import are filled in a hidden ``.staging-<pid>-*``
folder (locked by its process) and appear with one rename, whole; what a
killed process leaves there is removed by :func:`clean_stale_staging`
(the app calls it once per server). ``.pt`` files are
read with ``torch.load(weights_only=True)``: no pickled code ever runs.
A run marked "running" whose lock nobody holds was interrupted (its process
died); it is reported as "interrupted".
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import os
import re
import secrets
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

from . import runschema
from .config import RunConfig
from .errors import CorruptRun, MnistLabError, RunFolderMissing, RunNotFound, StorageError
from .fsutil import advice, atomic_write
from .models import build_model
from .train import TrainState

try:  # POSIX advisory locks; elsewhere a run's liveness is not tracked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

STATUSES = ("running", "completed", "stopped", "interrupted", "failed")
RESUMABLE = ("stopped", "interrupted", "failed")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_JSON_BYTES = 64 * 1024 * 1024


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
        value = self.summary.get("test_accuracy")  # checked by runschema when read from disk
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        try:
            number = float(value)
        except OverflowError:
            return None
        return number if math.isfinite(number) else None


def default_runs_dir() -> Path:
    """``$MNIST_LAB_CHECKPOINTS`` or ``./checkpoints``."""
    return Path(os.environ.get("MNIST_LAB_CHECKPOINTS") or "checkpoints")


def _dir(runs_dir: str | os.PathLike[str] | None) -> Path:
    return Path(runs_dir) if runs_dir is not None else default_runs_dir()


def run_path(run_id: str, runs_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder of ``run_id``; refuses ids that could escape the checkpoints folder."""
    if not isinstance(run_id, str) or not _ID_RE.match(run_id) or ".." in run_id:
        raise RunNotFound(f"{run_id!r} is not a valid run id")
    return _dir(runs_dir) / run_id


def new_run_id(cfg: RunConfig, now: dt.datetime | None = None) -> str:
    """Sortable and readable: ``20261126-193000-mlp-512-3f9a0c``."""
    now = now or dt.datetime.now(dt.UTC)
    arch = "-".join(map(str, cfg.hidden)) if cfg.model == "mlp" else cfg.cnn_style
    arch = arch if len(arch) <= 24 else f"{len(cfg.hidden)}x{cfg.hidden[0]}"
    return f"{now:%Y%m%d-%H%M%S}-{cfg.model}-{arch}-{secrets.token_hex(3)}"


# -- atomic writes -------------------------------------------------------------


def write_json(path: Path, obj: Any) -> None:
    with atomic_write(path) as f:
        f.write(json.dumps(obj, indent=1, allow_nan=True).encode())


class _Sink:
    """A file for ``torch.save`` that keeps the ``OSError`` of a failed write.

    torch's zip writer turns it into ``RuntimeError: [enforce fail at
    inline_container.cc] unexpected pos ...``; :func:`write_torch` raises the
    original instead, which ``atomic_write`` turns into a ``WriteError`` that
    says what to do (free some disk space...).
    """

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self._f.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self._f.flush()


def write_torch(path: Path, obj: Any) -> None:
    with atomic_write(path) as f:
        sink = _Sink(f)
        try:
            torch.save(obj, sink)  # type: ignore[arg-type]
        except RuntimeError as exc:
            if sink.error is None:
                raise
            raise sink.error from exc


def _open_regular(path: Path) -> int:
    """A descriptor of ``path`` if it is a regular file, not a link; else :class:`CorruptRun`.

    ``O_NOFOLLOW`` refuses a symbolic link (to ``/dev/zero``, to a file outside
    the checkpoints folder) and ``O_NONBLOCK`` keeps a FIFO from blocking the
    open; ``fstat`` then checks what was opened, so nothing can be swapped in
    between a check and the read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as exc:
        raise CorruptRun(f"{path.name} is missing in {path.parent}") from exc
    except OSError as exc:
        if path.is_symlink():
            raise CorruptRun(f"{path} is a symbolic link; a run's files must be regular files") from exc
        raise CorruptRun(f"{path} cannot be opened: {exc.strerror or exc}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CorruptRun(f"{path} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes(path: Path, max_bytes: int) -> bytes:
    """At most ``max_bytes`` of a regular file, read by count (a size from ``stat`` is not trusted)."""
    fd = _open_regular(path)
    try:
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise CorruptRun(f"{path} cannot be read: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise CorruptRun(f"{path} is larger than {max_bytes:,} bytes")
    return data


def read_json(path: Path, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse a JSON file we wrote; anything else is a :class:`CorruptRun`."""
    data = read_bytes(path, max_bytes)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = _one_line(exc)
        if "integer string conversion" in reason:  # Python refuses to parse an integer that long
            reason = "it holds an integer of more than 4300 digits"
        raise CorruptRun(f"{path} is not valid JSON: {reason}") from exc


def read_torch(path: Path, device: str | torch.device = "cpu", max_bytes: int | None = None) -> Any:
    """``torch.load(weights_only=True)`` of a regular file: tensors and plain containers only."""
    fd = _open_regular(path)
    try:
        size = os.fstat(fd).st_size
        if max_bytes is not None and size > max_bytes:
            raise CorruptRun(f"{path} is larger than {max_bytes:,} bytes, more than the run's model needs")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return torch.load(f, map_location=device, weights_only=True)
    except MnistLabError:
        raise
    except Exception as exc:  # unpickling refusals, truncation, zip errors...
        raise CorruptRun(f"{path} cannot be loaded safely: {_one_line(exc)}") from exc
    finally:
        os.close(fd)


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line, at most 300 characters (a listing shows it)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# -- writing a run -------------------------------------------------------------
class RunWriter:
    """The owner of a run being trained: holds its lock, writes its files."""

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path, self.meta = path, meta  # meta: what this writer wrote last
        self._lock: IO[bytes] | None = None

    @property
    def id(self) -> str:
        return self.path.name

    @classmethod
    def create(
        cls,
        cfg: RunConfig,
        runs_dir: str | os.PathLike[str] | None = None,
        name: str | None = None,
        parent: str | None = None,
        tags: tuple[str, ...] = (),
    ) -> RunWriter:
        """Make a new run folder with its config, status "running", locked by this writer.

        The folder is filled under a hidden staging name and published with
        one rename, lock already held: a crash at any moment leaves either no
        run or a whole one (listed "interrupted" once its process is gone).
        """
        root = _dir(runs_dir)
        now = _now()
        meta = {
            "id": None, "name": name or cfg.label(), "status": "running", "created": now,
            "updated": now, "parent": parent, "tags": list(tags), "notes": "", "error": None,
        }
        staging, lock = _new_staging(root)
        try:
            _fill(staging, {"config.json": cfg.to_dict(), "run.json": meta}, f"a new run in {root}")
            run_id, meta = _publish(staging, cfg, root)
        except BaseException:
            _drop_staging(staging, lock)
            raise
        writer = cls(root / run_id, meta)
        writer._lock = lock  # the lock travelled with the folder
        return writer

    @classmethod
    def reopen(cls, run_id: str, runs_dir: str | os.PathLike[str] | None = None) -> RunWriter:
        """Take over a stopped, interrupted or failed run to resume it."""
        info = load_run(run_id, runs_dir)
        if info.status not in RESUMABLE:
            raise MnistLabError(f"Run {run_id} is {info.status}; only {', '.join(RESUMABLE)} runs resume.")
        if not resumable(info):
            raise MnistLabError(
                f"Run {run_id} is an unfinished saved version of run {info.meta.get('parent')}: its process "
                "stopped before its weights were written, so there is nothing to resume (training it would "
                "start from a fresh model). Delete it; the run it came from is unchanged."
            )
        writer = cls(info.path, dict(info.meta))
        writer._acquire()
        writer.set_status("running", error=None)
        return writer

    def _acquire(self) -> None:
        try:
            self._lock = _take_lock(self.path)
        except OSError as exc:
            raise self.folder_missing(exc) or _storage_error(f"Could not lock run {self.id}", exc) from exc
        if self._lock is None and fcntl is not None:
            raise MnistLabError(f"Run {self.id} is being trained by another process.")

    def discard(self) -> None:
        """Remove the run's folder (a run whose first files could not be written)."""
        self.release()
        shutil.rmtree(self.path, ignore_errors=True)

    def folder_missing(self, exc: BaseException) -> RunFolderMissing | None:
        """The error to raise instead of ``exc`` when it failed because the run's folder is gone."""
        if not isinstance(exc, OSError) or self.path.is_dir():
            return None
        return RunFolderMissing(
            f"The folder of run {self.id} ({self.path}) was deleted or moved while the run was being "
            "written, so its progress cannot be saved. Start the run again, or put the folder back "
            "and resume it."
        )

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            missing = self.folder_missing(exc)
            if missing is not None:
                raise missing from exc
            if isinstance(exc, MnistLabError):
                raise
            raise _storage_error(f"Could not update run {self.id}", exc) from exc

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing drops the flock
            self._lock = None

    def set_status(self, status: str, error: str | None = None) -> None:
        """Change status and error only: a rename or note made meanwhile is kept."""
        with self._writing():
            self.meta = _modify_meta(self.path, {"status": status, "error": error})

    def save_checkpoint(self, state: TrainState) -> None:
        """Resumable state first, then the inference weights, then the history."""
        # The history travels inside the checkpoint too: a crash between the renames
        # below cannot leave a resumable state whose curve misses an epoch.
        checkpoint = {
            "epoch": state.epoch, "step_in_epoch": state.step_in_epoch, "model": state.model,
            "optimizer": state.optimizer, "scheduler": state.scheduler, "elapsed_s": state.elapsed_s,
            "history": state.history,
        }
        with self._writing():
            write_torch(self.path / "checkpoint.pt", checkpoint)
            write_torch(self.path / "weights.pt", state.model)
            write_json(self.path / "history.json", state.history)

    def finish(self, status: str, summary: dict[str, Any] | None = None, error: str | None = None) -> None:
        """Write the summary (if any) and the final status, then drop the lock."""
        try:
            if summary is not None:
                with self._writing():
                    write_json(self.path / "summary.json", summary)
            self.set_status(status, error)
        finally:
            self.release()


@contextlib.contextmanager
def _meta_lock(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of ``run.json`` between threads and processes."""
    if fcntl is None:
        yield
        return
    with open(path / ".meta.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # closing the file drops the lock


def _modify_meta(path: Path, changes: dict[str, Any]) -> dict[str, Any]:
    with _meta_lock(path):
        meta = read_json(path / "run.json")
        if not isinstance(meta, dict):
            raise CorruptRun(f"{path / 'run.json'} is not a JSON object")
        meta.update(changes, updated=_now())
        write_json(path / "run.json", meta)
        return meta


# -- managing runs --------------------------------------------------------------
def update_meta(
    run_id: str,
    runs_dir: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    tags: list[str] | tuple[str, ...] | None = None,
    notes: str | None = None,
) -> RunInfo:
    """Rename, tag or annotate a run; fields left as None are unchanged."""
    path = load_run(run_id, runs_dir).path
    changes: dict[str, Any] = {}
    if name is not None:
        if not name.strip() or len(name) > 200:
            raise MnistLabError("A run name must be 1 to 200 characters.")
        changes["name"] = name.strip()
    if tags is not None:
        changes["tags"] = sorted({str(t).strip() for t in tags if str(t).strip()})
        if len(changes["tags"]) > 1000 or any(len(t) > 200 for t in changes["tags"]):
            raise MnistLabError("A run takes at most 1000 tags of 1 to 200 characters each.")
    if notes is not None:
        if len(notes) > runschema.MAX_TEXT:  # the limit every reader applies to run.json
            raise MnistLabError(f"Notes are limited to {runschema.MAX_TEXT:,} characters; shorten them.")
        changes["notes"] = notes
    _modify_meta(path, changes)
    return load_run(run_id, runs_dir)


def merge_summary(
    run_id: str, runs_dir: str | os.PathLike[str] | None, changes: dict[str, Any]
) -> dict[str, Any]:
    """Add figures measured after the run ended (``significance``) to its summary.json, atomically.

    Refused while the run is training: its own summary would overwrite them.
    """
    info = load_run(run_id, runs_dir)
    if info.status == "running":
        raise MnistLabError(f"Run {info.name!r} is still training; compare it once it has finished.")
    with _meta_lock(info.path):
        summary = load_run(run_id, runs_dir).summary | changes
        path = info.path / "summary.json"
        runschema.summary(summary, str(path))
        write_json(path, summary)
    return summary


def delete_run(run_id: str, runs_dir: str | os.PathLike[str] | None = None) -> None:
    """Remove a run's folder; a run being trained is refused.

    The folder is first renamed to a hidden name (atomic), so a listing never
    sees a half-deleted run.
    """
    path = run_path(run_id, runs_dir)
    if not path.is_dir():
        raise RunNotFound(f"No run {run_id!r} in {path.parent}")
    if _is_locked(path):
        raise MnistLabError(f"Run {run_id} is being trained; stop it before deleting it.")
    trash = path.with_name(f"{_DELETED_PREFIX}{run_id}-{secrets.token_hex(3)}")
    try:
        os.replace(path, trash)
    except FileNotFoundError as exc:
        raise RunNotFound(f"No run {run_id!r} in {path.parent} (deleted meanwhile)") from exc
    except OSError as exc:
        raise _storage_error(f"Could not delete run {run_id}", exc) from exc
    shutil.rmtree(trash, ignore_errors=True)  # if this process dies first, clean_stale_staging ends it


def save_version(
    parent_id: str,
    state_dict: dict[str, torch.Tensor],
    summary: dict[str, Any],
    runs_dir: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    kind: str = "correction",
    details: dict[str, Any] | None = None,
) -> RunInfo:
    """Save changed weights of ``parent_id`` as a new, completed run that points back to it.

    The parent is never modified: undoing the change is deleting the version.
    ``details`` (JSON) records what was done, e.g. the corrected label.
    The version is written in a staging folder and published with one rename,
    complete and "completed": a crash leaves no half-saved version.
    """
    parent = load_run(parent_id, runs_dir)
    model = build_model(parent.config)
    _load_state(model, state_dict, Path("the new weights"))
    root, now = parent.path.parent, _now()
    meta = {
        "id": None, "name": name or f"{parent.name} ({kind})", "status": "completed", "created": now,
        "updated": now, "parent": parent_id, "tags": list(parent.meta.get("tags") or ()), "notes": "",
        "error": None, "kind": kind, "details": details or {},
    }
    history = load_history(parent_id, runs_dir)
    files = {
        "config.json": parent.config.to_dict(),
        "weights.pt": {k: v.detach().cpu() for k, v in state_dict.items()},
        "history.json": history, "summary.json": summary, "run.json": meta,
    }
    staging, lock = _new_staging(root)
    try:
        _fill(staging, files, f"the new version of run {parent_id} in {root}")
        run_id, _ = _publish(staging, parent.config, root)
    finally:
        _drop_staging(staging, lock)  # nothing left to drop once published
    return load_run(run_id, root)


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


def lineage(run_id: str, runs_dir: str | os.PathLike[str] | None = None) -> list[RunInfo]:
    """The run and its ancestors, oldest first (stops at a missing or broken parent)."""
    chain: list[RunInfo] = []
    seen: set[str] = set()
    current: str | None = run_id
    while current and current not in seen:
        seen.add(current)
        try:
            info = load_run(current, runs_dir)
        except MnistLabError:
            break
        chain.append(info)
        parent = info.meta.get("parent")
        current = parent if isinstance(parent, str) else None
    return chain[::-1]


# -- reading runs --------------------------------------------------------------
def _is_locked(path: Path) -> bool:
    """Whether a live process holds the run's lock (always False without fcntl).

    A ``.lock`` that is not a regular file (a folder, a link, a FIFO) is
    nobody's lock: False, without blocking.
    """
    if fcntl is None:
        return False
    try:
        fd = _open_regular(path / ".lock")
    except CorruptRun:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


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
    small = runschema.MAX_SMALL_JSON_BYTES  # every file checked against runschema
    meta = runschema.meta(read_json(path / "run.json", small), str(path / "run.json"))
    cfg = runschema.config(read_json(path / "config.json", small), str(path / "config.json"))
    summary_path = path / "summary.json"
    exists = summary_path.is_symlink() or summary_path.exists()  # a link is refused by read_json
    summary = runschema.summary(read_json(summary_path, small), str(summary_path)) if exists else {}
    status = meta["status"]
    if status == "running" and not _is_locked(path):
        status = "interrupted"
    return RunInfo(
        id=path.name, path=path, status=status, config=cfg, name=meta.get("name") or cfg.label(),
        created=meta.get("created", ""), updated=meta.get("updated", ""),
        summary=summary, meta=meta, has_weights=_is_regular(path / "weights.pt"),
    )


def list_runs(runs_dir: str | os.PathLike[str] | None = None) -> list[RunInfo]:
    """Every readable run, newest first; broken folders are skipped with a warning."""
    good, broken = scan_runs(runs_dir)
    for name, reason in broken.items():
        log.warning("Skipping broken run folder %s: %s", _dir(runs_dir) / name, reason)
    return good


def broken_runs(runs_dir: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Folders that look like runs but cannot be read, with the reason."""
    return scan_runs(runs_dir)[1]


def best_run(runs_dir: str | os.PathLike[str] | None = None) -> RunInfo | None:
    """The completed MNIST run with the highest test accuracy, if any."""
    return best_of(list_runs(runs_dir))


def best_of(runs: list[RunInfo]) -> RunInfo | None:
    """The completed MNIST run of ``runs`` with the highest test accuracy (any dataset if none).

    Only runs with weights count: a run that claims 100% without any is never the default.
    """
    done = [r for r in runs if r.status == "completed" and r.has_weights and r.test_accuracy is not None]
    mnist = [r for r in done if r.config.dataset == "mnist"] or done
    return max(mnist, key=lambda r: r.test_accuracy or 0.0, default=None)


def load_history(run_id: str, runs_dir: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """The run's learning curve, checked point by point (``runschema.history``); [] if it has none."""
    path = run_path(run_id, runs_dir) / "history.json"
    if not (path.is_symlink() or path.exists()):
        return []
    return runschema.history(read_json(path, runschema.MAX_HISTORY_BYTES), str(path))


def load_model(
    run_id: str, runs_dir: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu"
) -> tuple[nn.Module, RunConfig]:
    """The run's model in eval mode, rebuilt from config.json with weights.pt.

    Nothing is built until the weights are known to fit: the configuration is
    within ``runschema.MAX_PARAMETERS`` (checked by :func:`load_run`),
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
    expected = runschema.expected_state(info.config)
    state = read_torch(path, "cpu", runschema.weights_bytes_bound(expected))
    try:
        runschema.check_state(state, expected, str(path))
    except CorruptRun as exc:
        raise CorruptRun(f"{exc} It does not match the run's configuration.") from None
    model = build_model(info.config)
    _load_state(model, state, path)
    return model.to(device).eval(), info.config


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
    (``runschema.check_checkpoint``: position, model tensors, optimizer and
    scheduler state, history): a crafted one is a :class:`CorruptRun` naming
    checkpoint.pt, not a ``KeyError`` in the middle of training.
    """
    info = load_run(run_id, runs_dir)
    file = info.path / "checkpoint.pt"
    expected = runschema.expected_state(info.config)
    ckpt = runschema.check_checkpoint(
        read_torch(file, "cpu", runschema.checkpoint_bytes_bound(expected)), info.config, str(file)
    )
    history = ckpt["history"]  # checkpoints written before it travelled with them: history.json
    return TrainState(
        epoch=ckpt["epoch"], step_in_epoch=ckpt["step_in_epoch"], model=ckpt["model"],
        optimizer=ckpt["optimizer"], scheduler=ckpt["scheduler"], elapsed_s=ckpt["elapsed_s"],
        history=history if history is not None else load_history(run_id, info.path.parent),
    )


def _load_state(model: nn.Module, state: Any, path: Path) -> None:
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CorruptRun(f"{path} is not a state_dict of tensors")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CorruptRun(f"{path} does not match the run's configuration: {exc}") from exc


# -- whole-folder scans, staging (listing pages, imports) ------------------------
# The files a run folder may hold besides its locks, in the order a reader needs them.
RUN_FILES = ("config.json", "run.json", "summary.json", "history.json", "weights.pt", "checkpoint.pt")
_STAGING_PREFIX = ".staging-"


def scan_runs(runs_dir: str | os.PathLike[str] | None = None) -> tuple[list[RunInfo], dict[str, str]]:
    """Readable runs (newest first) and broken folders (with the reason) in one pass.

    A page that shows both calls this once instead of ``list_runs`` and
    ``broken_runs``, which each read every folder.
    Any error while reading one folder (whatever its type) is that folder's
    one-line reason: a single bad folder never takes the listing down.
    """
    root = _dir(runs_dir)
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
            broken[name] = _one_line(exc)
        except Exception as exc:  # a bug or an OS error on one folder: report it, list the rest
            log.warning("Unexpected error reading run folder %s", root / name, exc_info=True)
            broken[name] = f"cannot be read ({type(exc).__name__}): {_one_line(exc)}"
    return sorted(good, key=lambda r: (r.created, r.id), reverse=True), broken


def _entry_is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # a link to a folder counts: load_run then reports it
    except OSError:
        return False


def folder_state(runs_dir: str | os.PathLike[str] | None = None) -> tuple[tuple[str, int], ...]:
    """A cheap fingerprint that changes whenever a run is added, removed or written.

    Every write is a temp file renamed inside the run's folder, which updates the
    folder's mtime; so the (name, mtime) of each entry is enough, without
    reading any file. Use it as a cache key for listings.
    """
    root = _dir(runs_dir)
    state = []
    try:
        with os.scandir(root) as entries:
            for e in entries:
                if e.name.startswith(".") or not _entry_is_dir(e):
                    continue
                try:
                    state.append((e.name, e.stat().st_mtime_ns))
                except OSError:  # removed meanwhile, or a dangling link
                    state.append((e.name, 0))
    except OSError:
        return ()
    return tuple(sorted(state))


# Staging: every run (new, saved version, import) is filled in a hidden folder
# ``.staging-<pid>-<random>`` whose ``.lock`` its process holds, then published
# with one ``os.rename``, so a run folder is whole or absent. A process killed
# meanwhile leaves the staging folder; :func:`clean_stale_staging` removes it.
_DELETED_PREFIX = ".deleted-"
STALE_AFTER_S = 600.0  # an unlocked staging folder of a live (or unknown) process is kept this long
TEMP_STALE_AFTER_S = 60.0  # a temp file in a run nobody trains (run.json edits take milliseconds)
_staging_locks: dict[Path, IO[bytes]] = {}  # folders from new_staging_dir -> the lock this process holds
_staging_guard = threading.Lock()


def _storage_error(action: str, exc: OSError) -> StorageError:
    cause = exc.__cause__ if isinstance(exc, MnistLabError) and isinstance(exc.__cause__, OSError) else exc
    reason = cause.strerror or str(cause) or type(cause).__name__
    return StorageError(f"{action}: {reason}. Nothing was half-saved; {advice(cause)}.", cause.errno)


def _fill(staging: Path, files: dict[str, Any], what: str) -> None:
    """Write ``files`` (name -> JSON or, for ``.pt``, tensors) into a staging folder.

    A failure names the file and the run, not the hidden staging folder.
    """
    for name, obj in files.items():
        try:
            (write_torch if name.endswith(".pt") else write_json)(staging / name, obj)
        except OSError as exc:
            raise _storage_error(f"Could not save {name} of {what}", exc) from exc


def _take_lock(folder: Path) -> IO[bytes] | None:
    """Hold ``folder/.lock`` (flock, exclusive); None if another process holds it (or without fcntl)."""
    if fcntl is None:
        return None
    lock = open(folder / ".lock", "wb")  # held until closed
    for attempt in range(3):  # a listing or a cleanup may hold it for a moment to probe it
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock
        except OSError:
            time.sleep(0.05 * (attempt + 1))
    lock.close()
    return None


def _new_staging(root: Path) -> tuple[Path, IO[bytes] | None]:
    """A new staging folder in ``root`` and the lock that marks it as being filled."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{os.getpid()}-", dir=root))
    except OSError as exc:
        raise _storage_error(f"Could not create a run folder in {root}", exc) from exc
    try:
        lock = _take_lock(path)
    except BaseException as exc:
        shutil.rmtree(path, ignore_errors=True)
        if isinstance(exc, OSError):
            raise _storage_error(f"Could not create a run folder in {root}", exc) from exc
        raise
    return path, lock


def _drop_staging(staging: Path, lock: IO[bytes] | None) -> None:
    """Remove a staging folder (if not published) and release its lock."""
    shutil.rmtree(staging, ignore_errors=True)
    if lock is not None:
        lock.close()


def _publish(staging: Path, cfg: RunConfig, root: Path) -> tuple[str, dict[str, Any]]:
    """Rename a filled staging folder to a fresh run id; returns the id and the final run.json."""
    try:
        for _ in range(8):
            run_id = new_run_id(cfg)
            target = run_path(run_id, root)
            if target.exists():
                continue
            meta = _modify_meta(staging, {"id": run_id})
            (staging / ".meta.lock").unlink(missing_ok=True)
            try:
                os.rename(staging, target)
            except OSError:  # created meanwhile, and not empty: try another id
                if not staging.is_dir():
                    raise
                continue
            return run_id, meta
    except MnistLabError:
        raise
    except OSError as exc:
        raise _storage_error(f"Could not save a run in {root}", exc) from exc
    raise MnistLabError(f"Could not find a free run id in {root}")


def new_staging_dir(runs_dir: str | os.PathLike[str] | None = None) -> Path:
    """An empty hidden folder inside the checkpoints folder, held by this process: listings skip it.

    Fill it with a run's files, then :func:`adopt_staged` it, or
    :func:`discard_staging` it. Being on the same file system, adopting it is
    a rename. Until then its lock tells :func:`clean_stale_staging` that a live
    process is filling it.
    """
    path, lock = _new_staging(_dir(runs_dir))
    if lock is not None:
        with _staging_guard:
            _staging_locks[path] = lock
    return path


def discard_staging(staging: Path) -> None:
    """Remove a folder from :func:`new_staging_dir` that will not be adopted."""
    with _staging_guard:
        lock = _staging_locks.pop(staging, None)
    _drop_staging(staging, lock)


def adopt_staged(staging: Path, cfg: RunConfig, runs_dir: str | os.PathLike[str] | None = None) -> str:
    """Give a filled staging folder a fresh run id and rename it into place; returns the id.

    ``run.json`` in the folder gets the new id. An existing run is never
    replaced: the id carries 24 random bits, is checked to be free, and
    ``os.rename`` refuses a non-empty target. ``staging`` must come from
    :func:`new_staging_dir` on the same ``runs_dir``.
    """
    root = _dir(runs_dir)
    if staging.parent.resolve() != root.resolve() or not staging.name.startswith(_STAGING_PREFIX):
        raise MnistLabError(f"{staging} is not a staging folder of {root}")
    run_id, _ = _publish(staging, cfg, root)
    with _staging_guard:
        lock = _staging_locks.pop(staging, None)
    if lock is not None:
        lock.close()
    return run_id


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would send CTRL_C_EVENT on Windows: rely on the age
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


def _stale_staging(path: Path, now: float, older_than_s: float) -> bool:
    """Nobody fills it: unlocked, and its process is dead (or it is older than ``older_than_s``).

    The age test covers the moment between creating a folder and locking it,
    and folders whose name carries no process id (older versions).
    """
    if _is_locked(path):
        return False
    pid_text = path.name[len(_STAGING_PREFIX):].partition("-")[0]
    if pid_text.isdigit() and not _pid_alive(int(pid_text)):
        return True
    try:
        age = now - path.lstat().st_mtime
    except FileNotFoundError:
        return False
    return age > older_than_s


def _remove_stale_temp_files(run: Path, before: float) -> list[str]:
    """Temp files that a killed writer left in a run nobody trains (``fsutil.atomic_write`` names)."""
    if _is_locked(run):
        return []
    removed = []
    with os.scandir(run) as entries:
        for e in entries:
            if e.name.startswith(".") and e.name.endswith(".tmp") and e.is_file(follow_symlinks=False):
                if e.stat(follow_symlinks=False).st_mtime < before:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(e.path)
                    removed.append(f"{run.name}/{e.name}")
    return removed


def clean_stale_staging(
    runs_dir: str | os.PathLike[str] | None = None,
    older_than_s: float = STALE_AFTER_S,
    temp_older_than_s: float = TEMP_STALE_AFTER_S,
) -> list[str]:
    """Remove what killed processes left in the checkpoints folder; returns the names removed.

    That is staging folders no live process is filling (a run being created,
    a version being saved, an import), half-deleted runs (``.deleted-*``),
    and the temporary files of atomic writes (``.<file>.<random>.tmp``) in run
    folders that nobody trains, older than ``temp_older_than_s``. A run's own
    files are never touched. Safe to call while other processes work: a
    staging folder or a run whose lock is held is left alone.
    """
    root, now = _dir(runs_dir), time.time()
    removed: list[str] = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        path = Path(entry.path)
        try:  # one odd entry (a link, a folder as .lock, no permission) never stops the rest
            if not entry.is_dir(follow_symlinks=False):
                continue
            stale = entry.name.startswith(_DELETED_PREFIX) or (
                entry.name.startswith(_STAGING_PREFIX) and _stale_staging(path, now, older_than_s)
            )
            if not stale and not entry.name.startswith("."):
                removed += _remove_stale_temp_files(path, now - temp_older_than_s)
        except (OSError, MnistLabError):
            continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                removed.append(entry.name)
    if removed:
        log.info("Removed %d leftover folder(s) of interrupted saves in %s", len(removed), root)
    return removed


# -- sweeps: one JSON file each, in a hidden folder that run listings skip -------------
_SWEEPS = ".sweeps"


def _sweep_file(sweep_id: str, runs_dir: str | os.PathLike[str] | None) -> Path:
    if not isinstance(sweep_id, str) or not _ID_RE.match(sweep_id) or ".." in sweep_id:
        raise RunNotFound(f"{sweep_id!r} is not a valid sweep id")
    return _dir(runs_dir) / _SWEEPS / f"{sweep_id}.json"


def save_sweep_data(
    sweep_id: str, data: dict[str, Any], runs_dir: str | os.PathLike[str] | None = None
) -> None:
    """Write a sweep's definition (atomically) to ``checkpoints/.sweeps/<id>.json``."""
    path = _sweep_file(sweep_id, runs_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, data)


def load_sweep_data(sweep_id: str, runs_dir: str | os.PathLike[str] | None = None) -> Any:
    path = _sweep_file(sweep_id, runs_dir)
    if not path.is_file():
        raise RunNotFound(f"No sweep {sweep_id!r} in {path.parent}")
    return read_json(path)


def list_sweep_data(runs_dir: str | os.PathLike[str] | None = None) -> list[Any]:
    """The content of every readable sweep file; unreadable ones are skipped with a warning."""
    folder = _dir(runs_dir) / _SWEEPS
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            out.append(read_json(path))
        except MnistLabError as exc:
            log.warning("Skipping unreadable sweep file %s: %s", path, exc)
    return out


def sweeps_folder_mtime(runs_dir: str | os.PathLike[str] | None = None) -> int:
    """The sweeps folder's mtime in ns (0 when absent): a new or rewritten sweep changes it."""
    try:
        return (_dir(runs_dir) / _SWEEPS).stat().st_mtime_ns
    except FileNotFoundError:
        return 0
