"""The Draw page's caches: saved runs, models by run id, a run's baseline and handwriting score.

Models come from ``st.cache_resource`` keyed by run id (and the run's
``updated`` stamp and its files' mtimes, so a resumed or repaired run is
reloaded) and are never mutated: a correction works on a deep copy.
A run that cannot be loaded is cached as such: one attempt, not one per visit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from mnist_core import handwriting, novelty, teach
from mnist_core.config import RunConfig
from mnist_core.data import data_root
from mnist_core.errors import MnistLabError
from mnist_core.metrics import EvalResult
from mnist_core.runs import RunInfo, default_runs_dir, folder_state, load_model, load_run, scan_runs

if TYPE_CHECKING:  # torch itself loads through mnist_core, which tunes OpenMP first
    from torch import nn


@st.cache_data(max_entries=8, show_spinner=False)
def _listing(runs_dir: str, state: tuple[tuple[str, int], ...]) -> tuple[list[RunInfo], dict[str, str]]:
    del state  # part of the cache key only
    return scan_runs(runs_dir)


def saved_runs() -> tuple[list[RunInfo], dict[str, str]]:
    """Every readable run, newest first, and the folders left out as broken, with the reason; re-read
    only when the checkpoints folder changed (its stamp taken once a call)."""
    root = default_runs_dir()
    return _listing(str(root), folder_state(root))


class ModelUnavailable(MnistLabError):
    """The run's model could not be loaded (the message says why); remembered until its folder changes."""


@dataclass(frozen=True)
class Loaded:
    """A run's model in eval mode, or the message of the error that stopped its loading."""

    net: nn.Module | None = None
    config: RunConfig | None = None
    error: str = ""


@st.cache_resource(max_entries=32, show_spinner=False)
def _loaded(run_id: str, runs_dir: str, updated: str, stamp: tuple[int, ...]) -> Loaded:
    """One attempt per run and state of its files, shared by every session; a failure is cached too.

    Otherwise each visit to a run that cannot be loaded (a crafted config, weights
    missing or foreign) paid for the attempt again, however costly (issue 29.3).
    """
    del updated, stamp  # part of the cache key only
    try:
        net, cfg = load_model(run_id, runs_dir)
    except MnistLabError as exc:
        return Loaded(error=str(exc))
    return Loaded(net, cfg)


def _stamp(folder: Path) -> tuple[int, ...]:
    """Changes when the run's folder or its weights do (a fixed or replaced run is loaded again)."""
    stamp = []
    for path in (folder, folder / "weights.pt"):
        try:
            found = path.stat()
        except OSError:
            stamp += [0, -1]
        else:
            stamp += [found.st_mtime_ns, found.st_size]
    return tuple(stamp)


def model(run_id: str, runs_dir: str, updated: str) -> tuple[nn.Module, RunConfig]:
    """The run's model in eval mode, shared by every session: never train or modify it.

    Raises :class:`ModelUnavailable` (with the loader's message) when it cannot be
    loaded; that answer is cached as well, until the run's folder changes.
    """
    loaded = _loaded(run_id, runs_dir, updated, _stamp(Path(runs_dir) / run_id))
    if loaded.net is None or loaded.config is None:
        raise ModelUnavailable(loaded.error)
    return loaded.net, loaded.config


def model_of(info: RunInfo) -> tuple[nn.Module, RunConfig]:
    return model(info.id, str(info.path.parent), info.updated)


@st.cache_resource(max_entries=32, show_spinner=False)
def baseline(run_id: str, runs_dir: str, updated: str, data_root: str, eval_size: int) -> EvalResult:
    """The run's accuracy on the correction's evaluation set (:func:`teach.baseline`), once per run."""
    net, _ = model(run_id, runs_dir, updated)
    return teach.baseline(load_run(run_id, runs_dir), eval_size, model=net, root=data_root)


@st.cache_resource(max_entries=8, show_spinner="Comparing with the digits the model learned from…")
def _novelty(run_id: str, runs_dir: str, updated: str, root: str) -> novelty.NoveltyIndex | None:
    net, cfg = model(run_id, runs_dir, updated)
    return novelty.for_run(net, cfg, root)


def novelty_of(info: RunInfo) -> novelty.NoveltyIndex | None:
    """The run's :class:`~mnist_core.novelty.NoveltyIndex`, built once per run (about a second)."""
    return _novelty(info.id, str(info.path.parent), info.updated, str(data_root()))


def correction_inputs(info: RunInfo, eval_size: int) -> dict[str, Any]:
    """What a correction (:func:`teach.correct`) can take from the app's caches: the shared model,
    its baseline evaluation and the data folder."""
    net, _ = model_of(info)
    root = str(data_root())
    before = baseline(info.id, str(info.path.parent), info.updated, root, eval_size)
    return {"model": net, "before": before, "root": root}


@st.cache_data(max_entries=256, show_spinner=False)
def handwriting_score(
    run_id: str, runs_dir: str, updated: str, folder: str, sample_ids: tuple[str, ...]
) -> handwriting.Score:
    """The run's reading of the "my handwriting" set as it is now (:func:`handwriting.score`)."""
    del sample_ids  # part of the cache key only
    net, _ = model(run_id, runs_dir, updated)
    return handwriting.score(net, folder)
