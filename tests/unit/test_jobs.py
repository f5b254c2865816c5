"""JobRegistry helpers the Train page relies on: listing, concurrency at runtime, resume guard."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mnist_core.config import RunConfig
from mnist_core.errors import ConfigError, MnistLabError
from mnist_core.jobs import JobRegistry

LONG = RunConfig(hidden=(16,), epochs=500, batch_size=4)


def wait_for(condition, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_raising_max_concurrent_starts_waiting_jobs(runs_dir: Path, synthetic_data_dir: Path) -> None:
    registry = JobRegistry(max_concurrent=1)
    kw = {"runs_dir": runs_dir, "data_root": synthetic_data_dir}
    first, second, third = (registry.submit(LONG, **kw) for _ in range(3))
    try:
        wait_for(lambda: first.state == "running")
        assert registry.running() == [first] and registry.queued() == [second, third]
        registry.set_max_concurrent(2)
        wait_for(lambda: second.state == "running")
        assert registry.queued() == [third] and registry.max_concurrent == 2
        registry.set_max_concurrent(1)  # lowering it stops nothing
        assert {j.state for j in (first, second)} == {"running"}
        for bad in (0, 9, 1.5, True):
            with pytest.raises(ConfigError, match="max_concurrent"):
                registry.set_max_concurrent(bad)
    finally:
        for job in registry.jobs():
            job.stop()
        assert registry.wait(timeout=60)
    assert third.state == "stopped" and third.run_id is None  # cancelled while waiting


def test_a_run_cannot_be_resumed_twice_at_once(runs_dir: Path, synthetic_data_dir: Path) -> None:
    registry = JobRegistry()
    kw = {"runs_dir": runs_dir, "data_root": synthetic_data_dir}
    job = registry.submit(LONG, **kw)
    try:
        wait_for(lambda: job.run_id is not None and job.snapshot().step > 0)
        assert registry.job_for_run(job.run_id) is job
        with pytest.raises(MnistLabError, match="already queued or training"):
            registry.submit(LONG, resume_id=job.run_id, **kw)
    finally:
        job.stop()
        assert registry.wait(timeout=60)
    assert registry.job_for_run(job.run_id) is None
    resumed = registry.submit(LONG, resume_id=job.run_id, **kw)
    assert resumed.resume_id == job.run_id and registry.job_for_run(job.run_id) is resumed
    resumed.stop()
    assert registry.wait(timeout=60)
