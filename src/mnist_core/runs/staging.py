"""Making a run appear whole: staging folders, publishing them under a new id, and cleaning up.

Every run (new, saved version, import) is filled in a hidden folder
``.staging-<pid>-<random>`` whose ``.lock`` its process holds, then published
with one ``os.rename``, so a run folder is whole or absent. A process killed
meanwhile leaves the staging folder; :func:`clean_stale_staging` (the app
calls it once per server) removes it, with half-deleted runs and the temp
files of interrupted atomic writes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from ..config import RunConfig
from ..errors import MnistLabError
from .fileio import storage_error, write_json, write_torch
from .locks import is_locked, modify_meta, take_lock
from .paths import DELETED_PREFIX, STAGING_PREFIX, new_run_id, run_path, runs_root

log = logging.getLogger(__name__)

STALE_AFTER_S = 600.0  # an unlocked staging folder of a live (or unknown) process is kept this long
TEMP_STALE_AFTER_S = 60.0  # a temp file in a run nobody trains (run.json edits take milliseconds)
_staging_locks: dict[Path, IO[bytes]] = {}  # folders from new_staging_dir -> the lock this process holds
_staging_guard = threading.Lock()


# -- filling and publishing (RunWriter.create, save_version) -------------------------------------
def new_staging(root: Path) -> tuple[Path, IO[bytes] | None]:
    """A new staging folder in ``root`` and the lock that marks it as being filled."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=root))
    except OSError as exc:
        raise storage_error(f"Could not create a run folder in {root}", exc) from exc
    try:
        lock = take_lock(path)
    except BaseException as exc:
        shutil.rmtree(path, ignore_errors=True)
        if isinstance(exc, OSError):
            raise storage_error(f"Could not create a run folder in {root}", exc) from exc
        raise
    return path, lock


def fill(staging: Path, files: dict[str, Any], what: str) -> None:
    """Write ``files`` (name -> JSON or, for ``.pt``, tensors) into a staging folder.

    A failure names the file and the run, not the hidden staging folder.
    """
    for name, obj in files.items():
        try:
            (write_torch if name.endswith(".pt") else write_json)(staging / name, obj)
        except OSError as exc:
            raise storage_error(f"Could not save {name} of {what}", exc) from exc


def drop_staging(staging: Path, lock: IO[bytes] | None) -> None:
    """Remove a staging folder (if not published) and release its lock."""
    shutil.rmtree(staging, ignore_errors=True)
    if lock is not None:
        lock.close()


def publish(staging: Path, cfg: RunConfig, root: Path) -> tuple[str, dict[str, Any]]:
    """Rename a filled staging folder to a fresh run id; returns the id and the final run.json."""
    try:
        for _ in range(8):
            run_id = new_run_id(cfg)
            target = run_path(run_id, root)
            if target.exists():
                continue
            meta = modify_meta(staging, {"id": run_id})
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
        raise storage_error(f"Could not save a run in {root}", exc) from exc
    raise MnistLabError(f"Could not find a free run id in {root}")


# -- a folder filled by someone else (archive.import_run) ----------------------------------------
def new_staging_dir(runs_dir: str | os.PathLike[str] | None = None) -> Path:
    """An empty hidden folder inside the checkpoints folder, held by this process: listings skip it.

    Fill it with a run's files, then :func:`adopt_staged` it, or
    :func:`discard_staging` it. Being on the same file system, adopting it is
    a rename. Until then its lock tells :func:`clean_stale_staging` that a live
    process is filling it.
    """
    path, lock = new_staging(runs_root(runs_dir))
    if lock is not None:
        with _staging_guard:
            _staging_locks[path] = lock
    return path


def discard_staging(staging: Path) -> None:
    """Remove a folder from :func:`new_staging_dir` that will not be adopted."""
    with _staging_guard:
        lock = _staging_locks.pop(staging, None)
    drop_staging(staging, lock)


def adopt_staged(staging: Path, cfg: RunConfig, runs_dir: str | os.PathLike[str] | None = None) -> str:
    """Give a filled staging folder a fresh run id and rename it into place; returns the id.

    ``run.json`` in the folder gets the new id. An existing run is never
    replaced: the id carries 24 random bits, is checked to be free, and
    ``os.rename`` refuses a non-empty target. ``staging`` must come from
    :func:`new_staging_dir` on the same ``runs_dir``.
    """
    root = runs_root(runs_dir)
    if staging.parent.resolve() != root.resolve() or not staging.name.startswith(STAGING_PREFIX):
        raise MnistLabError(f"{staging} is not a staging folder of {root}")
    run_id, _ = publish(staging, cfg, root)
    with _staging_guard:
        lock = _staging_locks.pop(staging, None)
    if lock is not None:
        lock.close()
    return run_id


# -- what killed processes left behind -----------------------------------------------------------
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
    if is_locked(path):
        return False
    pid_text = path.name[len(STAGING_PREFIX):].partition("-")[0]
    if pid_text.isdigit() and not _pid_alive(int(pid_text)):
        return True
    try:
        age = now - path.lstat().st_mtime
    except FileNotFoundError:
        return False
    return age > older_than_s


def _remove_stale_temp_files(run: Path, before: float) -> list[str]:
    """Temp files that a killed writer left in a run nobody trains (``fsutil.atomic_write`` names)."""
    if is_locked(run):
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
    root, now = runs_root(runs_dir), time.time()
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
            stale = entry.name.startswith(DELETED_PREFIX) or (
                entry.name.startswith(STAGING_PREFIX) and _stale_staging(path, now, older_than_s)
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
