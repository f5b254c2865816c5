"""What the fast CPU path buys: the same training with it on and off (``mnist_core.fast``), paired turns.

In one process, turns of ``steps`` training steps (after ``warm`` untimed
ones) alternate between the fast path on and off (``fast.set_enabled``), so
both meet the same moments of a host whose speed drifts. An "off" turn
starts from PyTorch's default matmul precision, as a process with
``MNIST_LAB_FAST_PATH=0`` trains; an "on" turn sets the precision the fast
path chose for the process. Each turn is timed by wall clock and by this
process's CPU time; the speed-up is the median of the paired ratios
(off / on). Per-layer statistics are left out of both (``layer_stats=False``).

    MNIST_DATA_DIR=../shared/data .venv/bin/python -m benchmarks.fast_path --repeats 5
    .venv/bin/python -m benchmarks.fast_path --hidden 1024 1024 --batch 1 64

Prints a JSON object per model and batch size, with the load average.
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

from mnist_core import fast
from mnist_core.config import RunConfig
from mnist_core.data import data_root, is_available, load_data
from mnist_core.train import train
from tests.support.synthetic import write_dataset

TORCH_DEFAULT_PRECISION = "highest"  # torch.get_float32_matmul_precision() in a fresh process


def timed_turn(cfg: RunConfig, data: Any, warm: int, steps: int, on: bool) -> tuple[float, float]:
    """Wall and CPU seconds of ``steps`` steps after ``warm`` untimed ones, the fast path ``on`` or off."""
    count, clock = {"n": 0}, {}

    def stop() -> bool:  # polled before each step
        count["n"] += 1
        if count["n"] == warm + 1:
            clock["start"] = (time.perf_counter(), time.process_time())
        if count["n"] > warm + steps:
            clock["end"] = (time.perf_counter(), time.process_time())
            return True
        return False

    fast.set_enabled(on)
    if not on:
        torch.set_float32_matmul_precision(TORCH_DEFAULT_PRECISION)
    try:
        train(cfg, data, should_stop=stop, layer_stats=False)
    finally:
        fast.set_enabled(None)
    (w0, c0), (w1, c1) = clock["start"], clock["end"]
    return w1 - w0, c1 - c0


def fast_path_speedup(
    root: Path, hidden: tuple[int, ...], batch: int, repeats: int = 5, steps: int = 300, warm: int = 30
) -> dict[str, Any]:
    """Paired turns on and off; medians of the per-turn ratios off / on (above 1: the fast path is faster)."""
    cfg = RunConfig(hidden=hidden, batch_size=batch, epochs=1, val_fraction=0.0)
    data = load_data(root=root, val_fraction=0.0)
    steps = min(steps, len(data.train) // batch - warm - 1)
    turns: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
    load_before = os.getloadavg()
    for r in range(repeats):
        order = ("on", "off") if r % 2 == 0 else ("off", "on")
        for name in order:
            turns[name].append(timed_turn(cfg, data, warm, steps, on=name == "on"))
    wall = [b[0] / a[0] for a, b in zip(turns["on"], turns["off"], strict=True)]
    cpu = [b[1] / a[1] for a, b in zip(turns["on"], turns["off"], strict=True)]
    return {
        "model": cfg.label(),
        "steps": steps,
        "repeats": repeats,
        "on_cpu_ms_per_step": round(statistics.median(t[1] for t in turns["on"]) / steps * 1e3, 3),
        "off_cpu_ms_per_step": round(statistics.median(t[1] for t in turns["off"]) / steps * 1e3, 3),
        "on_wall_ms_per_step": round(statistics.median(t[0] for t in turns["on"]) / steps * 1e3, 3),
        "off_wall_ms_per_step": round(statistics.median(t[0] for t in turns["off"]) / steps * 1e3, 3),
        "speedup_cpu": round(statistics.median(cpu), 3),
        "speedup_wall": round(statistics.median(wall), 3),
        "speedup_cpu_range": [round(min(cpu), 3), round(max(cpu), 3)],
        "load_average_before_after": [load_before, os.getloadavg()],
        "threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[512])
    parser.add_argument("--batch", type=int, nargs="+", default=[64])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = data_root()
        if not is_available("mnist", root):
            root = Path(tmp)
            write_dataset(root, n_train=60_000, n_test=10_000)
        for batch in args.batch:
            result = fast_path_speedup(root, tuple(args.hidden), batch, args.repeats, args.steps)
            print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
