"""Reading one input with every saved run of its dataset (the Draw page's "All models").

The caller passes the runs and, optionally, how to load a run's model (the
app passes its shared cache); a run that cannot be loaded or cannot read the
input is kept in the answer with its reason, not dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from .config import RunConfig
from .errors import MnistLabError
from .infer import Prediction, predict
from .runs import RunInfo, load_model

Loader = Callable[[RunInfo], tuple[nn.Module, RunConfig]]


@dataclass(frozen=True)
class Reading:
    """One run's reading of the input; ``prediction`` None when it could not read it (``error`` says why)."""

    run: RunInfo
    prediction: Prediction | None = None
    error: str = ""


def _load(info: RunInfo) -> tuple[nn.Module, RunConfig]:
    return load_model(info.id, info.path.parent)


def read_with_every_run(
    x: torch.Tensor, runs: Iterable[RunInfo], dataset: str, load: Loader | None = None
) -> list[Reading]:
    """Every run of ``dataset`` in ``runs`` reads ``x`` ``(1, 1, 28, 28)``, in the order given.

    Preprocessing depends only on the dataset, so one input serves every run.
    """
    load = load or _load
    readings = []
    for info in runs:
        if info.config.dataset != dataset:
            continue
        try:
            model, _ = load(info)
            readings.append(Reading(info, predict(model, x)))
        except (MnistLabError, ValueError) as exc:
            readings.append(Reading(info, error=str(exc)))
    return readings
