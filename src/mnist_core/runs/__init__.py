"""Runs on disk: the only package that knows the layout of ``checkpoints/`` (see :mod:`.paths`).

It owns where runs live and how they are named (``paths``), atomic writes and
bounded reads of one file (``fileio``), the locks of a run being trained and
of ``run.json`` edits (``locks``), the schema every file is checked against
when read (``schema``), reading and listing runs (``catalog``), making a new
run, version or import appear whole and cleaning what killed processes left
(``staging``), the writer of a run being trained (``writer``), changing
existing runs (``manage``: rename, delete, versions, lineage), sweep files
(``sweepfiles``) and the resumable state a training run saves (``state``). It
may import torch, pydantic and ``mnist_core.config``, ``errors``, ``fsutil``
and ``models``; the training loop depends on it (``TrainState``), never the
reverse, except the schema's check of a checkpoint's optimizer state, which
asks ``mnist_core.train`` how its optimizer writes it. Import the public
names from here: ``from mnist_core.runs import load_run``.
"""

from __future__ import annotations

from . import schema
from .catalog import (
    RESUMABLE,
    STATUSES,
    RunInfo,
    best_of,
    best_run,
    broken_runs,
    folder_state,
    has_checkpoint,
    list_runs,
    load_history,
    load_model,
    load_run,
    load_train_state,
    resumable,
    scan_runs,
)
from .fileio import MAX_JSON_BYTES, read_bytes, read_json, read_torch, write_json, write_torch
from .manage import delete_run, delete_runs, lineage, merge_summary, save_version, update_meta
from .paths import RUN_FILES, default_runs_dir, new_run_id, run_path
from .staging import (
    STALE_AFTER_S,
    TEMP_STALE_AFTER_S,
    adopt_staged,
    clean_stale_staging,
    discard_staging,
    new_staging_dir,
)
from .state import TrainState
from .sweepfiles import list_sweep_data, load_sweep_data, save_sweep_data, sweeps_folder_mtime
from .writer import RunWriter

__all__ = [
    "MAX_JSON_BYTES",
    "RESUMABLE",
    "RUN_FILES",
    "STALE_AFTER_S",
    "STATUSES",
    "TEMP_STALE_AFTER_S",
    "RunInfo",
    "RunWriter",
    "TrainState",
    "adopt_staged",
    "best_of",
    "best_run",
    "broken_runs",
    "clean_stale_staging",
    "default_runs_dir",
    "delete_run",
    "delete_runs",
    "discard_staging",
    "folder_state",
    "has_checkpoint",
    "lineage",
    "list_runs",
    "list_sweep_data",
    "load_history",
    "load_model",
    "load_run",
    "load_sweep_data",
    "load_train_state",
    "merge_summary",
    "new_run_id",
    "new_staging_dir",
    "read_bytes",
    "read_json",
    "read_torch",
    "resumable",
    "run_path",
    "save_sweep_data",
    "save_version",
    "scan_runs",
    "schema",
    "sweeps_folder_mtime",
    "update_meta",
    "write_json",
    "write_torch",
]
