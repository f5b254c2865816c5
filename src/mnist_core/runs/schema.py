"""The schema of every file of a run: what a reader accepts before it uses anything.

A run folder may come from anywhere (an import, a copy, a hand edit), so
every file is checked when it is read, with the same rules for the listing,
the pages, the CLI and the import:

- ``config.json``: a valid :class:`~mnist_core.config.RunConfig` whose model
  has at most :data:`MAX_PARAMETERS` parameters, counted from the layer sizes
  before anything is built;
- ``run.json``, ``summary.json`` and each point of ``history.json``: pydantic
  models with strict types (no ``"abc"`` where a number belongs), ranges
  (accuracies in [0, 1], counts and times not negative, every integer within
  int64) and bounded text and lists; keys this version does not know are
  kept only if they are small plain JSON;
- ``weights.pt`` and ``checkpoint.pt``: exactly the tensors of the
  configuration's model; a checkpoint's position, optimizer and scheduler
  state shaped as this configuration's optimizer and scheduler would write
  them (see :func:`check_checkpoint`).

Anything else raises :class:`~mnist_core.errors.CorruptRun` with one line
naming the file, the field and what is wrong; listings then show the run as
broken with that line. The JSON files are checked in :mod:`.schema_json`,
the tensor files in :mod:`.schema_tensors`; this module is the one name for
both.
"""

from __future__ import annotations

from .schema_json import (
    INT64,
    MAX_EXTRA_DEPTH,
    MAX_HISTORY_BYTES,
    MAX_PARAMETERS,
    MAX_SMALL_JSON_BYTES,
    MAX_TEXT,
    STATUSES,
    HistoryPoint,
    ReliabilityBins,
    RunMeta,
    Summary,
    config,
    history,
    meta,
    parameter_count,
    summary,
)
from .schema_tensors import (
    Checkpoint,
    check_checkpoint,
    check_state,
    checkpoint_bytes_bound,
    expected_state,
    weights_bytes_bound,
)

__all__ = [
    "INT64",
    "MAX_EXTRA_DEPTH",
    "MAX_HISTORY_BYTES",
    "MAX_PARAMETERS",
    "MAX_SMALL_JSON_BYTES",
    "MAX_TEXT",
    "STATUSES",
    "Checkpoint",
    "HistoryPoint",
    "ReliabilityBins",
    "RunMeta",
    "Summary",
    "check_checkpoint",
    "check_state",
    "checkpoint_bytes_bound",
    "config",
    "expected_state",
    "history",
    "meta",
    "parameter_count",
    "summary",
    "weights_bytes_bound",
]
