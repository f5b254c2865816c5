"""Reproduce the blog study: its four experiments, its settings, its published figures.

The published figures are cited reference data, measured on the author's
laptop: repository gouherdanish/mnist_classification, files
``ref/accuracy_with_width.csv``, ``ref/effect_of_depth.csv``,
``ref/effect_of_batch_size.csv`` and ``ref/mlp-vs-lenet.csv``. Every row is
trained with the blog's settings (2 epochs, Adam at 1e-3, its batch size, a
10% validation split) as a normal run; :func:`table` puts our figures beside
the published ones, with ratios.

FLOPs conventions differ, so each column says which it uses. The blog's MLP
FLOPs count 2 per multiply-add (no biases): ours are 2 x fvcore's MACs, the
same convention. Its LeNet-5 figure comes from a hand formula that also
counts pooling and activations; fvcore counts only the convolutions and
linear layers, so that row's FLOPs do not compare like for like.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scipy import stats

from .config import RunConfig, lenet5
from .curves import number
from .errors import ConfigError
from .runs import RunInfo, list_runs
from .seeds import group_key
from .sweeps import Sweep, create, list_sweeps, points, status

SOURCE = "gouherdanish/mnist_classification, ref/*.csv (the blog author's laptop)"
SOURCE_URL = "https://github.com/gouherdanish/mnist_classification/tree/main/ref"
EXPERIMENTS = ("width", "depth", "batch", "lenet")
MAX_REPEATS = 10
PUBLISHED_ROUNDING = 0.05  # points: the blog gives accuracies to 0.1
EXPERIMENT_NAMES = {"width": "Width", "depth": "Depth", "batch": "Batch size", "lenet": "MLP-5 vs LeNet-5"}
EXPERIMENT_TITLES = {
    "width": "Width: MLP 784-{128,256,512,1024}-10, batch 64",
    "depth": "Depth: MLP 784-512x{1,2,3}-10, batch 64",
    "batch": "Batch size: MLP 784-1024-10 and 400-1024-1024-10 (20x20 crop), batch 1/16/64/128",
    "lenet": "MLP-5 (784-512-256-120-84-10) against LeNet-5 (tanh, average pooling), batch 64",
}


@dataclass(frozen=True)
class Published:
    """One row of the blog's tables. ``time_s`` is training time or time per epoch: see ``time_kind``."""

    accuracy: float  # test accuracy, percent
    time_s: float | None
    time_kind: str  # "train" (2 epochs in all) or "epoch" (seconds per epoch)
    parameters: int
    flops: int
    flops_convention: str  # "2 x MACs" or "hand formula incl. pooling"


@dataclass(frozen=True)
class Row:
    experiment: str
    label: str
    config: RunConfig
    published: Published


def _mlp(hidden: tuple[int, ...], batch: int = 64, crop: int = 28) -> RunConfig:
    # The blog's settings; RunConfig's defaults already are 2 epochs, Adam 1e-3, 10% validation.
    return RunConfig(model="mlp", hidden=hidden, batch_size=batch, crop=crop, epochs=2, lr=1e-3,
                     optimizer="adam", val_fraction=0.1, schedule="none", activation="relu")


def _pub(
    acc: float, time_s: float | None, kind: str, params: int, flops: int, hand: bool = False
) -> Published:
    return Published(acc, time_s, kind, params, flops, "hand formula incl. pooling" if hand else "2 x MACs")


def _rows() -> tuple[Row, ...]:
    rows = [
        Row("width", f"MLP 784-{w}-10", _mlp((w,)), _pub(acc, t, "train", p, f))
        for w, acc, t, p, f in (
            (128, 93.7, 3.93, 101770, 203264), (256, 95.8, 4.15, 203530, 406528),
            (512, 96.2, 4.52, 407050, 813056), (1024, 96.7, 4.96, 814090, 1626112),
        )
    ]
    rows += [
        Row("depth", f"MLP 784-{'-'.join(['512'] * d)}-10", _mlp((512,) * d),
            _pub(acc, t, "train", p, f))
        for d, acc, t, p, f in (
            (1, 96.0, 4.52, 407050, 813056), (2, 96.3, 4.83, 669706, 1337344),
            (3, 96.4, 5.3, 932362, 1861632),
        )
    ]
    for arch, hidden, crop, params, flops, table in (
        ("784-1024-10", (1024,), 28, 814090, 1626112,
         ((1, 93.0, 228.3), (16, 96.7, 19.2), (64, 96.4, 8.57), (128, 96.4, 6.96))),
        ("400-1024-1024-10", (1024, 1024), 20, 1470474, 2936832,
         ((1, 93.6, 408.1), (16, 95.3, 33.5), (64, 97.2, 13.2), (128, 96.6, 10.2))),
    ):
        rows += [
            Row("batch", f"MLP {arch} batch {b}", _mlp(hidden, b, crop), _pub(acc, t, "epoch", params, flops))
            for b, acc, t in table
        ]
    rows.append(Row("lenet", "MLP-5 784-512-256-120-84-10", _mlp((512, 256, 120, 84)),
                    _pub(95.7, 4.5, "epoch", 575102, 1148240)))
    rows.append(Row("lenet", "LeNet-5", lenet5(epochs=2, batch_size=64, lr=1e-3),
                    _pub(97.8, 6.87, "epoch", 44426, 2176080, hand=True)))
    return tuple(rows)


