"""Overhead of the Train page's live view on training speed (the issue allows 5%).

Trains the same configuration several times, alternating two variants, each
in a fresh worker thread as the job registry runs it:

- ``plain``: ``run_training(cfg, on_progress=None)``;
- ``wired``: the page's wiring: a :class:`mnist_core.jobs.Job` whose
  ``_on_progress`` appends every event, and a reader thread that, twice a
  second like the page's fragment, takes ``Job.snapshot()``, turns the events
  into curves and builds both Plotly figures and their JSON exactly as
  ``st.plotly_chart`` does (validate, then ``plotly.io.to_json``).

The figure compared is the training loop's own wall time (``train_time_s`` in
the summary: steps and validation, not the final test/latency/energy
measurements). Medians over the repeats, because the machine may be shared.

    MNIST_DATA_DIR=/path/to/data .venv/bin/python scripts/live_view_overhead.py --repeats 5

Without ``MNIST_DATA_DIR`` it generates a small synthetic MNIST in a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for ui.charts, the figures the page draws

import plotly.io  # noqa: E402
import plotly.tools  # noqa: E402

from mnist_core.config import RunConfig  # noqa: E402
from mnist_core.curves import learning_curves  # noqa: E402
from mnist_core.jobs import Job  # noqa: E402
from mnist_core.pipeline import run_training  # noqa: E402
from ui.charts import accuracy_figure, loss_figure  # noqa: E402

INTERVAL_S = 0.5  # the page's LIVE_INTERVAL_S


def redraw(job: Job) -> None:
    """What one run of the page's live fragment computes for a running job."""
    snap = job.snapshot()
    data = learning_curves(list(snap.events))
    for fig in (loss_figure(data), accuracy_figure(data)):
        checked = plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True)
        plotly.io.to_json(checked, validate=False)


def in_thread(target: object) -> float:
    """Run ``target`` in a new thread as the registry does; the process CPU seconds it took."""
    worker = threading.Thread(target=target, name="job")  # type: ignore[arg-type]
    cpu = time.process_time()
    worker.start()
    worker.join()
    return time.process_time() - cpu


def plain(cfg: RunConfig, data_root: Path, runs_dir: Path) -> tuple[float, float]:
    """Training wall time and the process CPU time of the whole run."""
    out: dict[str, float] = {}

    def work() -> None:
        info = run_training(cfg, runs_dir=runs_dir, data_root=data_root)
        out["train_s"] = info.summary["train_time_s"]

    cpu = in_thread(work)
    return out["train_s"], cpu


def wired(cfg: RunConfig, data_root: Path, runs_dir: Path) -> tuple[float, float, int, float]:
    """Training wall time, process CPU time (reader included), redraws done, mean seconds per redraw."""
    job = Job("overhead", cfg, runs_dir, data_root)
    done = threading.Event()
    redraws: list[float] = []

    def reader() -> None:
        next_tick = time.monotonic()
        while not done.is_set():
            next_tick += INTERVAL_S
            if job.state == "running":
                start = time.perf_counter()
                redraw(job)
                redraws.append(time.perf_counter() - start)
            done.wait(max(0.0, next_tick - time.monotonic()))

    polling = threading.Thread(target=reader, name="fragment")
    polling.start()
    try:
        cpu = in_thread(job.run)
    finally:
        done.set()
        polling.join()
    snap = job.snapshot()
    if snap.state != "completed":
        raise RuntimeError(f"the wired run ended {snap.state}: {snap.error}")
    mean = statistics.fmean(redraws) if redraws else 0.0
    return snap.summary["train_time_s"], cpu, len(redraws), mean


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, nargs="+", default=[512])
    args = parser.parse_args()
    cfg = RunConfig(hidden=tuple(args.hidden), epochs=args.epochs, batch_size=args.batch_size)

    with tempfile.TemporaryDirectory(prefix="live-view-overhead-") as tmp:
        data_root = Path(os.environ["MNIST_DATA_DIR"]) if os.environ.get("MNIST_DATA_DIR") else None
        if data_root is None:
            from tests.support.synthetic import write_dataset

            data_root = write_dataset(Path(tmp) / "data", n_train=10_000, n_test=1_000)
        runs_dir = Path(tmp) / "runs"
        print(f"{cfg.label()}, {cfg.epochs} epochs, data {data_root}, {args.repeats} repeats each")
        plain(cfg, data_root, runs_dir)  # warm-up: data load, codecarbon probe, kernels
        plain_s, wired_s, plain_cpu, wired_cpu, busy = [], [], [], [], []
        for i in range(args.repeats):
            # Alternate which variant goes first, so a drift in the machine's load hits both alike.
            if i % 2:
                w_s, w_cpu, n, mean = wired(cfg, data_root, runs_dir)
                p_s, p_cpu = plain(cfg, data_root, runs_dir)
            else:
                p_s, p_cpu = plain(cfg, data_root, runs_dir)
                w_s, w_cpu, n, mean = wired(cfg, data_root, runs_dir)
            plain_s.append(p_s)
            wired_s.append(w_s)
            plain_cpu.append(p_cpu)
            wired_cpu.append(w_cpu)
            busy.append(n * mean / w_s)
            print(
                f"  repeat {i + 1}: plain {p_s:.3f} s (CPU {p_cpu:.2f} s), wired {w_s:.3f} s "
                f"(CPU {w_cpu:.2f} s; {n} redraws, {mean * 1e3:.1f} ms each)"
            )
    print(f"machine load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for what, a, b in (("training wall time", plain_s, wired_s), ("process CPU time", plain_cpu, wired_cpu)):
        p, w = statistics.median(a), statistics.median(b)
        paired = statistics.median(y / x - 1 for x, y in zip(a, b, strict=True))
        print(
            f"{what}: median plain {p:.3f} s, median wired {w:.3f} s, ratio of medians {w / p - 1:+.1%}, "
            f"median of paired ratios {paired:+.1%}"
        )
    print(f"the redraws kept one thread busy {statistics.median(busy):.1%} of the training time (median)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
