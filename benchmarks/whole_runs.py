"""Benchmark parts that time whole runs: time to an accuracy, live-view overhead, memory.

Used by :mod:`benchmarks.bench` (parts 5-7); each function returns plain,
JSON-ready dicts, prints nothing and leaves no files behind.

5. :func:`time_to_accuracy`: wall clock from nothing loaded (the data cache
   emptied) to the first test evaluation that reaches a target accuracy.
6. :func:`live_view_overhead`: the same run with and without the Train
   page's progress wiring, as far as the core can reproduce it.
7. :func:`memory_profile`: peak RSS of one run, and RSS after each of several
   consecutive runs in one fresh process.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mnist_core.config import RunConfig
from mnist_core.curves import learning_curves
from mnist_core.data import clear_cache, load_data
from mnist_core.jobs import Job
from mnist_core.metrics import evaluate
from mnist_core.pipeline import run_training
from mnist_core.runs import TrainState
from mnist_core.train import train

LIVE_INTERVAL_S = 0.5  # the Train page's fragment redraws twice a second


def median_range(values: list[float]) -> dict[str, float]:
    """Median with min and max: the form of every repeated figure in the benchmark."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


# -- 5. time to a test accuracy ------------------------------------------------------------
def time_to_accuracy(
    cfg: RunConfig, root: Path, target: float, max_epochs: int = 5, checks_per_epoch: int = 4
) -> dict[str, Any]:
    """Seconds from an empty data cache to the first test evaluation at ``target`` accuracy or better.

    The clock covers loading the data (``clear_cache`` first) and training,
    the loop's own validation included; the test evaluations that decide
    when the target is reached are the measuring instrument, so the clock
    is paused while they run. The run is checked ``checks_per_epoch`` times
    an epoch: :func:`train` is stopped after that many steps and resumed
    from its state, which continues the same batches, so the training is
    that of one uninterrupted run. ``cfg.epochs`` is replaced by
    ``max_epochs`` (the schedules that depend on it then stretch over
    ``max_epochs``; the default configurations have none).
    """
    cfg = dataclasses.replace(cfg, epochs=max_epochs)
    clear_cache()
    start = time.perf_counter()
    data = load_data(cfg.dataset, cfg.val_fraction, cfg.seed, root)
    load_s = time.perf_counter() - start
    steps_per_epoch = math.ceil(len(data.train) / cfg.batch_size)
    chunk = max(1, math.ceil(steps_per_epoch / checks_per_epoch))
    x_test, y_test = data.test.tensors()
    paused, checks = 0.0, []
    state: TrainState | None = None
    while True:
        result = train(cfg, data, should_stop=_after_steps(chunk), resume=state)
        trained = time.perf_counter()
        accuracy = evaluate(result.model, x_test, y_test).accuracy
        state = result.state
        checks.append({
            "seconds": trained - start - paused,
            "epochs": state.epoch + state.step_in_epoch / steps_per_epoch,
            "test_accuracy": accuracy,
        })
        paused += time.perf_counter() - trained
        if accuracy >= target or result.status == "completed":
            break
    reached = checks[-1]["test_accuracy"] >= target
    return {
        "config": cfg.label(), "target": target, "reached": reached,
        "seconds": checks[-1]["seconds"] if reached else None,
        "epochs": checks[-1]["epochs"] if reached else None,
        "load_s": load_s, "checks": checks,
    }


def _after_steps(n: int) -> Callable[[], bool]:
    """A ``should_stop`` that lets ``n`` optimizer steps run, then stops the loop."""
    polls = {"n": 0}

    def stop() -> bool:
        polls["n"] += 1
        return polls["n"] > n

    return stop


# -- 6. the live view's overhead -------------------------------------------------------------
def live_view_overhead(cfg: RunConfig, root: Path, repeats: int) -> dict[str, Any]:
    """Training time of ``cfg`` run plain and with the Train page's wiring, alternated.

    ``plain``: :func:`run_training` with no progress callback, in a worker
    thread as the job registry runs it. ``wired``: a :class:`Job` (which
    records every progress event under its lock) and a reader thread that,
    twice a second, takes :meth:`Job.snapshot` and computes
    :func:`learning_curves` from it, as the page's live fragment does before
    drawing (the figures themselves are Plotly, which the core never
    imports: ``scripts/live_view_overhead.py`` adds them). The figure compared
    is the loop's own ``train_time_s``; the variants alternate which goes
    first, so a drift in the machine's load hits both alike.
    """
    plain_s, wired_s, reads = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        runs_dir = Path(tmp)
        _plain_run(cfg, root, runs_dir)  # warm-up: data cache, energy meter probe, kernels
        for i in range(repeats):
            order = (_plain_run, _wired_run) if i % 2 == 0 else (_wired_run, _plain_run)
            for variant in order:
                seconds, n = variant(cfg, root, runs_dir)
                (plain_s if variant is _plain_run else wired_s).append(seconds)
                if variant is _wired_run:
                    reads.append(n)
    paired = [w / p - 1 for p, w in zip(plain_s, wired_s, strict=True)]
    return {
        "config": cfg.label(), "plain_s": median_range(plain_s), "wired_s": median_range(wired_s),
        "overhead": statistics.median(wired_s) / statistics.median(plain_s) - 1,
        "paired_overhead": statistics.median(paired), "reads_per_run": statistics.median(reads),
    }


