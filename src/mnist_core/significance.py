"""Is the difference between runs real? Per-image correctness, calibration and paired tests.

Two runs evaluated on the same test images are *paired*: what matters is the
images one gets right and the other wrong. Every run therefore keeps, in its
``summary.json``, which test images it gets right and its calibration
(:mod:`mnist_core.calibration` writes and reads them; import their names
from there), and ``test_loss``, the mean negative log-likelihood in nats.

Two runs are compared with McNemar's exact test on their disagreements
(``scipy.stats.binomtest``) and a paired bootstrap interval of the accuracy
difference; several runs each against the best one, with Holm's correction
(``statsmodels``). Runs saved before these fields existed are evaluated once
on demand and the result is cached in their summary.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import binomtest, ttest_ind
from statsmodels.stats.multitest import multipletests

from . import runs, seeds
from .calibration import FIELDS, Reliability, SignificanceError, summary_fields, unpack_correct
from .data import load_split
from .errors import DatasetUnavailable
from .metrics import evaluate

PathLike = str | os.PathLike[str]
ALPHA = 0.05
N_BOOTSTRAP = 10_000


# -- two runs and several --------------------------------------------------------


@dataclass(frozen=True)
class PairTest:
    """Run ``b`` against run ``a`` on the same ``n`` images.

    ``diff`` is ``acc_b - acc_a`` (a fraction), ``low``/``high`` its 95%
    bootstrap interval; ``only_a`` counts images ``a`` gets right and ``b``
    wrong. ``p_value`` is McNemar's exact two-sided p, ``p_adjusted`` the same
    after Holm's correction (equal to ``p_value`` for a single pair).
    """

    a: str
    b: str
    n: int
    acc_a: float
    acc_b: float
    only_a: int
    only_b: int
    diff: float
    low: float
    high: float
    p_value: float
    p_adjusted: float
    real: bool

    @property
    def verdict(self) -> str:
        """One line: "B is better by 0.4 points, 95% interval 0.2-0.6: real" or "... within noise"."""
        if self.diff == 0:
            return f"{self.a} and {self.b} score the same: within noise"
        better, worse = (self.b, self.a) if self.diff > 0 else (self.a, self.b)
        low, high = (self.low, self.high) if self.diff > 0 else (-self.high, -self.low)
        what = "real" if self.real else "within noise"
        return (
            f"{better} is better than {worse} by {_points(abs(self.diff))} points, "
            f"95% interval {_points(low)} to {_points(high)}: {what} ({_p(self.p_adjusted)})"
        )


def _points(fraction: float) -> str:
    text = f"{fraction * 100:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _p(p: float) -> str:
    return f"p = {p:.2g}" if p >= 1e-4 else "p < 0.0001"


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p: the discordant pairs split as a fair coin would (1.0 if none)."""
    n = only_a + only_b
    return 1.0 if n == 0 else float(binomtest(only_b, n, 0.5).pvalue)


def bootstrap_diff(
    correct_a: np.ndarray, correct_b: np.ndarray, n_resamples: int = N_BOOTSTRAP, seed: int = 0
) -> tuple[float, float]:
    """Percentile 95% interval of ``acc_b - acc_a`` by resampling images (pairs) with replacement.

    Each image contributes -1, 0 or +1 to the difference, so a resample of
    the N pairs is fully described by how many of each it drew: a multinomial
    draw of N with the observed shares. This is the same paired bootstrap as
    resampling indices, in O(resamples) instead of O(resamples * N).
    """
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    n = a.size
    plus, minus = int(np.sum(b & ~a)), int(np.sum(a & ~b))
    draws = np.random.default_rng(seed).multinomial(
        n, [plus / n, minus / n, (n - plus - minus) / n], n_resamples
    )
    diffs = (draws[:, 0] - draws[:, 1]) / n
    low, high = np.percentile(diffs, [2.5, 97.5])
    return float(low), float(high)


def compare_pair(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    a: str = "A",
    b: str = "B",
    *,
    alpha: float = ALPHA,
    seed: int = 0,
) -> PairTest:
    """McNemar's exact test and a bootstrap interval for two runs on the same images."""
    ca, cb = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if ca.shape != cb.shape or ca.ndim != 1 or ca.size == 0:
        raise SignificanceError(
            f"{a} and {b} were evaluated on different test sets ({ca.size} and {cb.size} images); "
            "only runs on the same test set can be compared."
        )
    only_a, only_b = int(np.sum(ca & ~cb)), int(np.sum(cb & ~ca))
    p = mcnemar_exact(only_a, only_b)
    low, high = bootstrap_diff(ca, cb, seed=seed)
    acc_a, acc_b = float(ca.mean()), float(cb.mean())
    return PairTest(
        a, b, ca.size, acc_a, acc_b, only_a, only_b, (only_b - only_a) / ca.size, low, high, p, p, p < alpha
    )


