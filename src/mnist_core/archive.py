"""A run as a zip file: export one from the checkpoints folder, import one safely.

An exported zip holds the run's files flat (``config.json``, ``run.json``,
``summary.json``, ``history.json``, ``weights.pt``, ``checkpoint.pt``).

An imported zip is untrusted. :func:`import_run` refuses it, and writes
nothing, unless:

- every entry is a plain file with one of those exact names (no folders, no
  ``../``, no absolute paths, no links, no duplicates, no encryption);
- it stays within :class:`ImportLimits` (entries are counted as they are
  decompressed, so a zip bomb stops at the cap whatever its headers say);
- every file passes the schema every reader of a run applies
  (:mod:`mnist_core.runs.schema`): ``config.json`` a valid
  :class:`~mnist_core.config.RunConfig` of at most ``MAX_PARAMETERS``
  parameters; ``run.json``, ``summary.json`` and ``history.json`` of the
  right types, ranges and sizes;
- it has a ``weights.pt``; it (and ``checkpoint.pt``) is no larger than the
  configuration's model needs, loads with ``torch.load(weights_only=True)``
  (no pickled code runs) and has exactly the tensor names, shapes and types
  of that model; a checkpoint's optimizer and scheduler state is shaped as
  this app's would be.

Files are extracted into a hidden staging folder inside the checkpoints folder
and renamed to a fresh run id only once everything checks out: an import never
replaces a run, and a refused one leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from . import memory, runs
from .config import RunConfig
from .errors import CorruptRun, MnistLabError, StorageError
from .fsutil import advice
from .runs import RUN_FILES, RunInfo, schema

PathLike = str | os.PathLike[str]
REQUIRED = ("config.json", "run.json")
JSON_FILES = ("config.json", "run.json", "summary.json", "history.json")
TORCH_FILES = ("weights.pt", "checkpoint.pt")
_CHUNK = 1 << 20


class ArchiveError(MnistLabError):
    """A zip is not a run this app can import; the message says what is wrong."""


@dataclass(frozen=True)
class ImportLimits:
    """Caps on what an import may read and write (bytes)."""

    archive_bytes: int = 1 << 30  # the zip itself
    total_bytes: int = 2 << 30  # all entries, uncompressed
    json_bytes: int = runs.MAX_JSON_BYTES  # each JSON file
    torch_bytes: int = 1 << 30  # each .pt file


# -- export --------------------------------------------------------------------------


def export_run(run_id: str, runs_dir: PathLike | None = None, include_checkpoint: bool = True) -> bytes:
    """The run's files as a zip, in memory. A run being trained is refused (its files move)."""
    info = runs.load_run(run_id, runs_dir)
    if info.status == "running":
        raise MnistLabError(f"Run {run_id} is being trained; export it once it has stopped.")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in RUN_FILES:
            path = info.path / name
            if not path.is_file() or (name == "checkpoint.pt" and not include_checkpoint):
                continue
            method = zipfile.ZIP_DEFLATED if name.endswith(".json") else zipfile.ZIP_STORED
            zf.write(path, arcname=name, compress_type=method)
    return buf.getvalue()


def export_file_name(run_id: str) -> str:
    return f"{run_id}.zip"


# -- import --------------------------------------------------------------------------


def import_run(
    source: bytes | IO[bytes],
    runs_dir: PathLike | None = None,
    limits: ImportLimits | None = None,
) -> RunInfo:
    """Check the zip ``source`` and add it as a new run; returns the new run.

    Raises :class:`ArchiveError` (nothing written) when any check fails. The
    run keeps its name, tags, notes, status and creation date; ``run.json``
    records the id it had (``imported_from``) and when it was imported.
    """
    limits = limits or ImportLimits()
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    size = _stream_size(stream)
    if size > limits.archive_bytes:
        raise ArchiveError(f"The file is {size:,} bytes; at most {limits.archive_bytes:,} are accepted.")
    _check_directory(stream, size)  # before zipfile parses (and allocates) every listed entry
    try:
        zf = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as exc:
        raise ArchiveError(f"Not a zip file: {exc}") from exc
    with zf:
        members = _check_entries(zf, limits)
        try:
            staging = runs.new_staging_dir(runs_dir)  # locked: no cleanup removes it while we fill it
        except OSError as exc:
            raise _not_written(exc, runs_dir) from exc
        try:
            _extract(zf, members, staging, limits)
            cfg = _check_run(staging)
            run_id = runs.adopt_staged(staging, cfg, runs_dir)
        except BaseException as exc:
            runs.discard_staging(staging)
            if isinstance(exc, OSError):  # full disk, read-only folder: say so, not which temp file
                raise _not_written(exc, runs_dir) from exc
            raise
    return runs.load_run(run_id, runs_dir)


