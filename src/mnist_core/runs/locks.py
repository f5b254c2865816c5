"""Who may write a run: the ``.lock`` of the process training it, and ``run.json`` edits.

A run's ``.lock`` is held (``flock``, exclusive) by the process that trains
it, and a staging folder's by the process filling it; a run marked "running"
whose lock nobody holds was interrupted. Every read-modify-write of
``run.json`` holds ``.meta.lock``, so a rename made from one tab and a status
written by the training thread never undo each other. Without ``fcntl``
(Windows) nothing is locked and a run's liveness is not tracked.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import CorruptRun
from .fileio import open_regular, read_json, write_json
from .paths import now_iso

try:  # POSIX advisory locks; elsewhere a run's liveness is not tracked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def take_lock(folder: Path) -> IO[bytes] | None:
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


def is_locked(path: Path) -> bool:
    """Whether a live process holds the run's lock (always False without fcntl).

    A ``.lock`` that is not a regular file (a folder, a link, a FIFO) is
    nobody's lock: False, without blocking.
    """
    if fcntl is None:
        return False
    try:
        fd = open_regular(path / ".lock")
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


@contextlib.contextmanager
def meta_lock(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of ``run.json`` between threads and processes."""
    if fcntl is None:
        yield
        return
    with open(path / ".meta.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # closing the file drops the lock


def modify_meta(path: Path, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply ``changes`` to ``path/run.json`` (and stamp ``updated``) under its lock; the new content."""
    with meta_lock(path):
        meta = read_json(path / "run.json")
        if not isinstance(meta, dict):
            raise CorruptRun(f"{path / 'run.json'} is not a JSON object")
        meta.update(changes, updated=now_iso())
        write_json(path / "run.json", meta)
        return meta
