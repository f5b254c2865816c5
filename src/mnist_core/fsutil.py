"""Atomic file writes, shared by everything the core keeps on disk."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import MnistLabError

# What a user can do about the usual reasons a write fails.
_ADVICE = {
    errno.ENOSPC: "free some disk space and try again",
    errno.EDQUOT: "free some disk space and try again",
    errno.EACCES: "make the folder writable and try again",
    errno.EPERM: "make the folder writable and try again",
    errno.EROFS: "choose a folder on a writable disk",
}


def advice(cause: OSError) -> str:
    """What a user can do about a failed write, e.g. "free some disk space and try again"."""
    return _ADVICE.get(cause.errno or 0, "check the disk and the folder, then try again")


class WriteError(MnistLabError, OSError):
    """A file could not be saved (full disk, permissions...); the previous version is intact.

    Still an :class:`OSError` (with ``errno``) for callers that handle those,
    and a :class:`MnistLabError` whose message says what to do, so pages and
    the CLI show it instead of a traceback.
    """

    def __init__(self, path: Path, cause: OSError) -> None:
        reason = cause.strerror or str(cause) or type(cause).__name__
        self.message = (
            f"Could not save {path.name} in {path.parent}: {reason}. "
            f"Any previous version of the file is kept; {advice(cause)}."
        )
        super().__init__(cause.errno, self.message)

    def __str__(self) -> str:
        return self.message


@contextlib.contextmanager
def atomic_write(path: Path) -> Iterator[IO[bytes]]:
    """Open a temp file beside ``path``; on success fsync and rename it over ``path``.

    A crash or a failed write (full disk, permission) leaves the previous
    version of ``path`` intact and no temporary file behind. An ``OSError``
    while creating, writing, syncing or renaming becomes a :class:`WriteError`
    naming the file and what to do; other errors (a bug in the writer) pass
    through unchanged.
    """
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise WriteError(path, exc) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(path, exc) from exc
        raise
