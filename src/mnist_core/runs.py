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
the old one, so a crash leaves the previous version intact. ``.pt`` files are
read with ``torch.load(weights_only=True)``: no pickled code ever runs.
A run marked "running" whose lock nobody holds was interrupted (its process
died); it is reported as "interrupted".
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

from .config import RunConfig
from .errors import ConfigError, CorruptRun, MnistLabError, RunNotFound
from .fsutil import atomic_write
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

    @property
    def test_accuracy(self) -> float | None:
        value = self.summary.get("test_accuracy")
        return float(value) if isinstance(value, (int, float)) else None


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


def write_torch(path: Path, obj: Any) -> None:
    with atomic_write(path) as f:
        torch.save(obj, f)


def read_json(path: Path) -> Any:
    """Parse a JSON file we wrote; anything else is a :class:`CorruptRun`."""
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise CorruptRun(f"{path} is larger than {MAX_JSON_BYTES} bytes")
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CorruptRun(f"{path.name} is missing in {path.parent}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CorruptRun(f"{path} is not valid JSON: {exc}") from exc


def read_torch(path: Path, device: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)``: tensors and plain containers only."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError as exc:
        raise CorruptRun(f"{path.name} is missing in {path.parent}") from exc
    except Exception as exc:  # unpickling refusals, truncation, zip errors...
        raise CorruptRun(f"{path} cannot be loaded safely: {exc}") from exc


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
        """Make a new run folder with its config, status "running"."""
        root = _dir(runs_dir)
        root.mkdir(parents=True, exist_ok=True)
        while True:  # ids carry 24 random bits; retry on the rare collision
            run_id = new_run_id(cfg)
            path = run_path(run_id, root)
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
        now = _now()
        meta = {
            "id": run_id, "name": name or cfg.label(), "status": "running", "created": now,
            "updated": now, "parent": parent, "tags": list(tags), "notes": "", "error": None,
        }
        writer = cls(path, meta)
        writer._acquire()
        try:
            write_json(path / "config.json", cfg.to_dict())
            write_json(path / "run.json", meta)
        except BaseException:
            writer.discard()  # a folder without its config would only be listed as broken
            raise
        return writer

    @classmethod
    def reopen(cls, run_id: str, runs_dir: str | os.PathLike[str] | None = None) -> RunWriter:
        """Take over a stopped, interrupted or failed run to resume it."""
        info = load_run(run_id, runs_dir)
        if info.status not in RESUMABLE:
            raise MnistLabError(f"Run {run_id} is {info.status}; only {', '.join(RESUMABLE)} runs resume.")
        writer = cls(info.path, dict(info.meta))
        writer._acquire()
        writer.set_status("running", error=None)
        return writer

    def _acquire(self) -> None:
        if fcntl is None:
            return
        lock = open(self.path / ".lock", "wb")  # held until release()
        for attempt in range(3):  # a listing may hold the lock for a moment to probe it
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._lock = lock
                return
            except OSError:
                time.sleep(0.05 * (attempt + 1))
        lock.close()
        raise MnistLabError(f"Run {self.id} is being trained by another process.")

    def discard(self) -> None:
        """Remove the run's folder (a run whose first files could not be written)."""
        self.release()
        shutil.rmtree(self.path, ignore_errors=True)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing drops the flock
            self._lock = None

    def set_status(self, status: str, error: str | None = None) -> None:
        """Change status and error only: a rename or note made meanwhile is kept."""
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
        write_torch(self.path / "checkpoint.pt", checkpoint)
        write_torch(self.path / "weights.pt", state.model)
        write_json(self.path / "history.json", state.history)

    def finish(self, status: str, summary: dict[str, Any] | None = None, error: str | None = None) -> None:
        """Write the summary (if any) and the final status, then drop the lock."""
        try:
            if summary is not None:
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
    if notes is not None:
        changes["notes"] = notes
    _modify_meta(path, changes)
    return load_run(run_id, runs_dir)


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
    trash = path.with_name(f".deleted-{run_id}-{secrets.token_hex(3)}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


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
    """
    parent = load_run(parent_id, runs_dir)
    model = build_model(parent.config)
    _load_state(model, state_dict, Path("the new weights"))
    label = name or f"{parent.name} ({kind})"
    writer = RunWriter.create(parent.config, parent.path.parent, name=label, parent=parent_id,
                              tags=tuple(parent.meta.get("tags") or ()))
    try:
        write_torch(writer.path / "weights.pt", {k: v.detach().cpu() for k, v in state_dict.items()})
        write_json(writer.path / "history.json", load_history(parent_id, runs_dir))
        writer.meta = _modify_meta(writer.path, {"kind": kind, "details": details or {}})
    except BaseException:
        writer.discard()  # a version is whole or absent: the parent stays the one to use
        raise
    writer.finish("completed", summary)
    return load_run(writer.id, writer.path.parent)


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
    """Whether a live process holds the run's lock (always False without fcntl)."""
    if fcntl is None:
        return False
    try:
        with open(path / ".lock", "rb") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
            return False
    except FileNotFoundError:
        return False


def load_run(run_id: str, runs_dir: str | os.PathLike[str] | None = None) -> RunInfo:
    """Read one run's config, status and summary; raises RunNotFound / CorruptRun."""
    path = run_path(run_id, runs_dir)
    if not path.is_dir():
        raise RunNotFound(f"No run {run_id!r} in {path.parent}")
    if path.is_symlink():  # it would read, and on resume write, files outside the checkpoints folder
        raise CorruptRun(f"{path} is a symbolic link; a run must be a real folder inside {path.parent}")
    meta = read_json(path / "run.json")
    if not isinstance(meta, dict):
        raise CorruptRun(f"{path / 'run.json'} is not a JSON object")
    try:
        cfg = RunConfig.from_dict(read_json(path / "config.json"))
    except ConfigError as exc:
        raise CorruptRun(f"{path / 'config.json'} is not a valid configuration: {exc}") from exc
    summary_path = path / "summary.json"
    summary = read_json(summary_path) if summary_path.exists() else {}
    if not isinstance(summary, dict):
        raise CorruptRun(f"{summary_path} is not a JSON object")
    status = meta.get("status")
    if status not in STATUSES:
        raise CorruptRun(f"{path / 'run.json'} has an unknown status {status!r}")
    if status == "running" and not _is_locked(path):
        status = "interrupted"
    return RunInfo(
        id=path.name, path=path, status=status, config=cfg, name=str(meta.get("name") or cfg.label()),
        created=str(meta.get("created", "")), updated=str(meta.get("updated", "")),
        summary=summary, meta=meta,
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
    """The completed MNIST run of ``runs`` with the highest test accuracy (any dataset if none)."""
    done = [r for r in runs if r.status == "completed" and r.test_accuracy is not None]
    mnist = [r for r in done if r.config.dataset == "mnist"] or done
    return max(mnist, key=lambda r: r.test_accuracy or 0.0, default=None)


def load_history(run_id: str, runs_dir: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    path = run_path(run_id, runs_dir) / "history.json"
    if not path.exists():
        return []
    history = read_json(path)
    if not isinstance(history, list):
        raise CorruptRun(f"{path} is not a JSON list")
    return history


def load_model(
    run_id: str, runs_dir: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu"
) -> tuple[nn.Module, RunConfig]:
    """The run's model in eval mode, rebuilt from config.json with weights.pt."""
    info = load_run(run_id, runs_dir)
    model = build_model(info.config)
    state = read_torch(info.path / "weights.pt", device)
    _load_state(model, state, info.path / "weights.pt")
    return model.to(device).eval(), info.config


def has_checkpoint(run_id: str, runs_dir: str | os.PathLike[str] | None = None) -> bool:
    """Whether the run saved a resumable state (after an epoch, or when stopped)."""
    return (run_path(run_id, runs_dir) / "checkpoint.pt").is_file()


def load_train_state(run_id: str, runs_dir: str | os.PathLike[str] | None = None) -> TrainState:
    """What :func:`mnist_core.train.train` needs to resume the run."""
    path = run_path(run_id, runs_dir)
    ckpt = read_torch(path / "checkpoint.pt")
    keys = ("epoch", "step_in_epoch", "model", "optimizer", "scheduler", "elapsed_s")
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in keys):
        raise CorruptRun(f"{path / 'checkpoint.pt'} is not a training checkpoint")
    history = ckpt.get("history")  # checkpoints written before it travelled with them: history.json
    return TrainState(
        epoch=int(ckpt["epoch"]), step_in_epoch=int(ckpt["step_in_epoch"]), model=ckpt["model"],
        optimizer=ckpt["optimizer"], scheduler=ckpt["scheduler"], elapsed_s=float(ckpt["elapsed_s"]),
        history=history if isinstance(history, list) else load_history(run_id, path.parent),
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
    """
    root = _dir(runs_dir)
    good: list[RunInfo] = []
    broken: dict[str, str] = {}
    if root.is_dir():
        for path in root.iterdir():
            if not path.is_dir() or path.name.startswith("."):
                continue
            try:
                good.append(load_run(path.name, root))
            except MnistLabError as exc:
                broken[path.name] = str(exc)
    return sorted(good, key=lambda r: (r.created, r.id), reverse=True), broken


def folder_state(runs_dir: str | os.PathLike[str] | None = None) -> tuple[tuple[str, int], ...]:
    """A cheap fingerprint that changes whenever a run is added, removed or written.

    Every write is a temp file renamed inside the run's folder, which updates the
    folder's mtime; so the (name, mtime) of each entry is enough, without
    reading any file. Use it as a cache key for listings.
    """
    root = _dir(runs_dir)
    try:
        with os.scandir(root) as entries:
            state = [
                (e.name, e.stat().st_mtime_ns) for e in entries
                if not e.name.startswith(".") and e.is_dir()
            ]
    except FileNotFoundError:
        return ()
    return tuple(sorted(state))


def new_staging_dir(runs_dir: str | os.PathLike[str] | None = None) -> Path:
    """An empty hidden folder inside the checkpoints folder: listings skip it.

    Fill it with a run's files, then :func:`adopt_staged` it, or remove it.
    Being on the same file system, adopting it is a rename.
    """
    root = _dir(runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=root))


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
    for _ in range(8):
        run_id = new_run_id(cfg)
        target = run_path(run_id, root)
        if target.exists():
            continue
        _modify_meta(staging, {"id": run_id})
        (staging / ".meta.lock").unlink(missing_ok=True)
        try:
            os.rename(staging, target)
        except OSError:  # created meanwhile, and not empty: try another id
            continue
        return run_id
    raise MnistLabError(f"Could not find a free run id in {root}")


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
