"""Benchmark parts for what the user waits on (issue 28), each against a baseline in the same run.

8. ``quick``: the Home page's quick model (:func:`mnist_core.config.quick_default`)
   from start to a saved, measured run (:func:`mnist_core.pipeline.run_training`:
   training, test evaluation, costs, latency, energy, checkpoint), with the fast
   path on and off (:func:`mnist_core.fast.enabled`), in turns.
9. ``cnn_training``: seconds per epoch of CNN 32-64, LeNet-5 and the study's
   MLP-5 at batch 64: our engine against the blog-style pipeline of part 1
   (:func:`benchmarks.bench.reference_epoch_s`), beside the blog's published
   figure, extrapolated from ``steps`` timed steps. Then ``blog_accuracy``:
   the study's MLP-5 and LeNet-5 rows trained as the blog did (2 epochs,
   batch 64, Adam 1e-3; :func:`mnist_core.pipeline.run_training`, fast path
   on): test accuracy against the blog's, and the epochs' measured seconds.
10. ``cnn_throughput``: CNN 32-64 classifying the 10,000 test images
    (:func:`mnist_core.metrics.evaluate`), fast path on and off.
11. ``correction``: a correction end to end (:func:`mnist_core.teach.correct`,
    default settings, so the test set is evaluated before and after), on a
    quick model trained first, fast path on and off.
12. ``study``: the blog study without its batch-1 rows, **projected**: each
    row's epochs from ``steps`` timed steps, plus its validation passes and
    its run-end measurements timed once; fast path on (the process's threads,
    and one thread) and off; the blog's own times for the same rows beside it.

Each function returns plain, JSON-ready dicts and leaves no files behind.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from mnist_core import fast, study
from mnist_core.config import RunConfig, lenet5, quick_default
from mnist_core.costs import cost_report
from mnist_core.data import load_data
from mnist_core.infer import preprocess
from mnist_core.metrics import evaluate, latency_report
from mnist_core.models import build_model
from mnist_core.pipeline import run_training
from mnist_core.teach import correct

from .inference import canvas_drawing
from .training import ours_epoch_s, reference_epoch_s
from .whole_runs import median_range

SIDES = ("fast", "plain")  # the fast path on, and off: the baseline
CNN_32_64 = RunConfig(model="cnn", hidden=(128,))
TRAINING_ROWS = {
    "CNN 32-64": CNN_32_64,
    "LeNet-5": lenet5(),
    "MLP-5 784-512-256-120-84-10": RunConfig(hidden=(512, 256, 120, 84)),
}
TRAINING_BATCH = 64  # the blog's batch for LeNet-5 and MLP-5


@contextlib.contextmanager
def fast_path(on: bool) -> Iterator[None]:
    """The fast path on or off for this process while the block runs; then back to the environment."""
    fast.set_enabled(on)
    try:
        yield
    finally:
        fast.set_enabled(None)


def in_turns(work: Callable[[], Any], repeats: int) -> dict[str, list[Any]]:
    """``work()``'s result with the fast path on and off, ``repeats`` times each, the sides taking turns.

    The side that goes first alternates, so a drift in a shared machine's load hits both alike.
    """
    out: dict[str, list[Any]] = {side: [] for side in SIDES}
    for i in range(repeats):
        for side in SIDES if i % 2 == 0 else SIDES[::-1]:
            with fast_path(side == "fast"):
                out[side].append(work())
    return out


def _compare(seconds: dict[str, list[float]]) -> dict[str, Any]:
    fast_s, plain_s = (statistics.median(seconds[side]) for side in SIDES)
    return {"fast_s": median_range(seconds["fast"]), "plain_s": median_range(seconds["plain"]),
            "speedup": plain_s / fast_s}


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


# -- 8. the quick model ----------------------------------------------------------------------
def quick_model(root: Path, repeats: int) -> dict[str, Any]:
    """Seconds from start to a saved, measured run of the quick model; its test accuracy per side.

    The data is loaded once before the clock starts (the app keeps it cached
    after the first run), so the figure is the click-to-done a user sees.
    """
    cfg = quick_default()
    load_data(cfg.dataset, cfg.val_fraction, cfg.seed, root)
    with tempfile.TemporaryDirectory(prefix="bench-quick-") as tmp:
        runs = in_turns(lambda: _timed(lambda: run_training(cfg, runs_dir=tmp, data_root=root)), repeats)
    out = _compare({side: [s for s, _ in runs[side]] for side in SIDES})
    accuracy = {side: statistics.median(i.summary["test_accuracy"] for _, i in runs[side]) for side in SIDES}
    train_s = {side: statistics.median(i.summary["train_time_s"] for _, i in runs[side]) for side in SIDES}
    return {"config": cfg.label(), **out, "test_accuracy": accuracy, "train_s": train_s}


# -- 9. CNN and MLP-5 training per epoch -------------------------------------------------------
def cnn_training(root: Path, repeats: int, steps: int) -> list[dict[str, Any]]:
    """Seconds per epoch at batch 64, ours and the reference's, in turns, with the blog's figure."""
    published = {r.label: r.published.time_s for r in study.ROWS if r.published.time_kind == "epoch"}
    rows = []
    for name, cfg in TRAINING_ROWS.items():
        ours, ref = [], []
        for _ in range(repeats):
            ours.append(ours_epoch_s(cfg, TRAINING_BATCH, root, steps))
            ref.append(reference_epoch_s(cfg, TRAINING_BATCH, root, steps))
        blog = published.get(name)  # the blog has no CNN 32-64
        rows.append({
            "model": name, "batch": TRAINING_BATCH, "ours_s": median_range(ours),
            "reference_s": median_range(ref), "speedup": statistics.median(ref) / statistics.median(ours),
            "blog_s": blog, "extrapolated_from_steps": steps,
        })
    return rows


def blog_accuracy(root: Path) -> list[dict[str, Any]]:
    """The study's MLP-5 and LeNet-5 rows trained whole, as the blog did: test accuracy against the blog's.

    One run each (fast path on, as a user runs them), on the real test set
    when ``root`` has it; ``epoch_s`` is the run's own seconds per epoch
    (whole epochs, not extrapolated).
    """
    rows = []
    with fast_path(True), tempfile.TemporaryDirectory(prefix="bench-blog-") as tmp:
        for row in (r for r in study.ROWS if r.experiment == "lenet"):
            info = run_training(row.config, runs_dir=tmp, data_root=root)
            ours = 100 * info.summary["test_accuracy"]
            rows.append({
                "model": row.label, "epochs": row.config.epochs, "batch": row.config.batch_size,
                "test_accuracy_pct": ours, "blog_accuracy_pct": row.published.accuracy,
                "at_least_blog": ours >= row.published.accuracy,
                "epoch_s": info.summary["time_per_epoch_s"], "blog_epoch_s": row.published.time_s,
            })
    return rows


# -- 10. CNN test-set throughput ---------------------------------------------------------------
def cnn_throughput(root: Path, repeats: int) -> dict[str, Any]:
    """Images per second evaluating CNN 32-64 on the test set, fast path on and off (each builds its model).

    The model is untrained: the arithmetic does not depend on the weights.
    """
    x, y = load_data("mnist", 0.0, 0, root).test.tensors()

    def one_pass() -> float:
        model = build_model(CNN_32_64).eval()
        evaluate(model, x[:1000], y[:1000])  # warm-up: first calls, allocator
        return _timed(lambda: evaluate(model, x, y))[0]

    out = _compare(in_turns(one_pass, repeats))
    return {"model": "CNN 32-64", "images": len(y), **out,
            "fast_images_per_s": len(y) / out["fast_s"]["median"],
            "plain_images_per_s": len(y) / out["plain_s"]["median"]}


# -- 11. a correction --------------------------------------------------------------------------
def correction(root: Path, repeats: int) -> dict[str, Any]:
    """Seconds of :func:`teach.correct` on a trained quick model: a drawn "3", default settings."""
    x = preprocess(canvas_drawing())
    with tempfile.TemporaryDirectory(prefix="bench-correct-") as tmp:
        parent = run_training(quick_default(), runs_dir=tmp, data_root=root)
        correct(parent, x, 3, root=str(root))  # warm-up: the data cache, the first calls
        seconds = in_turns(lambda: _timed(lambda: correct(parent, x, 3, root=str(root)))[0], repeats)
    return {"config": parent.config.label(), **_compare(seconds)}


# -- 12. the study without batch-1 rows (a projection) ----------------------------------------
STUDY_SIDES = ("fast", "fast_1t", "plain")  # the fast path on the process's threads, on one thread, and off
STUDY_TARGET_S = 60.0  # issue 28's target for the study without its batch-1 rows


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """``n`` intra-op threads while the block runs (None: as they are); then the previous count."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def study_projection(root: Path, steps: int) -> dict[str, Any]:
    """The study's rows without batch 1, each projected: epochs from timed steps, plus its measurements.

    Per distinct row and side: ``epochs x`` (an epoch extrapolated from
    ``steps`` steps, on the 90% of the training images a run trains on, + one
    validation pass over 6,000 images) + the run-end work (test
    evaluation, costs, latency) timed once. Data loading is left out (cached
    after the first row). It is a projection, not the study run end to end.

    Sides (:data:`STUDY_SIDES`): the fast path on the process's threads (as
    the app trains), the fast path on one thread, and the fast path off.
    ``two_lanes_1t_s`` packs the rows' one-thread times onto two lanes (the
    longest first, each onto the emptier lane): what two rows at once, one
    thread each, would take if they did not slow each other down (they share
    the memory bus and the L3 cache, so it is a lower bound).
    ``two_lanes_measured_s`` projects them again that way, two lanes at once
    (:func:`measured_two_lanes`). The app trains one study row at a time, on
    the process's threads: the lanes say what training two at once would give.
    """
    data = load_data("mnist", 0.1, 0, root)
    x_val, y_val = data.val.tensors()
    x_test, y_test = data.test.tensors()
    rows = []
    distinct: dict[RunConfig, study.Row] = {}
    for row in study.rows(batch_one=False):
        distinct.setdefault(row.config, row)  # MLP 784-512-10 is in two experiments, trained once
    evaluation = (x_val, y_val, x_test, y_test)
    for cfg, row in distinct.items():
        parts: dict[str, dict[str, float]] = {}
        for side in STUDY_SIDES:
            with fast_path(side != "plain"), threads(1 if side == "fast_1t" else None):
                parts[side] = _row_seconds(cfg, root, steps, evaluation)
        blog = row.published.time_s
        if blog is not None and row.published.time_kind == "epoch":
            blog *= cfg.epochs
        rows.append({"row": row.label, "batch": cfg.batch_size, "epochs": cfg.epochs,
                     **{f"{side}_s": parts[side]["total_s"] for side in STUDY_SIDES},
                     "parts": parts, "blog_s": blog})
    total = {side: sum(r[f"{side}_s"] for r in rows) for side in STUDY_SIDES}
    one_thread = {cfg: r["fast_1t_s"] for cfg, r in zip(distinct, rows, strict=True)}
    with fast_path(True):
        lanes = measured_two_lanes(one_thread, lambda cfg: _row_seconds(cfg, root, steps, evaluation))
    labels = {cfg: row.label for cfg, row in distinct.items()}
    return {"rows": rows, **{f"{side}_s": total[side] for side in STUDY_SIDES},
            "two_lanes_1t_s": two_lanes(list(one_thread.values())),
            "two_lanes_measured_s": max(sum(s for _, s in lane) for lane in lanes),
            "lanes": [[{"row": labels[cfg], "total_s": s} for cfg, s in lane] for lane in lanes],
            "blog_s": sum(r["blog_s"] or 0.0 for r in rows), "projected_from_steps": steps,
            "threads": torch.get_num_threads(), "target_s": STUDY_TARGET_S}


