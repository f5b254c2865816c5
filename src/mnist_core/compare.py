"""Comparing runs: a flat table, filters, Pareto fronts, grids, confusion and galleries.

Pure functions over :class:`~mnist_core.runs.RunInfo` objects and the plain
dicts and lists read from a run's files; nothing here reads a file or imports
a UI. The Runs page builds its DataFrame and Plotly figures from what these
return, and tests check them without a server.

The table is a list of flat rows (``dict[str, scalar]``), one per run; the
keys are :data:`COLUMNS`. Values a run lacks (a failed run has no test
accuracy) are ``None``, and numbers that are not finite numbers in the files
are treated as missing, so a damaged summary never breaks a chart.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .curves import number
from .runs import RunInfo
from .scaling import train_flops
from .seeds import GROUP_KEY, group_key, group_rows

# key -> (label, kind). kind: "meta" (run.json), "config" (config.json) or "metric" (summary.json).
COLUMNS: dict[str, tuple[str, str]] = {
    "id": ("Run id", "meta"),
    "name": ("Name", "meta"),
    "status": ("Status", "meta"),
    "created": ("Created (UTC)", "meta"),
    "tags": ("Tags", "meta"),
    "notes": ("Notes", "meta"),
    "parent": ("Derived from", "meta"),
    "model": ("Model", "config"),
    "architecture": ("Architecture", "config"),
    "depth": ("Depth", "config"),  # hidden layers; a CNN's dense layers after its convolutions
    "width": ("Width", "config"),  # units of the widest of those layers
    "channels": ("Conv channels", "config"),  # a CNN's channels per conv stage, "32-64"; "" for an MLP
    "batch_size": ("Batch size", "config"),
    "epochs": ("Epochs", "config"),
    "optimizer": ("Optimizer", "config"),
    "lr": ("Learning rate", "config"),
    "schedule": ("Schedule", "config"),
    "activation": ("Activation", "config"),
    "dropout": ("Dropout", "config"),
    "batch_norm": ("Batch norm", "config"),
    "augment": ("Augment", "config"),
    "amp": ("bfloat16", "config"),
    "crop": ("Crop", "config"),
    "dataset": ("Dataset", "config"),
    "seed": ("Seed", "config"),
    "test_accuracy": ("Test accuracy", "metric"),
    "val_accuracy": ("Validation accuracy", "metric"),
    "test_loss": ("Test loss", "metric"),
    "epochs_done": ("Epochs done", "metric"),
    "train_time_s": ("Training time (s)", "metric"),
    "time_per_epoch_s": ("Time / epoch (s)", "metric"),
    "parameters": ("Parameters", "metric"),
    "macs": ("MACs / image", "metric"),
    "flops": ("FLOPs / image", "metric"),
    "train_flops": ("Training FLOPs", "metric"),  # 3 x FLOPs x images seen (scaling.train_flops)
    "weights_bytes": ("Weights (bytes)", "metric"),
    "checkpoint_bytes": ("Checkpoint (bytes)", "metric"),
    "latency_p50_ms": ("Latency p50 (ms)", "metric"),
    "latency_p95_ms": ("Latency p95 (ms)", "metric"),
    "throughput_images_s": ("Throughput (images/s)", "metric"),
    "energy_kwh": ("Energy (kWh)", "metric"),
    "co2_kg": ("CO2 (kg)", "metric"),
}
METRIC_KEYS = tuple(k for k, (_, kind) in COLUMNS.items() if kind == "metric")
# Costs an accuracy can be plotted against: lower is better for each.
COSTS = (
    "train_time_s",
    "time_per_epoch_s",
    "latency_p50_ms",
    "parameters",
    "macs",
    "flops",
    "train_flops",
    "weights_bytes",
    "checkpoint_bytes",
    "energy_kwh",
    "co2_kg",
)
# Numeric settings a chart can put on an axis or colour by.
NUMERIC_SETTINGS = ("depth", "width", "batch_size", "epochs", "lr", "dropout", "seed")
HIGHER_IS_BETTER = frozenset({"test_accuracy", "val_accuracy", "throughput_images_s", "epochs_done"})
SHARES = frozenset({"test_accuracy", "val_accuracy"})  # metrics that are shares (0-1), shown as percents


def label(key: str) -> str:
    """Human label of a column key (the key itself when unknown)."""
    return COLUMNS.get(key, (key, ""))[0]


# -- the table --------------------------------------------------------------------


def run_row(run: RunInfo) -> dict[str, Any]:
    """One flat row: settings, headline metrics and metadata of ``run``."""
    cfg, s, meta = run.config, run.summary, run.meta
    tags = meta.get("tags")
    row: dict[str, Any] = {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "created": run.created,
        "tags": sorted({str(t) for t in tags}) if isinstance(tags, list) else [],
        "notes": meta.get("notes") if isinstance(meta.get("notes"), str) else "",
        "parent": meta.get("parent") if isinstance(meta.get("parent"), str) else None,
        "model": cfg.model,
        "architecture": cfg.label(),
        "depth": cfg.depth,
        "width": max(cfg.hidden) if cfg.hidden else None,
        "channels": "-".join(map(str, cfg.cnn_channels)) if cfg.model == "cnn" else "",
        "batch_size": cfg.batch_size,
        "epochs": cfg.epochs,
        "optimizer": cfg.optimizer,
        "lr": cfg.lr,
        "schedule": cfg.schedule,
        "activation": cfg.activation if cfg.model == "mlp" else cfg.cnn_style,
        "dropout": cfg.dropout,
        "batch_norm": effective_batch_norm(cfg.model, cfg.batch_norm, cfg.cnn_style),
        "augment": cfg.augment,
        "amp": cfg.amp,
        "crop": cfg.crop,
        "dataset": cfg.dataset,
        "seed": cfg.seed,
        GROUP_KEY: group_key(cfg),  # not a column: equal for runs that differ only in seed
    }
    for key in METRIC_KEYS:
        row[key] = number(s.get(key))
    row["train_flops"] = train_flops(row["flops"], cfg.val_fraction, row["epochs_done"])
    return row


def effective_batch_norm(model: str, batch_norm: bool, cnn_style: str) -> bool:
    """Whether the network has batch norm: an MLP's setting; a modern CNN always, LeNet-5 never.

    ``RunConfig.batch_norm`` is the MLP's switch only; a CNN's style decides
    (``models.build_cnn``), so the table and its CSV report what was built.
    """
    return batch_norm if model == "mlp" else cnn_style == "modern"


def table(runs: Iterable[RunInfo]) -> list[dict[str, Any]]:
    """Rows of ``runs`` in the given order."""
    return [run_row(r) for r in runs]


def filter_rows(
    rows: Iterable[Mapping[str, Any]],
    text: str = "",
    statuses: Sequence[str] = (),
    models: Sequence[str] = (),
    tags: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Rows matching every given filter; an empty filter keeps everything.

    ``text`` matches (case-insensitively) the id, name, architecture, notes or a
    tag; ``tags`` keeps rows carrying at least one of them.
    """
    needle = text.strip().lower()
    out = []
    for row in rows:
        if statuses and row["status"] not in statuses:
            continue
        if models and row["model"] not in models:
            continue
        if tags and not set(tags) & set(row["tags"]):
            continue
        if needle:
            hay = " ".join([row["id"], row["name"], row["architecture"], row["notes"], *row["tags"]])
            if needle not in hay.lower():
                continue
        out.append(dict(row))
    return out