def against_best(correct: Mapping[str, np.ndarray], *, alpha: float = ALPHA, seed: int = 0) -> list[PairTest]:
    """Every run against the most accurate one (``a`` = best), Holm-corrected; best first in ties by order.

    With two runs this is :func:`compare_pair` with the better one as ``a``.
    """
    if len(correct) < 2:
        raise SignificanceError("Pick at least two runs to compare.")
    names = list(correct)
    best = max(names, key=lambda k: float(np.mean(correct[k])))
    tests = [
        compare_pair(correct[best], correct[k], best, k, alpha=alpha, seed=seed) for k in names if k != best
    ]
    reject, adjusted, _, _ = multipletests([t.p_value for t in tests], alpha=alpha, method="holm")
    return [
        PairTest(**{**t.__dict__, "p_adjusted": float(p), "real": bool(r)})
        for t, p, r in zip(tests, adjusted, reject, strict=True)
    ]


# -- configurations, across their seeds --------------------------------------------------


@dataclass(frozen=True)
class ConfigTest:
    """Configuration ``b`` against ``a`` (the best mean), over their seeds' test accuracies.

    Welch's t-test (unequal variances) on the per-seed accuracies: it asks
    whether retraining either configuration with other seeds would keep the
    gap, which the per-model tests above cannot. ``p_adjusted`` after Holm.
    """

    a: str
    b: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float  # mean_b - mean_a
    p_value: float
    p_adjusted: float
    real: bool

    @property
    def verdict(self) -> str:
        better, worse = (self.b, self.a) if self.diff > 0 else (self.a, self.b)
        what = "real across seeds" if self.real else "within seed noise"
        return (
            f"{better} is better than {worse} by {_points(abs(self.diff))} points on average over their "
            f"seeds ({self.n_a} and {self.n_b}): {what} ({_p(self.p_adjusted)}, Welch)"
        )


def compare_configurations(
    accuracies: Mapping[str, Sequence[float]], *, alpha: float = ALPHA
) -> list[ConfigTest]:
    """Each configuration with 2+ seeds against the best such one (highest mean), Holm-corrected.

    ``accuracies``: configuration label -> the test accuracy of each seed.
    Configurations with fewer than two seeds are left out (no spread to test
    against); fewer than two left: an empty list.
    """
    groups = {k: [float(v) for v in vs] for k, vs in accuracies.items() if len(vs) >= 2}
    if len(groups) < 2:
        return []
    best = max(groups, key=lambda k: float(np.mean(groups[k])))
    raw = []
    for name, values in groups.items():
        if name == best:
            continue
        a, b = np.asarray(groups[best]), np.asarray(values)
        same = np.ptp(np.concatenate([a, b])) == 0  # no spread at all: t is undefined, nothing differs
        p = 1.0 if same else float(ttest_ind(b, a, equal_var=False).pvalue)
        raw.append((name, a, b, p if math.isfinite(p) else 1.0))
    reject, adjusted, _, _ = multipletests([r[3] for r in raw], alpha=alpha, method="holm")
    return [
        ConfigTest(best, name, len(a), len(b), float(a.mean()), float(b.mean()), float(b.mean() - a.mean()),
                   p, float(adj), bool(rej))
        for (name, a, b, p), adj, rej in zip(raw, adjusted, reject, strict=True)
    ]  # fmt: skip


@dataclass(frozen=True)
class SeedGroups:
    """The picked runs' configurations with 2+ seeds: their tests, and which run belongs to which."""

    tests: list[ConfigTest]
    config_of: dict[str, str]  # run id -> its configuration's label, for the runs of such configurations


def across_seeds(rows: Sequence[Mapping[str, Any]]) -> SeedGroups:
    """Group the table rows ``rows`` by configuration (:func:`seeds.group_rows`) and test the groups.

    The user action "is this configuration better, seed noise included?": the
    Runs page's first answer when runs of a configuration were picked with
    several seeds (:func:`compare_configurations` over their test accuracies).
    """
    groups = [g for g in seeds.group_rows(rows, ["test_accuracy"]) if (g.get(seeds.N_KEY) or 1) > 1]
    names = [str(g["name"]) for g in groups]
    # Two configurations may share a name (the same shape at two learning rates): tell them apart.
    labels = [
        name if names.count(name) == 1 else f"{name} · {group.get(seeds.GROUP_KEY)}"
        for name, group in zip(names, groups, strict=True)
    ]
    by_id = {r["id"]: r for r in rows}
    members = {label: group["run_ids"] for label, group in zip(labels, groups, strict=True)}
    accuracies = {label: [by_id[i]["test_accuracy"] for i in ids] for label, ids in members.items()}
    config_of = {i: label for label, ids in members.items() for i in ids}
    return SeedGroups(compare_configurations(accuracies), config_of)


def is_finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# -- runs on disk ----------------------------------------------------------------


@dataclass(frozen=True)
class RunRecord:
    """What the comparison needs of one run: its per-image hits (N,) and, if known, its calibration."""

    id: str
    label: str  # the run's name, made unique among the runs compared
    dataset: str
    correct: np.ndarray
    test_loss: float | None
    reliability: Reliability | None

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())