def _row_seconds(
    cfg: RunConfig, root: Path, steps: int, evaluation: tuple[torch.Tensor, ...]
) -> dict[str, float]:
    """One row's projection: its epochs from ``steps`` timed steps, validation passes and run-end work."""
    x_val, y_val, x_test, y_test = evaluation
    epoch = ours_epoch_s(cfg, cfg.batch_size, root, steps) * (1 - cfg.val_fraction)  # of 60k images
    model = build_model(cfg).eval()
    val_s = _timed(lambda: evaluate(model, x_val, y_val))[0]
    end_s = _timed(lambda: _run_end(model, x_test, y_test))[0]
    return {"epoch_s": epoch, "val_s": val_s, "end_s": end_s, "total_s": cfg.epochs * (epoch + val_s) + end_s}


def measured_two_lanes(
    one_thread: dict[RunConfig, float], row_seconds: Callable[[RunConfig], dict[str, float]]
) -> list[list[tuple[RunConfig, float]]]:
    """Two rows at once, one thread each, measured: each lane's rows and their projected seconds.

    The rows are dealt onto two lanes as :func:`two_lanes` packs their
    one-thread seconds; each lane is a thread of this process that sets one
    intra-op thread for itself and projects its rows one after the other
    (``row_seconds``), while the other lane does the same, so the two share
    the cores, the memory bus and the interpreter as two study jobs would.
    """
    plan: list[list[RunConfig]] = [[], []]
    load = [0.0, 0.0]
    for cfg, seconds in sorted(one_thread.items(), key=lambda item: -item[1]):
        lane = load.index(min(load))
        plan[lane].append(cfg)
        load[lane] += seconds
    out: list[list[tuple[RunConfig, float]]] = [[], []]
    errors: list[BaseException] = []

    def run(lane: int) -> None:
        try:
            torch.set_num_threads(1)  # this thread's own OpenMP setting (and the default of new threads)
            for cfg in plan[lane]:
                out[lane].append((cfg, row_seconds(cfg)["total_s"]))
        except BaseException as err:  # re-raised in the caller
            errors.append(err)

    before = torch.get_num_threads()
    workers = [threading.Thread(target=run, args=(lane,), name=f"study-lane-{lane}") for lane in (0, 1)]
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        torch.set_num_threads(before)  # the default for threads started later, as it was
    if errors:
        raise errors[0]
    return out


