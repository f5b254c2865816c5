"""Teach it: the user action that corrects a saved run and keeps the result as a new version.

One call for the Draw page and the command line alike (``python -m mnist_core
teach``): load the run's data, correct a copy with :func:`online.learn` (by
default it remembers the example(s) and their re-drawings beside the network,
:mod:`memory`; fine-tuning is a setting), name the version after its lineage,
save it with :func:`runs.save_version` (weights and ``memory.pt``; the parent
is never modified) and keep a corrected drawing in the user's handwriting set. After a single drawing, the new
version also reads fresh re-drawings of it (:mod:`redraw`), so the user sees
whether the correction generalised beyond the exact pixels.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from . import handwriting, memory
from .data import CLASS_NAMES, NORMALIZATION, data_root, load_data
from .infer import predict_batch
from .metrics import EvalResult, evaluate
from .online import Correction, CorrectionSettings, eval_subset, learn
from .redraw import redraw_inputs
from .runs import RunInfo, delete_run, lineage, list_runs, load_model, save_version

MAX_TAUGHT = 256  # at most this many images (drawings and their views) learned per step from a set
REDRAWINGS = 10  # re-drawings of a taught drawing read after the correction (0: none)
FRESH_SEED = 1_000_003  # their seeds: far from those of the views a correction learns from


@dataclass(frozen=True)
class Taught:
    """A correction saved as a new version of ``parent``: the user action "Teach it", done."""

    version: RunInfo  # the new run (its folder, name and summary)
    parent: RunInfo
    correction: Correction
    details: dict[str, Any]  # as saved in the version's meta: the figures, the settings and ``what``
    redrawn: Redrawn | None = None  # one MNIST drawing: how the version reads re-drawings of it
    sample: handwriting.Sample | None = None  # the drawing kept in the handwriting set, if one was


@dataclass(frozen=True)
class Redrawn:
    """Fresh re-drawings of the taught drawing and how the parent and the new version read them."""

    pixels: np.ndarray  # float32 (n, 28, 28) ink in [0, 1], as the model sees them
    label: int  # the true label taught
    before: tuple[int, ...]  # the parent's reading of each
    after: tuple[int, ...]  # the new version's reading of each

    @property
    def right_before(self) -> int:
        return sum(p == self.label for p in self.before)

    @property
    def right_after(self) -> int:
        return sum(p == self.label for p in self.after)


def correct(
    parent: RunInfo,
    x: torch.Tensor,
    labels: int | list[int] | torch.Tensor,
    settings: CorrectionSettings | None = None,
    *,
    kind: str = "correction",
    what: str | None = None,
    model: nn.Module | None = None,
    before: EvalResult | None = None,
    root: str | None = None,
    drawing: Any = None,
    predicted: int | None = None,
) -> Taught:
    """Teach ``parent`` the example(s) ``x`` ``(N, 1, 28, 28)`` and save the result as a new version.

    Loads the run's data (its training split is the replay, its test split the
    before/after evaluation), fine-tunes a copy (:func:`online.learn`), names the
    version after the lineage's first run ("<name> · v3 (taught 7)") and saves
    it with :func:`runs.save_version`; the parent is never modified.
    ``model`` and ``before`` (the parent's evaluation on
    ``eval_subset(test, settings.eval_size)``) may come from the caller's cache.
    ``drawing`` (28x28 pixels in 0-1) with ``predicted``: a single MNIST
    drawing is also kept in the user's handwriting set (:mod:`handwriting`).
    Raises :class:`MnistLabError` subclasses with a message for the user.
    """
    settings = settings or CorrectionSettings()
    if model is None:
        model, cfg = load_model(parent.id, parent.path.parent)
    else:
        cfg = parent.config
    bundle = load_data(cfg.dataset, cfg.val_fraction, cfg.seed, str(root or data_root()))
    result = learn(model, x, labels, bundle.train, bundle.test, settings, before=before, dataset=cfg.dataset)
    what = what or _what(result.labels, cfg.dataset)
    chain = lineage(parent.id, parent.path.parent)
    version = next_version(chain[0].id, parent.path.parent)
    details = result.details() | {"what": what, "version_number": version}
    redrawn = None
    if len(result.labels) == 1 and cfg.dataset == "mnist" and REDRAWINGS:
        redrawn = read_redrawings(model, result, x, settings.seed)
        details |= {"redrawn": REDRAWINGS, "redrawn_right_before": redrawn.right_before,
                    "redrawn_right_after": redrawn.right_after}  # fmt: skip
    saved = save_version(
        parent.id,
        result.state_dict,
        result.summary(parent.summary),
        parent.path.parent,
        name=f"{chain[0].name} · v{version} ({what})",
        kind=kind,
        details=details,
        extra=None if result.memory is None else {memory.MEMORY_FILE: result.memory.state()},
    )
    sample = None
    if drawing is not None and len(result.labels) == 1 and cfg.dataset == "mnist":
        sample = handwriting.add(drawing, result.labels[0], run_id=parent.id, predicted=predicted)
    return Taught(saved, parent, result, details, redrawn, sample)


def next_version(root_id: str, runs_dir: str | os.PathLike[str] | None = None) -> int:
    """The number of the next version of run ``root_id``: one more than any of its versions has.

    Siblings count too (two corrections of the same run were both "v2"): a
    version's number is in its details, or, for one saved before it was,
    its depth in the lineage (the original is v1).
    """
    runs = {r.id: r for r in list_runs(runs_dir)}
    numbers = [1]
    for run in runs.values():
        depth, current, seen = 1, run, {run.id}
        while current.id != root_id:
            parent = current.meta.get("parent")
            if not isinstance(parent, str) or parent in seen or parent not in runs:
                break
            depth, current = depth + 1, runs[parent]
            seen.add(parent)
        if current.id == root_id:
            details = run.meta.get("details")
            stored = details.get("version_number") if isinstance(details, dict) else None
            numbers.append(stored if isinstance(stored, int) and not isinstance(stored, bool) else depth)
    return max(numbers) + 1


def undo(
    version_id: str,
    sample_id: str | None = None,
    runs_dir: str | os.PathLike[str] | None = None,
    handwriting_root: str | os.PathLike[str] | None = None,
) -> None:
    """Take a correction back: delete its version and the drawing it kept (:attr:`Taught.sample`).

    An undone correction was a mistake (a wrong answer picked, a click too
    many), so its drawing leaves the handwriting set too, where it would
    teach the same mistake again. A sample already deleted by hand is fine.
    """
    delete_run(version_id, runs_dir)
    if sample_id is not None:
        with contextlib.suppress(handwriting.HandwritingError):
            handwriting.delete(sample_id, handwriting_root)


def baseline(
    parent: RunInfo, eval_size: int, *, model: nn.Module | None = None, root: str | None = None
) -> EvalResult:
    """``parent``'s accuracy on a correction's evaluation set (``eval_subset(test, eval_size)``).

    What :func:`correct` compares the new version with; the app computes it
    once per run and passes it back as ``before``.
    """
    if model is None:
        model, cfg = load_model(parent.id, parent.path.parent)
    else:
        cfg = parent.config
    bundle = load_data(cfg.dataset, cfg.val_fraction, cfg.seed, str(root or data_root()))
    x, y = eval_subset(bundle.test, eval_size)
    return evaluate(model, x, y)


def read_redrawings(model: nn.Module, result: Correction, x: torch.Tensor, seed: int = 0) -> Redrawn:
    """:data:`REDRAWINGS` fresh re-drawings of ``x`` ``(1, 1, 28, 28)`` read by ``model`` and its correction.

    Their seeds are never among those a correction learns its views from.
    """
    fresh = redraw_inputs(x, REDRAWINGS, FRESH_SEED + seed)
    tuned = result.model(model)  # its weights and its memory, as the saved version reads
    mean, std = NORMALIZATION["mnist"]
    return Redrawn(
        pixels=(fresh[:, 0] * std + mean).clamp(0.0, 1.0).numpy(),
        label=result.labels[0],
        before=tuple(int(v) for v in predict_batch(model, fresh).argmax(1)),
        after=tuple(int(v) for v in predict_batch(tuned, fresh).argmax(1)),
    )


def correct_handwriting(
    parent: RunInfo, settings: CorrectionSettings | None = None, *, folder: str | None = None, **kwargs: Any
) -> Taught:
    """Teach ``parent`` the user's whole handwriting set (:mod:`handwriting`) and save it as a version.

    ``kwargs`` as for :func:`correct` (``model``, ``before``, ``root``).
    """
    x, y = handwriting.tensors(folder)
    if len(y) == 0:
        raise handwriting.HandwritingError(
            f"No drawings in {folder or handwriting.default_dir()}: correct a few on the Draw page first."
        )
    settings = settings or CorrectionSettings()
    views = min(settings.views, max(0, MAX_TAUGHT // len(y) - 1))  # a big set is its own variety
    settings = dataclasses.replace(settings, views=views)
    return correct(parent, x, [int(v) for v in y], settings, kind="handwriting", **kwargs)


def _what(labels: tuple[int, ...], dataset: str) -> str:
    """What a version was taught, in its name: "taught 7", or "12 of my drawings"."""
    if len(labels) == 1:
        names = CLASS_NAMES.get(dataset, tuple(str(i) for i in range(10)))
        return f"taught {names[labels[0]]}"
    return f"{len(labels)} of my drawings"