ROWS = _rows()


def rows(experiments: Iterable[str] = EXPERIMENTS, batch_one: bool = True) -> list[Row]:
    """The study's rows for some experiments; ``batch_one=False`` leaves out the long batch-1 rows."""
    chosen = set(experiments)
    unknown = chosen - set(EXPERIMENTS)
    if unknown:
        raise ValueError(f"unknown experiments {sorted(unknown)}: choose from {', '.join(EXPERIMENTS)}")
    return [r for r in ROWS if r.experiment in chosen and (batch_one or r.config.batch_size != 1)]


def configs(
    experiments: Iterable[str] = EXPERIMENTS, batch_one: bool = True, repeats: int = 1
) -> list[RunConfig]:
    """Each distinct configuration once (MLP 784-512-10 appears in two experiments), with seeds 0..repeats-1.

    Repeats give each row its seed noise: :func:`table` then says whether ours
    and the published figure differ by more than it.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= MAX_REPEATS:
        raise ConfigError("repeats", f"{repeats!r} is not a whole number of seeds from 1 to {MAX_REPEATS}")
    distinct = dict.fromkeys(r.config for r in rows(experiments, batch_one))
    return [c.replace(seed=seed) for seed in range(repeats) for c in distinct]


@dataclass(frozen=True)
class Plan:
    """What the study would train: every (row, seed) chosen, and those the study's own runs lack.

    ``stopped``: the newest saved study reproduction that was stopped (or
    never started) before its end, and ``left`` its runs not done.
    Resuming it keeps its finished runs and continues a stopped one from
    its checkpoint, where training the missing runs would start them afresh.
    """

    chosen: tuple[RunConfig, ...]
    missing: tuple[RunConfig, ...]  # in the order of ``chosen``
    stopped: Sweep | None = None
    left: tuple[RunConfig, ...] = ()

    @property
    def trained(self) -> int:
        return len(self.chosen) - len(self.missing)


def plan(
    experiments: Iterable[str] = EXPERIMENTS, *, batch_one: bool = True, repeats: int = 1,
    runs: Iterable[RunInfo], studies: Iterable[Sweep],
) -> Plan:
    """The chosen rows' runs (:func:`configs`) and the ones no completed run of a study has yet.

    Only the study's own runs count (:func:`own_runs`), as in :func:`table`:
    a run with the same settings from a grid sweep does not fill a row.
    """
    chosen = tuple(configs(experiments, batch_one=batch_one, repeats=repeats))
    runs, studies = list(runs), [s for s in studies if s.kind == "study"]
    found = best_runs(own_runs(runs, studies))
    missing = tuple(c for c in chosen if c.seed not in found.get(group_key(c), {}))
    for sweep in sorted(studies, key=lambda s: s.created, reverse=True):
        pts = points(sweep, runs)
        if status(pts) in ("stopped", "not started"):
            return Plan(chosen, missing, sweep, tuple(p.config for p in pts if p.state != "done"))
    return Plan(chosen, missing)


def create_sweep(
    experiments: Sequence[str] = EXPERIMENTS, *, batch_one: bool = True, repeats: int = 1,
    runs_dir: str | Path | None = None, missing_only: bool = False,
) -> Sweep:
    """Save the study reproduction as a sweep of kind "study" (the Sweeps page and the CLI's ``study``).

    ``missing_only``: only the runs the table lacks (:func:`plan` on the
    saved runs), so adding the batch-1 rows or more seeds keeps the figures
    already measured; a ``ConfigError`` when nothing is missing.
    """
    chosen = configs(experiments, batch_one=batch_one, repeats=repeats)
    if missing_only:
        todo = plan(experiments, batch_one=batch_one, repeats=repeats, runs=list_runs(runs_dir),
                    studies=list_sweeps(runs_dir))
        if not todo.missing:
            raise ConfigError("study", f"all {len(todo.chosen)} runs of these rows are trained already: "
                              "train them again to measure again, or add seeds per row")
        chosen = list(todo.missing)
    return create(chosen, "Reproduce the study", runs_dir,
                  axes={}, kind="study", extra={"experiments": list(experiments), "batch_one": batch_one})


def is_batch_one(cfg: RunConfig) -> bool:
    return cfg.batch_size == 1


# -- our figures beside theirs ---------------------------------------------------------------


def own_runs(runs: Iterable[RunInfo], studies: Iterable[Sweep]) -> list[RunInfo]:
    """The runs a study reproduction trained: tagged by one of the ``studies`` (sweeps of kind "study").

    A run with the same settings made elsewhere (a grid sweep, the Train
    page) is not the study's, so it never replaces the study's figure.
    """
    tags = {s.tag for s in studies if s.kind == "study"}
    return [r for r in runs if isinstance(r.meta.get("tags"), list) and tags & set(r.meta["tags"])]


def best_runs(runs: Iterable[RunInfo]) -> dict[str, dict[int, RunInfo]]:
    """Per configuration (``seeds.group_key``), per seed, its newest completed run among ``runs``."""
    out: dict[str, dict[int, RunInfo]] = {}
    for run in sorted(runs, key=lambda r: r.created):
        if run.status == "completed" and number(run.summary.get("test_accuracy")) is not None:
            out.setdefault(group_key(run.config), {})[run.config.seed] = run
    return out


def _num(summary: dict[str, Any], key: str) -> float | None:
    value = number(summary.get(key))
    return float(value) if value is not None else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _accuracies(found: dict[str, dict[int, RunInfo]], cfg: RunConfig) -> list[float]:
    """Test accuracies (points) of the seeds of ``cfg``'s configuration."""
    return [100 * float(r.summary["test_accuracy"]) for r in found.get(group_key(cfg), {}).values()]


def _mean(values: Iterable[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return sum(xs) / len(xs) if xs else None


# -- seed noise --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Noise:
    """Seed noise of test accuracy (points): a standard deviation pooled over rows, and its freedom."""

    std: float
    df: int

    def half_width(self, n: int) -> float:
        """How far one new run (the published one) may fall from the mean of our ``n`` seeds, 95% of the time.

        The half-width of a prediction interval, ``t * s * sqrt(1 + 1/n)``,
        plus the published figure's rounding to 0.1 point.
        """
        return float(stats.t.ppf(0.975, self.df)) * self.std * math.sqrt(1 + 1 / n) + PUBLISHED_ROUNDING


def pooled_noise(samples: Iterable[Sequence[float]]) -> Noise | None:
    """The pooled standard deviation of groups of accuracies (points), None without any group of two."""
    groups = [list(g) for g in samples if len(g) > 1]
    df = sum(len(g) - 1 for g in groups)
    if df == 0:
        return None
    ss = sum((len(g) - 1) * statistics.variance(g) for g in groups)
    return Noise(math.sqrt(ss / df), df)


def noise_verdict(
    ours: float | None, published: float, n: int, noise: Noise | None
) -> tuple[bool | None, str]:
    """Whether ours (mean of ``n`` seeds, points) and the published figure differ by more than seed noise."""
    if ours is None:
        return None, "not trained"
    if noise is None:
        return None, "one seed: needs 2+ seeds a row to tell"
    half = noise.half_width(n)
    diff = ours - published
    beyond = abs(diff) > half
    return beyond, f"{diff:+.2f} vs noise ±{half:.2f}: {'beyond noise' if beyond else 'within noise'}"


# -- the table -----------------------------------------------------------------------------------


def table(
    runs: Iterable[RunInfo], experiments: Sequence[str] = EXPERIMENTS, *, studies: Iterable[Sweep] | None
) -> list[dict[str, Any]]:
    """One dict per study row: published figures, ours, ratios, seed noise, and the runs ours come from.

    Ours come only from the study's own runs (:func:`own_runs` of
    ``studies``, the saved sweeps; ``studies=None`` takes every run given),
    per seed the newest completed one, averaged over the seeds; a row none of
    them trained has None in every "ours" field. ``run_id`` and ``run_name``
    say which run is the newest behind a row, ``run_ids`` all of them.
    Ratios: accuracy ours/published (above 1 is better); speed-up published
    time / our time (above 1 is faster), on the same kind of time (training
    time for width and depth, time per epoch for the others).

    Seed noise: the standard deviation of the accuracy across seeds, pooled
    over the experiment's rows run with two seeds or more (over the whole
    table when none of the experiment's is). ``beyond_noise`` is True when the
    published figure lies outside the 95% prediction interval of our seeds,
    None when no row has two seeds.
    """
    found = best_runs(runs if studies is None else own_runs(runs, studies))
    chosen = rows(experiments)
    accs = {id(row): _accuracies(found, row.config) for row in chosen}
    overall = pooled_noise(accs.values())
    by_experiment = {
        e: pooled_noise(accs[id(r)] for r in chosen if r.experiment == e) or overall for e in EXPERIMENTS
    }
    out = []
    for row in chosen:
        pub = row.published
        seeded = sorted(found.get(group_key(row.config), {}).values(), key=lambda r: r.created)
        run = seeded[-1] if seeded else None
        acc_pct = _mean(accs[id(row)])
        time_key = "train_time_s" if pub.time_kind == "train" else "time_per_epoch_s"
        ours_time = _mean(_num(r.summary, time_key) for r in seeded)
        s = run.summary if run else {}
        macs = _num(s, "macs")
        noise = by_experiment[row.experiment]
        beyond, verdict = noise_verdict(acc_pct, pub.accuracy, len(seeded), noise)
        out.append({
            "experiment": row.experiment,
            "model": row.label,
            "batch_size": row.config.batch_size,
            "time_kind": "training s (2 epochs)" if pub.time_kind == "train" else "s per epoch",
            "published_accuracy_pct": pub.accuracy,
            "ours_accuracy_pct": acc_pct,
            "ours_seeds": len(seeded),
            "ours_accuracy_std_pct": statistics.stdev(accs[id(row)]) if len(seeded) > 1 else None,
            "seed_noise_pct": noise.std if noise else None,
            "beyond_noise": beyond,
            "noise_verdict": verdict,
            "accuracy_ratio": _ratio(acc_pct, pub.accuracy),
            "published_time_s": pub.time_s,
            "ours_time_s": ours_time,
            "speedup": _ratio(pub.time_s, ours_time),
            "published_parameters": pub.parameters,
            "ours_parameters": _num(s, "parameters"),
            "published_flops": pub.flops,
            "published_flops_convention": pub.flops_convention,
            "ours_flops_2x_macs": 2 * macs if macs is not None else None,
            "ours_macs_fvcore": macs,
            "flops_ratio": _ratio(2 * macs if macs is not None else None, pub.flops),
            "run_id": run.id if run else None,
            "run_name": run.name if run else None,
            "run_ids": [r.id for r in seeded],
        })
    return out


@dataclass(frozen=True)
class Step:
    """From one row of an experiment to the next (wider, deeper, a larger batch): beyond seed noise?"""

    experiment: str
    before: str
    after: str
    published_diff: float  # points
    ours_diff: float | None  # points, mean over seeds
    p_value: float | None  # two-sided t test with the experiment's pooled seed noise
    real: bool | None


def steps(
    table_rows: Sequence[dict[str, Any]], runs: Iterable[RunInfo], *, studies: Iterable[Sweep] | None
) -> list[Step]:
    """Each experiment's successive rows compared: the blog's finding (published difference) against ours.

    ``table_rows`` come from :func:`table` on the same ``runs``; the test is
    Student's t on the two rows' seed means with the experiment's pooled
    standard deviation (:func:`pooled_noise`), so three seeds a row suffice.
    """
    found = best_runs(runs if studies is None else own_runs(runs, studies))
    accs = {row.label: _accuracies(found, row.config) for row in ROWS}
    out = []
    for experiment in EXPERIMENTS:
        chosen = [r for r in table_rows if r["experiment"] == experiment]
        noise = pooled_noise(accs[r["model"]] for r in chosen)
        for a, b in itertools.pairwise(chosen):
            if experiment == "batch" and a["model"].split(" batch")[0] != b["model"].split(" batch")[0]:
                continue  # the batch experiment's two architectures: not one series
            pub = b["published_accuracy_pct"] - a["published_accuracy_pct"]
            xa, xb = accs[a["model"]], accs[b["model"]]
            if not xa or not xb:
                out.append(Step(experiment, a["model"], b["model"], pub, None, None, None))
                continue
            diff = statistics.fmean(xb) - statistics.fmean(xa)
            if noise is None:
                out.append(Step(experiment, a["model"], b["model"], pub, diff, None, None))
                continue
            t = diff / (noise.std * math.sqrt(1 / len(xa) + 1 / len(xb))) if noise.std > 0 else math.inf
            p = float(2 * stats.t.sf(abs(t), noise.df))
            out.append(Step(experiment, a["model"], b["model"], pub, diff, p, p < 0.05))
    return out