def _not_written(exc: OSError, runs_dir: PathLike | None) -> StorageError:
    """The message for an import that the disk refused (our own errors carry the OS error as cause)."""
    cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
    reason = cause.strerror or str(cause) or type(cause).__name__
    folder = runs_dir if runs_dir is not None else runs.default_runs_dir()
    return StorageError(
        f"Could not import the run into {folder}: {reason}. Nothing was imported; {advice(cause)}.",
        cause.errno,
    )


def _stream_size(stream: IO[bytes]) -> int:
    position = stream.tell()
    size = stream.seek(0, os.SEEK_END)
    stream.seek(position)
    return size


# The end records, as zipfile reads them: end of central directory (22 bytes, then a comment of
# up to 64 KiB), and before it, in a ZIP64 zip, a locator (20 bytes) after the ZIP64 record (56).
_END = struct.Struct("<4s4H2LH")
_LOCATOR64 = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")
# A run has six files, listed in a few hundred bytes. A few more entries are let through, so
# that a zip with one stray file is refused by name ("'x' is not a file of a run").
MAX_ENTRIES = 100
MAX_DIRECTORY_BYTES = 64 << 10


def _check_directory(stream: IO[bytes], size: int) -> None:
    """Refuse a zip listing more entries than a run has, from its end records alone.

    ``zipfile.ZipFile`` reads the whole central directory and builds one
    ``ZipInfo`` per entry before anything can be checked: 4.2 million entries
    (188 MiB) cost 1.5 GiB and 19 s. This reads the same end record zipfile
    uses (the last one in the final 64 KiB, and the ZIP64 one behind it) with
    two bounded reads, and checks the entry count and the directory's size,
    which bounds what zipfile then reads whatever the count claims. A file
    with no end record is left for zipfile to refuse.
    """
    tail_start = max(size - (1 << 16) - _END.size, 0)
    stream.seek(tail_start)
    tail = stream.read(size - tail_start)
    if tail[-_END.size : -_END.size + 4] == b"PK\x05\x06" and tail[-2:] == b"\0\0":
        at = len(tail) - _END.size  # no comment: zipfile looks here first
    else:
        at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _END.size:
        return
    _sig, _disk, _start, here, entries, directory, _offset, _comment = _END.unpack_from(tail, at)
    end_at = tail_start + at
    if end_at >= _LOCATOR64.size + _END64.size:
        stream.seek(end_at - _LOCATOR64.size - _END64.size)
        records = stream.read(_END64.size + _LOCATOR64.size)
        if records[_END64.size : _END64.size + 4] == b"PK\x06\x07" and records[:4] == b"PK\x06\x06":
            here, entries, directory = _END64.unpack_from(records)[6:9]
    stream.seek(0)
    listed = max(here, entries)
    if listed > MAX_ENTRIES:
        raise ArchiveError(
            f"The zip lists {listed:,} entries; a run's zip holds at most {len(RUN_FILES)} files "
            f"({', '.join(RUN_FILES)}). Choose a zip exported from the Runs page."
        )
    if directory > MAX_DIRECTORY_BYTES:
        raise ArchiveError(
            f"The zip's table of contents is {directory:,} bytes; a run's zip needs at most "
            f"{MAX_DIRECTORY_BYTES:,}. Choose a zip exported from the Runs page."
        )


def _check_entries(zf: zipfile.ZipFile, limits: ImportLimits) -> dict[str, zipfile.ZipInfo]:
    """Every entry a known plain file, once, within the declared limits; the required ones there."""
    members: dict[str, zipfile.ZipInfo] = {}
    expected = ", ".join(RUN_FILES)
    for info in zf.infolist():
        name = info.filename
        if name not in RUN_FILES:
            raise ArchiveError(f"{name!r} is not a file of a run; a run's zip holds only {expected}, flat.")
        if name in members:
            raise ArchiveError(f"{name} appears twice in the zip.")
        mode = info.external_attr >> 16
        if info.is_dir() or (stat.S_IFMT(mode) not in (0, stat.S_IFREG)):
            raise ArchiveError(f"{name} is not a plain file (a folder or a link).")
        if info.flag_bits & 0x1:
            raise ArchiveError(f"{name} is encrypted.")
        if info.file_size > _limit(name, limits):
            raise ArchiveError(
                f"{name} is {info.file_size:,} bytes; at most {_limit(name, limits):,} allowed."
            )
        members[name] = info
    missing = [n for n in REQUIRED if n not in members]
    if missing:
        raise ArchiveError(f"The zip has no {' and no '.join(missing)}: it is not a run.")
    return members


def _limit(name: str, limits: ImportLimits) -> int:
    return limits.json_bytes if name.endswith(".json") else limits.torch_bytes


