"""Changing runs that exist: rename, tag and annotate, add measured figures, delete, save a version.

A saved version (a corrected model...) is a new, completed run whose
``run.json`` names its parent; the parent is never modified, so undoing the
change is deleting the version. :func:`lineage` walks those links back.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from ..errors import MnistLabError, RunNotFound
from ..models import build_model
from . import schema
from .catalog import RunInfo, load_history, load_run, load_state
from .fileio import storage_error, write_json
from .locks import is_locked, meta_lock, modify_meta
from .paths import DELETED_PREFIX, now_iso, run_path
from .staging import drop_staging, fill, new_staging, publish


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
        if len(notes) > schema.MAX_TEXT:  # the limit every reader applies to run.json
            raise MnistLabError(f"Notes are limited to {schema.MAX_TEXT:,} characters; shorten them.")
        changes["notes"] = notes
    modify_meta(path, changes)
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
    with meta_lock(info.path):
        summary = load_run(run_id, runs_dir).summary | changes
        path = info.path / "summary.json"
        schema.summary(summary, str(path))
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
    if is_locked(path):
        raise MnistLabError(f"Run {run_id} is being trained; stop it before deleting it.")
    trash = path.with_name(f"{DELETED_PREFIX}{run_id}-{secrets.token_hex(3)}")
    try:
        os.replace(path, trash)
    except FileNotFoundError as exc:
        raise RunNotFound(f"No run {run_id!r} in {path.parent} (deleted meanwhile)") from exc
    except OSError as exc:
        raise storage_error(f"Could not delete run {run_id}", exc) from exc
    shutil.rmtree(trash, ignore_errors=True)  # if this process dies first, clean_stale_staging ends it


def delete_runs(
    run_ids: Iterable[str], runs_dir: str | os.PathLike[str] | None = None
) -> tuple[int, list[str]]:
    """Remove several runs (the Runs page's Delete), each as :func:`delete_run`.

    One that cannot go (being trained, deleted meanwhile) does not stop the
    others: returns how many were deleted and the message of each refusal.
    """
    deleted, errors = 0, []
    for run_id in run_ids:
        try:
            delete_run(run_id, runs_dir)
        except MnistLabError as exc:
            errors.append(str(exc))
        else:
            deleted += 1
    return deleted, errors


def save_version(
    parent_id: str,
    state_dict: dict[str, torch.Tensor],
    summary: dict[str, Any],
    runs_dir: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    kind: str = "correction",
    details: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> RunInfo:
    """Save changed weights of ``parent_id`` as a new, completed run that points back to it.

    The parent is never modified: undoing the change is deleting the version.
    ``details`` (JSON) records what was done, e.g. the corrected label.
    ``extra``: more files of the version by name (``memory.pt``: tensors, see :mod:`mnist_core.memory`).
    The version is written in a staging folder and published with one rename,
    complete and "completed": a crash leaves no half-saved version.
    """
    parent = load_run(parent_id, runs_dir)
    model = build_model(parent.config)
    load_state(model, state_dict, Path("the new weights"))
    root, now = parent.path.parent, now_iso()
    meta = {
        "id": None, "name": name or f"{parent.name} ({kind})", "status": "completed", "created": now,
        "updated": now, "parent": parent_id, "tags": list(parent.meta.get("tags") or ()), "notes": "",
        "error": None, "kind": kind, "details": details or {},
    }
    history = load_history(parent_id, runs_dir)
    files = {
        "config.json": parent.config.to_dict(),
        "weights.pt": {k: v.detach().cpu() for k, v in state_dict.items()},
        "history.json": history, "summary.json": summary, "run.json": meta, **(extra or {}),
    }
    staging, lock = new_staging(root)
    try:
        fill(staging, files, f"the new version of run {parent_id} in {root}")
        run_id, _ = publish(staging, parent.config, root)
    finally:
        drop_staging(staging, lock)  # nothing left to drop once published
    return load_run(run_id, root)


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
