"""Runs that differ only in their seed: one configuration measured several times.

The blog's own tables give the same configuration as 96.2% and 96.0%: a
single run's accuracy carries seed noise of a few tenths of a point. Runs
whose settings are equal but for ``seed`` (and ``device``, which changes
where a run trains, not what it learns) are grouped here into one row with,
per metric, the mean, the sample standard deviation and the count, so the
table and every chart can show one point with an error bar.

Pure functions over the flat rows of :func:`mnist_core.compare.table`; no
file is read. Only completed runs are grouped: a failed or stopped run of the
same settings measures something else (or nothing) and stays a row of its own.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import RunConfig
from .curves import number
from .errors import ConfigError

if TYPE_CHECKING:  # the registry imports the training stack; grouping rows needs none of it
    from .jobs import Job, JobRegistry

PathLike = str | os.PathLike[str]

# Settings that do not make a different configuration.
IGNORED = ("seed", "device")
GROUP_KEY = "group"  # the row key holding group_key(cfg) (compare.run_row sets it)
N_KEY = "n_seeds"
REPEAT_SEEDS = 3  # "repeat with 3 seeds" on the Train page
MAX_REPEATS = 20


def group_key(cfg: RunConfig) -> str:
    """A short stable id of ``cfg`` without its seed: equal for runs that differ only in seed."""
    settings = {k: v for k, v in cfg.to_dict().items() if k not in IGNORED}
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def std_key(metric: str) -> str:
    """The row key of a metric's standard deviation across seeds (``test_accuracy_std``)."""
    return f"{metric}_std"


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation (``None`` below two values) and count of one metric."""

    mean: float | None
    std: float | None
    n: int


def spread(values: Iterable[Any]) -> Spread:
    """The spread of the finite numbers in ``values`` (others are missing, not zero)."""
    xs = [float(v) for v in values if number(v) is not None]
    if not xs:
        return Spread(None, None, 0)
    return Spread(statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else None, len(xs))


def group_rows(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """One row per configuration, in the order each first appears.

    Grouped are completed runs with distinct seeds that no other run was
    derived from (``parent``: a run taught corrections is not a seed of its
    original). A group becomes a row whose settings are the first
    run's, whose ``metrics`` are means over its runs, with ``<metric>_std``
    beside each, ``n_seeds``, ``seeds`` and ``run_ids``. A run alone (or not
    completed, or without a group key) stays as it is, with ``n_seeds`` 1 and
    no standard deviations.
    """
    order: list[str] = []
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        key = row.get(GROUP_KEY) if row.get("status") == "completed" and not row.get("parent") else None
        slot = f"g:{key}" if key else f"r:{row['id']}"
        if slot in groups and row.get("seed") in {m.get("seed") for m in groups[slot]}:
            slot = f"r:{row['id']}"  # the same seed again (an imported copy): not another measurement
        if slot not in groups:
            order.append(slot)
            groups[slot] = []
        groups[slot].append(row)
    return [merge(groups[slot], metrics) for slot in order]


def merge(members: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> dict[str, Any]:
    """Rows of one configuration as one row (see :func:`group_rows`)."""
    first = members[0]
    out = dict(first)
    out[N_KEY] = len(members)
    out["seeds"] = [m.get("seed") for m in members]
    out["run_ids"] = [m["id"] for m in members]
    for metric in metrics:
        s = spread(m.get(metric) for m in members)
        out[metric] = s.mean if len(members) > 1 else first.get(metric)
        out[std_key(metric)] = s.std
    if len(members) > 1:
        names = {m.get("name") for m in members}
        base = first["name"] if len(names) == 1 else first.get("architecture") or first["name"]
        out["name"] = f"{base} ({len(members)} seeds)"
    return out


def repeated(rows: Sequence[Mapping[str, Any]]) -> int:
    """How many configurations in ``rows`` (grouped) ran with more than one seed."""
    return sum(1 for r in rows if (r.get(N_KEY) or 1) > 1)


def repeat_configs(cfg: RunConfig, done: Iterable[RunConfig], count: int = REPEAT_SEEDS) -> list[RunConfig]:
    """``count`` runs of ``cfg``'s configuration with seeds no run in ``done`` used yet.

    ``cfg``'s own seed comes first when it is free, then the smallest free
    seeds: what "repeat with 3 seeds" queues, runs the Runs page then groups.
    """
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_REPEATS:
        raise ConfigError("seeds", f"{count!r} is not a whole number of runs from 1 to {MAX_REPEATS}")
    key = group_key(cfg)
    used = {c.seed for c in done if group_key(c) == key}
    seeds = [cfg.seed] if cfg.seed not in used else []
    candidate = 0
    while len(seeds) < count:
        if candidate not in used and candidate not in seeds:
            seeds.append(candidate)
        candidate += 1
    return [cfg.replace(seed=s) for s in seeds]


def queue_repeats(
    registry: JobRegistry,
    cfg: RunConfig,
    done: Iterable[RunConfig],
    *,
    count: int = REPEAT_SEEDS,
    runs_dir: PathLike | None = None,
    data_root: PathLike | None = None,
    name: str | None = None,
) -> list[Job]:
    """Queue :func:`repeat_configs` in ``registry``; each run named ``<name> seed <s>`` when named.

    Seeds of ``done`` (the saved runs) and of the registry's queued or running
    jobs are taken: a second click queues three more seeds, not the same three.
    """
    pending = [j.config for j in registry.active() if isinstance(j.config, RunConfig)]
    return [
        registry.submit(
            c, runs_dir=runs_dir, data_root=data_root, name=f"{name} seed {c.seed}" if name else None
        )
        for c in repeat_configs(cfg, [*done, *pending], count)
    ]


def interval_text(mean: float | None, std: float | None, n: int, percent: bool = False) -> str:
    """``96.12% ± 0.15 (n=5)`` or a plain value when there is no spread."""
    if mean is None or not math.isfinite(mean):
        return "—"
    if percent:
        value = f"{mean:.2%}"
        return value if std is None else f"{value} ± {std * 100:.2f} (n={n})"
    return f"{mean:.4g}" if std is None else f"{mean:.4g} ± {std:.2g} (n={n})"
