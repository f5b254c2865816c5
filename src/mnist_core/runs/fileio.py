"""Reading and writing one file of a run: atomic writes, bounded reads of regular files only.

Every write goes to a temporary file in the same folder and is renamed over
the old one (:func:`mnist_core.fsutil.atomic_write`), so a crash leaves the
previous version intact. Every read opens a regular file (never a link, a
FIFO or a device), reads at most a bound, and turns anything unexpected into
a one-line :class:`~mnist_core.errors.CorruptRun`. ``.pt`` files are read with
``torch.load(weights_only=True)``: no pickled code ever runs.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import IO, Any

import torch

from ..errors import CorruptRun, MnistLabError, StorageError
from ..fsutil import advice, atomic_write

MAX_JSON_BYTES = 64 * 1024 * 1024


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


def open_regular(path: Path) -> int:
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
    fd = open_regular(path)
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
        reason = one_line(exc)
        if "integer string conversion" in reason:  # Python refuses to parse an integer that long
            reason = "it holds an integer of more than 4300 digits"
        raise CorruptRun(f"{path} is not valid JSON: {reason}") from exc


def read_torch(path: Path, device: str | torch.device = "cpu", max_bytes: int | None = None) -> Any:
    """``torch.load(weights_only=True)`` of a regular file: tensors and plain containers only."""
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        if max_bytes is not None and size > max_bytes:
            raise CorruptRun(f"{path} is larger than {max_bytes:,} bytes, more than the run's model needs")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return torch.load(f, map_location=device, weights_only=True)
    except MnistLabError:
        raise
    except Exception as exc:  # unpickling refusals, truncation, zip errors...
        raise CorruptRun(f"{path} cannot be loaded safely: {one_line(exc)}") from exc
    finally:
        os.close(fd)


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, at most 300 characters (a listing shows it)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def storage_error(action: str, exc: OSError) -> StorageError:
    """``exc`` (or the ``OSError`` behind a ``WriteError``) as "``action``: reason. ... what to do"."""
    cause = exc.__cause__ if isinstance(exc, MnistLabError) and isinstance(exc.__cause__, OSError) else exc
    reason = cause.strerror or str(cause) or type(cause).__name__
    return StorageError(f"{action}: {reason}. Nothing was half-saved; {advice(cause)}.", cause.errno)
