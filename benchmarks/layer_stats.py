"""What recording the per-layer statistics costs (issue 23's target: under 3% of training time at batch 64).

The same training, in one process, with and without ``train(layer_stats=...)``
(:mod:`mnist_core.layerstats`), in turns, so both meet the same moments of a
host whose speed drifts. Each turn trains ``steps`` steps after ``warm``
untimed ones, with the app's time-based progress events (about every 0.25 s,
each one probing a step), and is timed by wall clock and by this process's
CPU time. The overhead is the median of the paired ratios, minus one.

    MNIST_DATA_DIR=../shared/data .venv/bin/python -m benchmarks.layer_stats --repeats 7
    .venv/bin/python -m benchmarks.layer_stats --hidden 1024 1024 1024   # a 3 x 1024 MLP

Prints a JSON object; ``overhead_wall`` and ``overhead_cpu`` are fractions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from mnist_core.config import RunConfig
from mnist_core.data import data_root, is_available, load_data
from mnist_core.layerstats import LayerStatsRecorder
from mnist_core.models import build_model
from mnist_core.train import PROGRESS_INTERVAL_S, make_optimizer, train
from tests.support.synthetic import write_dataset


def timed_steps(
    cfg: RunConfig, data: Any, warm: int, steps: int, layer_stats: bool
) -> tuple[float, float, int]:
    """Wall and CPU seconds of ``steps`` training steps after ``warm`` untimed ones; the step points made."""
    count, clock = {"n": 0}, {}
    events: list[Any] = []

    def stop() -> bool:  # polled before each step
        count["n"] += 1
        if count["n"] == warm + 1:
            clock["start"] = (time.perf_counter(), time.process_time())
            events.clear()
        if count["n"] > warm + steps:
            clock["end"] = (time.perf_counter(), time.process_time())
            return True
        return False

    train(cfg, data, should_stop=stop, on_progress=events.append, layer_stats=layer_stats)
    (w0, c0), (w1, c1) = clock["start"], clock["end"]
    return w1 - w0, c1 - c0, sum(e.kind == "step" for e in events)


def probe_cost(cfg: RunConfig, repeats: int = 50) -> dict[str, float]:
    """Seconds of one probe (weights copied, norms, a no-grad forward of one batch), and of one step.

    Timed in turns, in isolation: steadier than whole turns on a loaded host.
    The fastest of each is the nearest to a quiet machine; at one probe per
    progress event (every ``PROGRESS_INTERVAL_S`` of wall time) the share of
    training time it costs there is about ``probe_min_s / PROGRESS_INTERVAL_S``.
    """
    model = build_model(cfg)
    optimizer = make_optimizer(cfg, model)
    x, y = torch.randn(cfg.batch_size, 1, 28, 28), torch.randint(0, 10, (cfg.batch_size,))
    rec = LayerStatsRecorder(model, budget=1.0)  # every call probes (the budget would skip most)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    def probe() -> None:
        rec.before_step()
        rec.after_step(x)
        rec.take()

    step()  # gradients and optimizer state exist
    times: dict[str, list[float]] = {"probe": [], "step": []}
    for _ in range(repeats):
        for name, fn in (("probe", probe), ("step", step)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    out = {f"{k}_{f.__name__}_s": f(v) for k, v in times.items() for f in (min, statistics.median)}
    out["overhead_quiet_estimate"] = out["probe_min_s"] / PROGRESS_INTERVAL_S
    return out


def layer_stats_overhead(
    root: Path,
    hidden: tuple[int, ...] = (512,),
    batch: int = 64,
    repeats: int = 5,
    steps: int = 600,
    warm: int = 50,
) -> dict[str, Any]:
    """Paired turns with and without the statistics; medians of the per-turn ratios."""
    cfg = RunConfig(hidden=hidden, batch_size=batch, epochs=1, val_fraction=0.0)
    data = load_data(root=root, val_fraction=0.0)
    warm = 50
    steps = min(steps, len(data.train) // batch - warm - 1)
    turns: dict[str, list[tuple[float, float, int]]] = {"with": [], "without": []}
    for r in range(repeats):
        order = ("with", "without") if r % 2 == 0 else ("without", "with")
        for name in order:
            turns[name].append(timed_steps(cfg, data, warm, steps, layer_stats=name == "with"))
    wall = [a[0] / b[0] for a, b in zip(turns["with"], turns["without"], strict=True)]
    cpu = [a[1] / b[1] for a, b in zip(turns["with"], turns["without"], strict=True)]
    return {
        "model": cfg.label(),
        "steps": steps,
        "repeats": repeats,
        "with_wall_s": [round(t[0], 4) for t in turns["with"]],
        "without_wall_s": [round(t[0], 4) for t in turns["without"]],
        "with_cpu_s": [round(t[1], 4) for t in turns["with"]],
        "without_cpu_s": [round(t[1], 4) for t in turns["without"]],
        "probes_per_turn": statistics.median(t[2] for t in turns["with"]),
        "overhead_wall": statistics.median(wall) - 1,
        "overhead_cpu": statistics.median(cpu) - 1,
        **probe_cost(cfg),
        "load_average": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[512])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=600)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = data_root()
        if not is_available("mnist", root):
            root = Path(tmp)
            write_dataset(root, n_train=60_000, n_test=10_000)
        result = layer_stats_overhead(root, tuple(args.hidden), args.batch, args.repeats, args.steps)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