def _extract(
    zf: zipfile.ZipFile, members: Mapping[str, zipfile.ZipInfo], folder: Path, limits: ImportLimits
) -> None:
    """Copy each entry into ``folder``, counting real bytes against the caps."""
    total = 0
    for name, info in members.items():
        cap = _limit(name, limits)
        written = 0
        try:
            with zf.open(info) as src, open(folder / name, "xb") as dst:
                while chunk := src.read(_CHUNK):
                    written += len(chunk)
                    total += len(chunk)
                    if written > cap:
                        raise ArchiveError(f"{name} unpacks to more than {cap:,} bytes.")
                    if total > limits.total_bytes:
                        raise ArchiveError(f"The zip unpacks to more than {limits.total_bytes:,} bytes.")
                    dst.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            raise ArchiveError(f"{name} cannot be unpacked: {exc}") from exc


def _read_json(path: Path) -> Any:
    try:
        return runs.read_json(path)  # absurd nesting included: a CorruptRun
    except MnistLabError as exc:
        raise ArchiveError(f"{path.name} is not valid JSON.") from exc


def _check_run(folder: Path) -> RunConfig:
    """Validate the extracted files and rewrite the JSON ones in their checked form.

    The same schema as every reader of a run (:mod:`mnist_core.runs.schema`), so
    an imported run always lists, loads and resumes; plus: it must have
    weights (a run without any is nothing to use, and claimed figures alone
    could make it the Draw page's default).
    """
    try:
        cfg = schema.config(_read_json(folder / "config.json"))  # the parameter cap included
        schema.meta(_read_json(folder / "run.json"))
        meta = schema.meta(_check_meta(_read_json(folder / "run.json")))
        if (folder / "summary.json").exists():
            schema.summary(_read_json(folder / "summary.json"))
        if (folder / "history.json").exists():
            schema.history(_read_json(folder / "history.json"))
        if not (folder / "weights.pt").exists():
            raise ArchiveError(
                "The zip has no weights.pt: it holds no trained model to use. "
                "Export the run again from the Runs page once it has finished an epoch."
            )
        expected = schema.expected_state(cfg)
        bound = schema.weights_bytes_bound(expected)
        schema.check_state(_read_torch(folder / "weights.pt", bound), expected, "weights.pt")
        if (folder / "checkpoint.pt").exists():
            ckpt = _read_torch(folder / "checkpoint.pt", schema.checkpoint_bytes_bound(expected))
            schema.check_checkpoint(ckpt, cfg)
        remembered = folder / memory.MEMORY_FILE  # a corrected version's memory of drawings
        if remembered.exists():
            memory.from_state(_read_torch(remembered, memory.max_bytes()), memory.MEMORY_FILE)
    except CorruptRun as exc:
        raise ArchiveError(str(exc)) from exc
    runs.write_json(folder / "config.json", cfg.to_dict())
    runs.write_json(folder / "run.json", meta)
    return cfg


def _check_meta(meta: Any) -> dict[str, Any]:
    """The imported ``run.json``, checked and reduced to the fields this app reads."""
    if not isinstance(meta, dict):
        raise ArchiveError("run.json is not a JSON object.")
    status = meta.get("status")
    if status not in runs.STATUSES:
        raise ArchiveError(f"run.json has an unknown status {status!r}.")
    name, notes, tags = meta.get("name"), meta.get("notes", ""), meta.get("tags", [])
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ArchiveError("run.json needs a name of 1 to 200 characters.")
    if not isinstance(notes, str):
        raise ArchiveError("run.json's notes are not text.")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ArchiveError("run.json's tags are not a list of text.")
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    out: dict[str, Any] = {
        "id": None,  # set when the run is adopted under a fresh id
        "name": name.strip(),
        "status": "interrupted" if status == "running" else status,
        "created": _text(meta.get("created")) or now,
        "updated": now,
        "parent": None,  # the parent lives in another checkpoints folder
        "tags": sorted({t.strip() for t in tags if t.strip()}),
        "notes": notes,
        "error": _text(meta.get("error")),
        "imported_from": _text(meta.get("id")),
        "imported": now,
    }
    if isinstance(meta.get("kind"), str):
        out["kind"] = meta["kind"]
    return out


def _text(value: Any) -> str | None:
    return value[:1000] if isinstance(value, str) else None


def _read_torch(path: Path, max_bytes: int) -> Any:
    try:
        return runs.read_torch(path, "cpu", max_bytes)
    except MnistLabError as exc:
        if "larger than" in str(exc):
            raise ArchiveError(f"{path.name} is larger than the model in config.json needs.") from exc
        raise ArchiveError(f"{path.name} cannot be loaded safely (only tensors are accepted).") from exc
