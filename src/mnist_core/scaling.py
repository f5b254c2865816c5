"""What would a bigger model do? A saturating power law fitted to the runs already trained.

Across the completed runs of one model family (an MLP, a modern CNN or a
LeNet-5) on one dataset, test error falls with size as

    err(N) = a * N ** -b + c

where N is the number of parameters or the training compute, ``b`` the
exponent and ``c`` the error no size removes. The fit is
``scipy.optimize.curve_fit`` on ``log N`` (with ``a = exp(log_a)``, so the
optimiser works on numbers of one scale); its 95% interval at any N comes
from the parameters' covariance by the delta method, with a Student t
quantile for the few runs a fit usually has. Fewer than :data:`MIN_RUNS`
comparable runs, or fewer than three distinct sizes, predict nothing.

Training compute is ``3 x`` the forward FLOPs of one image (forward and
backward, the usual estimate) ``x`` the images seen: the training split
(the dataset's 60 000 images less the validation share) times the epochs.

Pure functions over the flat rows of :func:`mnist_core.compare.table` (and
a configuration); nothing here reads a file.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats
from scipy.optimize import OptimizeWarning, curve_fit

from .config import MAX_TRAIN_SIZE, RunConfig
from .curves import number
from .errors import MnistLabError

if TYPE_CHECKING:
    from .costs import CostReport

MIN_RUNS = 5
LEVEL = 0.95
AXES = {"parameters": "parameters", "train_flops": "training FLOPs"}
BACKWARD_FACTOR = 3  # forward + backward ~ 3 forward passes


class NotEnoughRuns(MnistLabError):
    """Too few comparable runs (or sizes) to fit a scaling law; the message says what to train."""


def family(model: str, style: str | None) -> str:
    """``mlp``, ``cnn modern`` or ``cnn lenet``: runs whose sizes lie on one curve."""
    return "mlp" if model == "mlp" else f"cnn {style}"


def family_of(cfg: RunConfig) -> str:
    return family(cfg.model, cfg.cnn_style)


def family_label(name: str) -> str:
    return {"mlp": "MLP", "cnn modern": "modern CNN", "cnn lenet": "LeNet-5"}.get(name, name)


def row_family(row: Mapping[str, Any]) -> str:
    """A table row's family (its ``activation`` column holds a CNN's style)."""
    return family(str(row.get("model")), str(row.get("activation")))


def train_images(val_fraction: float, epochs: float) -> float:
    """Images seen in training: the training split (as ``data.split_train_val``) times the epochs."""
    return (MAX_TRAIN_SIZE - round(MAX_TRAIN_SIZE * val_fraction)) * epochs


def train_flops(flops_per_image: Any, val_fraction: float, epochs: Any) -> float | None:
    """Training compute in FLOPs, or None without a FLOP count or an epoch."""
    f, e = number(flops_per_image), number(epochs)
    if f is None or e is None or f <= 0 or e <= 0:
        return None
    return BACKWARD_FACTOR * float(f) * train_images(val_fraction, float(e))


# -- the fit ------------------------------------------------------------------------------


def _law(log_n: np.ndarray, log_a: float, b: float, c: float) -> np.ndarray:
    return np.exp(log_a - b * log_n) + c


def _gradient(log_n: np.ndarray, log_a: float, b: float) -> np.ndarray:
    """d err / d (log_a, b, c) at each ``log_n``: shape (len(log_n), 3)."""
    power = np.exp(log_a - b * log_n)
    return np.stack([power, -log_n * power, np.ones_like(log_n)], axis=-1)


@dataclass(frozen=True)
class Prediction:
    """Test error predicted at one size, with its 95% interval (None when the fit cannot bound it)."""

    x: float
    error: float
    low: float | None
    high: float | None

    @property
    def accuracy(self) -> float:
        return 1.0 - self.error

    @property
    def accuracy_interval(self) -> tuple[float, float] | None:
        return None if self.low is None or self.high is None else (1.0 - self.high, 1.0 - self.low)


@dataclass(frozen=True)
class Fit:
    """``err = a * x**-b + c`` over ``n`` runs of ``family`` on ``dataset`` against ``axis``."""

    axis: str
    family: str
    dataset: str
    a: float
    b: float
    c: float
    covariance: tuple[tuple[float, ...], ...]  # of (log a, b, c)
    n: int
    x_range: tuple[float, float]

    def predict(self, x: float) -> Prediction:
        return self.curve(np.array([float(x)]))[0]

    def curve(self, xs: Sequence[float] | np.ndarray) -> list[Prediction]:
        """Predictions at each size ``xs`` (> 0), errors clipped to [0, 1]."""
        x = np.asarray(xs, dtype=np.float64)
        log_n = np.log(x)
        log_a = math.log(self.a)
        mean = _law(log_n, log_a, self.b, self.c)
        cov = np.asarray(self.covariance)
        half = np.full_like(mean, np.nan)
        if np.all(np.isfinite(cov)):
            g = _gradient(log_n, log_a, self.b)
            var = np.einsum("ij,jk,ik->i", g, cov, g)
            half = stats.t.ppf(0.5 + LEVEL / 2, max(self.n - 3, 1)) * np.sqrt(np.maximum(var, 0.0))
        out = []
        for xi, m, h in zip(x, mean, half, strict=True):
            err = float(np.clip(m, 0.0, 1.0))
            if math.isfinite(h):
                low, high = float(np.clip(m - h, 0, 1)), float(np.clip(m + h, 0, 1))
                out.append(Prediction(float(xi), err, low, high))
            else:
                out.append(Prediction(float(xi), err, None, None))
        return out


def fit_points(
    xs: Sequence[float],
    errors: Sequence[float],
    *,
    axis: str = "parameters",
    family: str = "",
    dataset: str = "",
) -> Fit:
    """Fit ``err = a * x**-b + c`` to sizes ``xs`` (> 0) and test errors ``errors`` (in [0, 1]).

    Raises :class:`NotEnoughRuns` below :data:`MIN_RUNS` points or three
    distinct sizes, or when the optimiser finds no fit.
    """
    x, y = np.asarray(xs, dtype=np.float64), np.asarray(errors, dtype=np.float64)
    what = f"{family_label(family)} runs on {dataset}" if family else "runs"
    if x.size < MIN_RUNS or np.unique(x).size < 3:
        raise NotEnoughRuns(
            f"Not enough runs to predict: {x.size} completed {what} at {np.unique(x).size} size(s); "
            f"a fit needs {MIN_RUNS} runs at 3 sizes or more. Train a few more sizes "
            "(the Sweeps page trains several at once)."
        )
    log_n = np.log(x)
    c0 = 0.5 * float(y.min())
    slope, intercept = np.polyfit(log_n, np.log(np.maximum(y - c0, 1e-9)), 1)
    p0 = (float(intercept), float(np.clip(-slope, 0.01, 2.9)), c0)
    bounds = ([-np.inf, 0.0, 0.0], [np.inf, 3.0, 1.0])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)  # an unbounded covariance is reported below
            params, cov = curve_fit(_law, log_n, y, p0=p0, bounds=bounds, maxfev=20_000)
    except (RuntimeError, ValueError) as exc:
        raise NotEnoughRuns(f"The scaling fit over {x.size} {what} did not converge ({exc}).") from None
    log_a, b, c = (float(p) for p in params)
    return Fit(
        axis, family, dataset, math.exp(log_a), b, c,
        tuple(tuple(float(v) for v in row) for row in cov), int(x.size), (float(x.min()), float(x.max())),
    )  # fmt: skip


# -- from the runs table ---------------------------------------------------------------------


def comparable(
    rows: Iterable[Mapping[str, Any]], family: str, dataset: str, axis: str
) -> list[tuple[float, float]]:
    """(size, test error) of the completed rows of ``family`` on ``dataset`` that have both.

    A point repeated exactly (an imported copy of a run, a folder copied by
    hand) counts once: a copy is not a second measurement.
    """
    out: dict[tuple[float, float], None] = {}
    for row in rows:
        if row.get("status") != "completed" or row.get("dataset") != dataset or row_family(row) != family:
            continue
        x, acc = number(row.get(axis)), number(row.get("test_accuracy"))
        if x is not None and x > 0 and acc is not None:
            out[(float(x), 1.0 - float(acc))] = None
    return list(out)


def fit_rows(rows: Iterable[Mapping[str, Any]], family: str, dataset: str, axis: str = "parameters") -> Fit:
    """The scaling fit over the table rows of one family and dataset (NotEnoughRuns when too few)."""
    if axis not in AXES:
        raise ValueError(f"unknown axis {axis!r}: {', '.join(AXES)}")
    pts = comparable(rows, family, dataset, axis)
    return fit_points([p[0] for p in pts], [p[1] for p in pts], axis=axis, family=family, dataset=dataset)


def fits(rows: Sequence[Mapping[str, Any]], axis: str) -> tuple[list[Fit], list[str]]:
    """One fit per (family, dataset) among ``rows``; and why the others have none."""
    found, reasons = [], []
    for fam, dataset in sorted({(row_family(r), str(r.get("dataset"))) for r in rows}):
        try:
            found.append(fit_rows(rows, fam, dataset, axis))
        except NotEnoughRuns as exc:
            reasons.append(str(exc))
    return found, reasons


def predict_config(
    cfg: RunConfig, cost: CostReport, rows: Sequence[Mapping[str, Any]], axis: str = "parameters"
) -> tuple[Prediction, Fit]:
    """The test error the runs so far predict for ``cfg`` (its ``cost`` measured), before training it.

    Raises :class:`NotEnoughRuns` (with what to train) when the fit has too few runs.
    """
    fit = fit_rows(rows, family_of(cfg), cfg.dataset, axis)
    x = cost.parameters if axis == "parameters" else train_flops(cost.flops, cfg.val_fraction, cfg.epochs)
    return fit.predict(float(x or 0) or 1.0), fit