def two_lanes(seconds: list[float]) -> float:
    """How long ``seconds``' jobs take on two lanes: the longest first, each onto the lane free first."""
    lanes = [0.0, 0.0]
    for s in sorted(seconds, reverse=True):
        lanes[lanes.index(min(lanes))] += s
    return max(lanes)


def _run_end(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """What :func:`mnist_core.pipeline.summarize` measures after the last step."""
    start = time.perf_counter()
    evaluate(model, x, y)
    cost_report(model)
    latency_report(model, x, throughput=len(y) / (time.perf_counter() - start))


# -- driver ------------------------------------------------------------------------------------
def run_waits(parts: list[int], root: Path, repeats: int, steps: int) -> dict[str, Any]:
    """Parts 8-12 among ``parts``, keyed as the report reads them."""
    out: dict[str, Any] = {}
    if 8 in parts:
        out["quick_model"] = quick_model(root, repeats)
    if 9 in parts:
        out["cnn_training"] = cnn_training(root, repeats, steps)
        out["blog_accuracy"] = blog_accuracy(root)
    if 10 in parts:
        out["cnn_throughput"] = cnn_throughput(root, max(repeats, 3))
    if 11 in parts:
        out["correction"] = correction(root, repeats)
    if 12 in parts:
        out["study"] = study_projection(root, steps)
    return out