@dataclass(frozen=True)
class Comparison:
    """Runs picked on the Runs page or the CLI, and each one's test against the best."""

    records: tuple[RunRecord, ...]
    tests: tuple[PairTest, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: each run's accuracy, NLL and calibration, and each test with its verdict."""
        return {
            "runs": [
                {"id": r.id, "label": r.label, "dataset": r.dataset, "test_n": int(r.correct.size),
                 "test_accuracy": r.accuracy, "test_loss": r.test_loss,
                 "ece": None if r.reliability is None else r.reliability.ece,
                 "reliability": None if r.reliability is None else r.reliability.to_dict()}
                for r in self.records
            ],
            "tests": [{**dataclasses.asdict(t), "verdict": t.verdict} for t in self.tests],
        }


def run_record(
    run_id: str, runs_dir: PathLike | None = None, data_root: PathLike | None = None, *, compute: bool = True
) -> RunRecord:
    """The run's per-image hits and calibration: from its summary, or for older runs measured once and cached.

    An older run is evaluated on its test set (weights and data needed) and the
    result is written into its ``summary.json``. Without weights or data, the
    hits are rebuilt from the summary's ``misclassified`` list (no calibration
    then). Raises :class:`SignificanceError` when neither is possible.
    """
    info = runs.load_run(run_id, runs_dir)
    summary = info.summary
    if not _has_fields(summary) and compute and info.has_weights and info.status in ("completed", "stopped"):
        try:
            summary = measure_run(run_id, runs_dir, data_root)
        except DatasetUnavailable:
            if _from_misclassified(summary) is None:
                raise
    loss = summary.get("test_loss")
    loss = float(loss) if is_finite(loss) else None
    if "test_correct_bits" in summary and "test_n" in summary:
        correct = unpack_correct(summary["test_correct_bits"], summary["test_n"])
        return RunRecord(
            info.id, info.name, info.config.dataset, correct, loss, Reliability.from_summary(summary)
        )
    correct = _from_misclassified(summary)
    if correct is None:
        raise SignificanceError(
            f"Run {info.name!r} has no per-image test results and no weights to compute them "
            "(a failed run, or one saved without weights): pick a completed run."
        )
    return RunRecord(info.id, info.name, info.config.dataset, correct, loss, None)


def measure_run(
    run_id: str, runs_dir: PathLike | None = None, data_root: PathLike | None = None
) -> dict[str, Any]:
    """Evaluate a saved run on its test set and cache the per-image fields in its summary; the new summary."""
    model, cfg = runs.load_model(run_id, runs_dir)
    x, y = load_split(cfg.dataset, train=False, root=data_root, download=False).tensors()
    result = evaluate(model, x, y)
    fields = summary_fields(result, y.numpy())
    return runs.merge_summary(run_id, runs_dir, {**fields, "test_loss": result.loss})


def compare_runs(
    run_ids: Sequence[str],
    runs_dir: PathLike | None = None,
    data_root: PathLike | None = None,
    *,
    seed: int = 0,
) -> Comparison:
    """Load (or measure) each run and test every one against the best, Holm-corrected."""
    if len(set(run_ids)) < 2:
        raise SignificanceError("Pick at least two different runs to compare.")
    records = _unique_labels([run_record(r, runs_dir, data_root) for r in dict.fromkeys(run_ids)])
    datasets = sorted({r.dataset for r in records})
    if len(datasets) > 1:
        raise SignificanceError(
            f"The runs were tested on different datasets ({', '.join(datasets)}); pick runs of one."
        )
    sizes = sorted({r.correct.size for r in records})
    if len(sizes) > 1:
        raise SignificanceError(
            f"The runs were tested on test sets of different sizes ({', '.join(map(str, sizes))} images): "
            "only runs on the same test images can be compared."
        )
    tests = against_best({r.label: r.correct for r in records}, seed=seed)
    return Comparison(tuple(records), tuple(tests))


def _has_fields(summary: Mapping[str, Any]) -> bool:
    return all(key in summary for key in FIELDS)


def _from_misclassified(summary: Mapping[str, Any]) -> np.ndarray | None:
    """Hits rebuilt from ``misclassified`` and the confusion matrix's total (the number of test images)."""
    wrong, confusion = summary.get("misclassified"), summary.get("confusion")
    if not isinstance(wrong, list) or not isinstance(confusion, list):
        return None
    n = int(sum(sum(row) for row in confusion))
    if n == 0 or any(i >= n for i in wrong):
        return None
    correct = np.ones(n, dtype=bool)
    correct[np.asarray(wrong, dtype=np.int64)] = False
    return correct


def _unique_labels(records: list[RunRecord]) -> list[RunRecord]:
    seen: dict[str, int] = {}
    for r in records:
        seen[r.label] = seen.get(r.label, 0) + 1
    return [
        RunRecord(r.id, f"{r.label} ({r.id})", r.dataset, r.correct, r.test_loss, r.reliability)
        if seen[r.label] > 1
        else r
        for r in records
    ]
