"""Test digits for a gallery: the images at some test indices, and what a run predicts for them.

Which digits to show comes from the runs' summaries (``misclassified``, see
:mod:`mnist_core.compare`); this module fetches the pixels from the test split
and runs a saved model on just those few images, to caption each digit with
the label and the prediction.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from .data import NORMALIZATION, load_split
from .runs import load_model

PathLike = str | os.PathLike[str]


def test_size(dataset: str, data_root: PathLike | None = None) -> int:
    """Number of images in the dataset's test split (raises DatasetUnavailable)."""
    return len(load_split(dataset, train=False, root=data_root, download=False))


def test_digits(
    dataset: str, indices: Sequence[int], data_root: PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 28, 28)`` uint8 (white digit on black) and labels ``(N,)`` at ``indices``.

    Indices outside the test split raise IndexError; filter them first with
    ``compare.misclassified(summary, n_test)``. Raises DatasetUnavailable
    when the files are not on disk (nothing is downloaded here).
    """
    split = load_split(dataset, train=False, root=data_root, download=False)
    idx = _index(indices, len(split))
    x, y = split.x.index_select(0, idx), split.y.index_select(0, idx)
    mean, std = NORMALIZATION[dataset]
    pixels = ((x[:, 0] * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)
    return pixels.numpy(), y.numpy()


def predictions(
    run_id: str,
    indices: Sequence[int],
    runs_dir: PathLike | None = None,
    data_root: PathLike | None = None,
) -> np.ndarray:
    """What run ``run_id`` predicts for the test digits at ``indices``: ``(N,)`` int64.

    Loads the run's weights (``weights_only``); raises CorruptRun when they are
    missing or do not match the configuration.
    """
    model, cfg = load_model(run_id, runs_dir)
    split = load_split(cfg.dataset, train=False, root=data_root, download=False)
    idx = _index(indices, len(split))
    if not len(idx):
        return np.zeros(0, dtype=np.int64)
    with torch.inference_mode():
        logits = model(split.x.index_select(0, idx))
    return logits.argmax(1).numpy()


def _index(indices: Sequence[int], n: int) -> torch.Tensor:
    idx = torch.as_tensor(list(indices), dtype=torch.int64)
    if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise IndexError(f"test indices must be in [0, {n})")
    return idx
