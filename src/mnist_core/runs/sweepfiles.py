"""Sweep definitions on disk: one JSON file each in ``checkpoints/.sweeps/``, which run listings skip."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ..errors import MnistLabError, RunNotFound
from .fileio import read_json, write_json
from .paths import ID_RE, runs_root

log = logging.getLogger(__name__)

_SWEEPS = ".sweeps"


def _sweep_file(sweep_id: str, runs_dir: str | os.PathLike[str] | None) -> Path:
    if not isinstance(sweep_id, str) or not ID_RE.match(sweep_id) or ".." in sweep_id:
        raise RunNotFound(f"{sweep_id!r} is not a valid sweep id")
    return runs_root(runs_dir) / _SWEEPS / f"{sweep_id}.json"


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
    folder = runs_root(runs_dir) / _SWEEPS
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
        return (runs_root(runs_dir) / _SWEEPS).stat().st_mtime_ns
    except FileNotFoundError:
        return 0