def sort_rows(rows: Iterable[Mapping[str, Any]], key: str, descending: bool = False) -> list[dict[str, Any]]:
    """Rows ordered by ``key``; missing values always last, ties broken by id."""
    rows = [dict(r) for r in rows]
    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]
    present.sort(key=lambda r: r["id"])
    present.sort(key=lambda r: _sort_key(r[key]), reverse=descending)
    missing.sort(key=lambda r: r["id"])
    return present + missing


def table_view(
    rows: Iterable[Mapping[str, Any]], text: str = "", statuses: Sequence[str] = (),
    models: Sequence[str] = (), tags: Sequence[str] = (), *, sort: str = "created", descending: bool = True,
    group: bool = False,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The Runs table as the user set it: the runs shown (:func:`filter_rows`, then :func:`sort_rows`),
    and the table's rows, where ``group`` merges runs that differ only in seed (``seeds.group_rows``)."""
    shown = sort_rows(filter_rows(rows, text, statuses, models, tags), sort, descending)
    return shown, (group_rows(shown, METRIC_KEYS) if group else shown)


def _sort_key(value: Any) -> Any:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return value


def all_tags(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    return sorted({t for row in rows for t in row["tags"]})


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """The table as CSV with a header of column keys; tags joined with ``;``."""
    keys = list(columns or COLUMNS)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(keys)
    for row in rows:
        writer.writerow([_csv_cell(row.get(k)) for k in keys])
    return buf.getvalue()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(map(str, value))
    return value


# -- accuracy against cost ---------------------------------------------------------


def pareto_front(points: Sequence[tuple[float | None, float | None]]) -> list[int]:
    """Indices of the points no other point beats: lower cost (x) and higher accuracy (y).

    Points with a missing coordinate are never on the front. Returned in
    increasing cost, so they draw as a staircase line. Equal points are all kept.
    """
    valid = [(x, y, i) for i, (x, y) in enumerate(points) if number(x) is not None and number(y) is not None]
    valid.sort(key=lambda p: (p[0], -p[1]))
    front: list[int] = []
    best = -math.inf
    last: tuple[float, float] | None = None
    for x, y, i in valid:
        if y > best or (last is not None and (x, y) == last):
            front.append(i)
            best = max(best, y)
            last = (x, y)
    return front


def colour_groups(rows: Sequence[Mapping[str, Any]], by: str) -> dict[str, list[int]]:
    """Indices of ``rows`` grouped by their value of the setting ``by``, named "Depth 2" and so on.

    A CNN's depth and width count only its dense layers after the convolutions:
    where MLPs and CNNs are mixed, LeNet-5 (depth 2) is not put with the 2-layer
    MLPs but beside them, as "CNN, depth 2". Numbers in order, then the rest.
    """
    mixed = by in ("depth", "width") and len({row.get("model", "mlp") for row in rows}) > 1
    keyed: dict[tuple[Any, ...], list[int]] = {}
    for i, row in enumerate(rows):
        value = row.get(by)
        order = (0, value) if isinstance(value, (int, float)) else (1, str(value))
        keyed.setdefault((row.get("model", "mlp") if mixed else "", *order), []).append(i)
    out: dict[str, list[int]] = {}
    for key in sorted(keyed, key=lambda k: (k[0] != "mlp", *k)):  # MLPs first, then by value
        model, value = key[0], key[2]
        name = f"{label(by)} {value}"
        out[f"{model.upper()}, {name[0].lower()}{name[1:]}" if model else name] = keyed[key]
    return out


# -- depth x width grids -------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """A value per (x, y) cell, for a heatmap: ``z[j][i]`` belongs to ``(xs[i], ys[j])``."""

    xs: list[Any]
    ys: list[Any]
    z: list[list[float | None]]  # (len(ys), len(xs)); None where no run has that cell
    counts: list[list[int]]  # runs behind each cell
    run_ids: list[list[list[str]]]  # which runs, per cell


def grid(
    rows: Sequence[Mapping[str, Any]],
    value: str,
    x: str = "depth",
    y: str = "width",
    agg: str = "best",
) -> Grid:
    """Aggregate ``value`` over the runs of each (x, y) cell.

    ``agg`` is "best" (max for accuracies, min for costs), "mean", "min" or
    "max". Rows missing x, y or the value are left out.
    """
    cells: dict[tuple[Any, Any], list[tuple[float, str]]] = {}
    for row in rows:
        vx, vy, v = row.get(x), row.get(y), number(row.get(value))
        if vx is None or vy is None or v is None:
            continue
        cells.setdefault((vx, vy), []).append((v, row["id"]))
    xs = sorted({k[0] for k in cells})
    ys = sorted({k[1] for k in cells})
    pick = _aggregator(value, agg)
    z: list[list[float | None]] = []
    counts: list[list[int]] = []
    ids: list[list[list[str]]] = []
    for vy in ys:
        z.append([pick([v for v, _ in cells[(vx, vy)]]) if (vx, vy) in cells else None for vx in xs])
        counts.append([len(cells.get((vx, vy), ())) for vx in xs])
        ids.append([[i for _, i in cells.get((vx, vy), ())] for vx in xs])
    return Grid(xs, ys, z, counts, ids)


def best_per_cell(
    rows: Sequence[Mapping[str, Any]], by: str = "test_accuracy", x: str = "depth", y: str = "width"
) -> list[Mapping[str, Any]]:
    """The run with the best ``by`` in each (x, y) cell (the first of equals): one run a cell.

    Grids of any value over these rows describe the same run in a cell, so an
    accuracy map and a cost map side by side never pair one run's accuracy
    with another's cost. Rows missing x, y or ``by`` are left out.
    """
    better = max if by in HIGHER_IS_BETTER else min
    cells: dict[tuple[Any, Any], list[Mapping[str, Any]]] = {}
    for row in rows:
        if row.get(x) is not None and row.get(y) is not None and number(row.get(by)) is not None:
            cells.setdefault((row[x], row[y]), []).append(row)
    return [better(members, key=lambda r: number(r.get(by))) for members in cells.values()]


SETTINGS_BESIDE_SHAPE = ("batch_size", "epochs", "lr", "optimizer", "schedule", "dropout", "dataset")


def varying_settings(
    rows: Sequence[Mapping[str, Any]], keys: Sequence[str] = SETTINGS_BESIDE_SHAPE
) -> list[str]:
    """Which of ``keys`` differ among ``rows``: what a depth x width map mixes in besides the shape."""
    return [k for k in keys if len({repr(r.get(k)) for r in rows}) > 1]


def _aggregator(value: str, agg: str) -> Any:
    if agg == "best":
        return max if value in HIGHER_IS_BETTER else min
    if agg == "mean":
        return lambda vs: sum(vs) / len(vs)
    if agg in ("min", "max"):
        return min if agg == "min" else max
    raise ValueError(f"unknown aggregation {agg!r}: best, mean, min or max")


# -- confusion and galleries ------------------------------------------------------


def confusion(summary: Mapping[str, Any], classes: int = 10) -> list[list[int]] | None:
    """The summary's confusion matrix if it is a ``classes x classes`` grid of counts, else None."""
    matrix = summary.get("confusion")
    if not isinstance(matrix, list) or len(matrix) != classes:
        return None
    out = []
    for row in matrix:
        if not isinstance(row, list) or len(row) != classes:
            return None
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in row):
            return None
        out.append(list(row))
    return out


def misclassified(summary: Mapping[str, Any], n_test: int | None = None) -> list[int]:
    """The test indices a run gets wrong, ascending, without duplicates or garbage.

    With ``n_test``, indices outside the test set are dropped too.
    """
    values = summary.get("misclassified")
    if not isinstance(values, list):
        return []
    ok = {v for v in values if isinstance(v, int) and not isinstance(v, bool) and v >= 0}
    if n_test is not None:
        ok = {v for v in ok if v < n_test}
    return sorted(ok)


def disagreement(wrong_a: Iterable[int], wrong_b: Iterable[int]) -> tuple[list[int], list[int]]:
    """Test digits where exactly one of two runs is wrong: (only A wrong, only B wrong).

    From the runs' misclassified lists alone; digits both get wrong (perhaps
    with different answers) are in neither list.
    """
    a, b = set(wrong_a), set(wrong_b)
    return sorted(a - b), sorted(b - a)
