"""What a configuration is before it trains: its splits, steps, devices and model cost.

The Train and Sweeps pages check a configuration with these before anything
runs: how many images its training and validation splits hold (read from
the cached dataset, or the standard 60 000 when it is not on disk, never
downloaded), how many steps an epoch takes, which devices this machine
offers, whether the batch fits the training split, and what the model costs
(parameters, MACs, FLOPs and weight size, from
:func:`mnist_core.costs.cost_report` on a freshly built model). Nothing is
timed here; :mod:`mnist_core.estimate` turns these into time per epoch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

from .config import DEVICES, RunConfig
from .costs import CostReport, cost_report
from .data import load_split
from .errors import ConfigError, DatasetUnavailable
from .models import build_model

# Size of the training split of MNIST and Fashion-MNIST, when the files are not here yet.
STANDARD_TRAIN_SIZE = 60_000


@dataclass(frozen=True)
class SplitSizes:
    """Images in the training and validation splits a config will use."""

    n_train: int
    n_val: int
    measured: bool  # False: the dataset is not on disk, sizes assume the standard 60 000


def available_devices() -> tuple[str, ...]:
    """The device choices that work on this machine, ``auto`` first."""
    usable = {"auto", "cpu"}
    if torch.cuda.is_available():
        usable.add("cuda")
    if torch.backends.mps.is_available():
        usable.add("mps")
    return tuple(d for d in DEVICES if d in usable)


def split_sizes(dataset: str, val_fraction: float, root: str | os.PathLike[str] | None = None) -> SplitSizes:
    """Train/validation sizes as :func:`mnist_core.data.split_train_val` will cut them.

    Reads the (cached) training split when it is on disk; never downloads.
    """
    try:
        n = len(load_split(dataset, train=True, root=root, download=False))
        measured = True
    except DatasetUnavailable:
        n, measured = STANDARD_TRAIN_SIZE, False
    n_val = round(n * val_fraction)
    return SplitSizes(n - n_val, n_val, measured)


def check_fits(cfg: RunConfig, sizes: SplitSizes) -> None:
    """Refuse a batch larger than the training split (training would refuse it later)."""
    if cfg.batch_size > sizes.n_train:
        raise ConfigError(
            "batch_size", f"{cfg.batch_size} is larger than the training set ({sizes.n_train:,} images)"
        )


def cost_preview(cfg: RunConfig) -> CostReport:
    """Parameters, MACs, FLOPs and fp32 weight size of the model ``cfg`` describes.

    Raises :class:`ConfigError` for an architecture that cannot be built (for
    example too many LeNet stages for a 28x28 image).
    """
    return cost_report(build_model(cfg).eval())


def steps_per_epoch(cfg: RunConfig, sizes: SplitSizes) -> int:
    return math.ceil(sizes.n_train / cfg.batch_size)
