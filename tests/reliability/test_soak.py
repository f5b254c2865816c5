"""Soak: 50 short runs in one process through JobRegistry, as the server runs them; memory stays flat.

Each run trains, measures (test accuracy, FLOPs with fvcore, latency, energy
with codecarbon) and saves, on the generated data. The resident set size is
read after each run (``VmRSS``); the first runs pay for lazy imports and
caches, so growth is judged from run 10 to run 50. The series is printed
(``pytest -s``) for the record.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mnist_core import runs
from mnist_core.config import RunConfig
from mnist_core.jobs import JobRegistry

RUNS = 50
WARMUP = 10
MAX_GROWTH_MB = 50.0
CFG = RunConfig(hidden=(32,), epochs=1, batch_size=64)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc (Linux)")
def test_fifty_runs_in_one_process_keep_memory_flat(runs_dir: Path, synthetic_data_dir: Path) -> None:
    registry = JobRegistry()
    series: list[float] = []
    start = time.monotonic()
    for i in range(RUNS):
        job = registry.submit(CFG.replace(seed=i), runs_dir=runs_dir, data_root=synthetic_data_dir)
        assert registry.wait(timeout=120), f"run {i + 1} did not finish"
        snap = job.snapshot()
        assert snap.state == "completed", snap.error
        series.append(rss_mb())
    took = time.monotonic() - start
    print(f"\n{RUNS} runs in {took:.1f} s; RSS (MiB) after each run:")
    print(", ".join(f"{x:.0f}" for x in series))
    growth = series[-1] - series[WARMUP - 1]
    total = series[-1] - series[0]
    print(f"growth from run {WARMUP} to run {RUNS}: {growth:+.1f} MiB; from run 1: {total:+.1f} MiB")
    assert len(runs.list_runs(runs_dir)) == RUNS
    assert all(r.status == "completed" for r in runs.list_runs(runs_dir))
    assert len(registry.jobs()) == RUNS
    assert growth < MAX_GROWTH_MB, series
