"""Fault injection for the reliability tests (not a test module): a disk that fills up.

``DiskFull`` replaces ``os.replace`` (the last step of every atomic write in
``mnist_core.fsutil``): writes succeed until it is armed, then the files it
is told about fail with the error it is given, as a full disk or a
read-only folder would. It arms itself once a run's first checkpoint is
completely saved (``history.json`` is the last file a checkpoint writes) and
keeps what that checkpoint held, to compare with what is on disk afterwards.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

_REAL_REPLACE = os.replace


def no_space() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


def no_permission() -> OSError:
    return PermissionError(errno.EACCES, "Permission denied")


class DiskFull:
    """A stand-in for ``os.replace`` that fails once armed.

    ``names``: the file names that fail (None: every file). ``arm_after``: how
    many complete checkpoints (``history.json`` writes of a run) succeed first.
    """

    def __init__(
        self,
        names: set[str] | None = None,
        arm_after: int | None = 1,
        error: Callable[[], OSError] = no_space,
    ) -> None:
        self.names, self.arm_after, self.error = names, arm_after, error
        self.armed = arm_after == 0
        self.failures = 0
        self.kept: dict[str, Any] = {}  # file name -> what torch.load gave when armed
        self._histories = 0
        self._lock = threading.Lock()

    def disarm(self) -> None:
        """The disk has room again."""
        with self._lock:
            self.armed = False
            self.arm_after = None

    def __call__(self, src: Any, dst: Any, **kwargs: Any) -> None:
        path = Path(os.fsdecode(dst))
        with self._lock:
            if self.armed and (self.names is None or path.name in self.names):
                self.failures += 1
                raise self.error()
        _REAL_REPLACE(src, dst, **kwargs)
        if path.name == "history.json" and (path.parent / "checkpoint.pt").exists():
            with self._lock:
                self._histories += 1
                if self.arm_after is not None and self._histories >= self.arm_after and not self.armed:
                    self.kept = {
                        name: torch.load(path.parent / name, weights_only=True)
                        for name in ("checkpoint.pt", "weights.pt")
                    }
                    self.armed = True


def same_tensors(a: Any, b: Any) -> bool:
    """Deep equality of the plain containers of tensors that checkpoints hold."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_tensors(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(same_tensors, a, b))
    return a == b


# -- a disk that fills up in the middle of a file -------------------------------------------


class _FillingFile:
    """A writable file whose ``write`` raises ENOSPC once the disk's byte budget is spent."""

    def __init__(self, f: Any, disk: FullDiskWrites) -> None:
        self._f, self._disk = f, disk

    def write(self, data: Any) -> int:
        self._disk.spend(len(memoryview(data).cast("B")))
        return self._f.write(data)

    def __enter__(self) -> _FillingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


class FullDiskWrites:
    """Writes fail with ENOSPC after ``budget`` bytes (None: at once) to the files named ``names``.

    Unlike :class:`DiskFull` (which fails the final rename), the failure comes
    in the middle of writing a file, as on a real full disk: inside
    ``torch.save`` for a ``.pt``, inside the unpacking of an import. It wraps
    the files opened by ``mnist_core.fsutil.atomic_write`` (``os.fdopen``) and
    by the import (``open`` in ``mnist_core.archive``).
    """

    def __init__(self, budget: int | None = 0, names: set[str] | None = None) -> None:
        self.budget, self.names = budget, names
        self.failures = 0
        self._written = 0
        self._lock = threading.Lock()

    def spend(self, n: int) -> None:
        with self._lock:
            if self.budget is None or self._written + n > self.budget:
                self.failures += 1
                raise no_space()
            self._written += n

    def _concerns(self, name: str) -> bool:
        # atomic_write's temp files are named ".<name>.<random>.tmp"
        return self.names is None or any(name == n or name.startswith(f".{n}.") for n in self.names)

    def install(self, monkeypatch: Any) -> FullDiskWrites:
        import builtins

        from mnist_core import archive

        real_fdopen = os.fdopen

        def fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            f = real_fdopen(fd, mode, *args, **kwargs)
            name = Path(os.readlink(f"/proc/self/fd/{fd}")).name if "w" in mode else ""
            return _FillingFile(f, self) if "w" in mode and self._concerns(name) else f

        def archive_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            f = builtins.open(path, mode, *args, **kwargs)
            writing = any(c in mode for c in "wxa")
            return _FillingFile(f, self) if writing and self._concerns(Path(path).name) else f

        monkeypatch.setattr(os, "fdopen", fdopen)
        monkeypatch.setattr(archive, "open", archive_open, raising=False)
        return self