def _in_thread(target: Callable[[], None]) -> None:
    worker = threading.Thread(target=target, name="bench-job")
    worker.start()
    worker.join()


def _plain_run(cfg: RunConfig, root: Path, runs_dir: Path) -> tuple[float, int]:
    out: dict[str, float] = {}

    def work() -> None:
        out["s"] = run_training(cfg, runs_dir=runs_dir, data_root=root).summary["train_time_s"]

    _in_thread(work)
    return out["s"], 0


def _wired_run(cfg: RunConfig, root: Path, runs_dir: Path) -> tuple[float, int]:
    job = Job("bench", cfg, runs_dir, root)
    done = threading.Event()
    reads = {"n": 0}

    def reader() -> None:
        while not done.wait(LIVE_INTERVAL_S):
            if job.state == "running":
                learning_curves(list(job.snapshot().events))
                reads["n"] += 1

    polling = threading.Thread(target=reader, name="bench-live-view")
    polling.start()
    try:
        _in_thread(job.run)
    finally:
        done.set()
        polling.join()
    snap = job.snapshot()
    if snap.state != "completed":
        raise RuntimeError(f"the wired run ended {snap.state}: {snap.error}")
    return snap.summary["train_time_s"], reads["n"]


# -- 7. memory -------------------------------------------------------------------------------
def rss_mb() -> float:
    """Resident set size of this process now, in MiB (Linux /proc; else the peak so far)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """High-water RSS of this process, in MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def memory_profile(cfg: RunConfig, root: Path, runs: int = 20) -> dict[str, Any]:
    """Peak RSS of one run and RSS after each of ``runs`` consecutive runs, in a fresh process.

    A child process, so that the figures do not depend on what the benchmark
    did before (and the peak is that of this work, not of earlier parts).
    Each run is a full :func:`run_training` (train, measure, save), as the app
    does it. ``growth_mb`` is the RSS after the last run minus after the
    second (the first run also loads the data and warms the allocator up);
    ``slope_mb_per_run`` is a least-squares fit over runs 2..n.
    """
    repo = Path(__file__).resolve().parents[1]
    paths = [str(repo), str(repo / "src")]  # this package, and the library when it is not installed
    code = (
        "import json, sys; from pathlib import Path; from mnist_core.config import RunConfig; "
        "from benchmarks.whole_runs import _memory_child; "
        "print(json.dumps(_memory_child(RunConfig.from_dict(json.loads(sys.argv[1])), Path(sys.argv[2]), "
        "int(sys.argv[3]))))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [*paths, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(cfg.to_dict()), str(root), str(runs)],
        capture_output=True, text=True, env=env, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the memory benchmark's process failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _memory_child(cfg: RunConfig, root: Path, runs: int) -> dict[str, Any]:
    """Body of :func:`memory_profile`'s process: the runs, and RSS read after each."""
    gc.collect()
    baseline = rss_mb()
    after: list[float] = []
    peak_first = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        for i in range(runs):
            run_training(cfg, runs_dir=tmp, data_root=root)
            if i == 0:
                peak_first = peak_rss_mb()
            gc.collect()
            after.append(rss_mb())
    steady = after[1:] if len(after) > 2 else after
    return {
        "config": cfg.label(), "runs": runs, "baseline_mb": baseline, "peak_first_run_mb": peak_first,
        "peak_mb": peak_rss_mb(), "rss_after_each_mb": after,
        "growth_mb": after[-1] - steady[0], "slope_mb_per_run": _slope(steady),
    }


def _slope(values: list[float]) -> float:
    """Least-squares slope of ``values`` against their index (0 for fewer than two)."""
    if len(values) < 2:
        return 0.0
    return statistics.linear_regression(range(len(values)), values).slope
