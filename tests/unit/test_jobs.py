"""JobRegistry helpers the Train page relies on: listing, concurrency at runtime, resume guard."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mnist_core.config import RunConfig
from mnist_core.errors import ConfigError, MnistLabError
from mnist_core.jobs import Job, JobRegistry
from mnist_core.train import ProgressEvent

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


def _event(kind: str, step: int, loss: float, acc: float, val_acc: float | None = None) -> ProgressEvent:
    return ProgressEvent(
        kind=kind, epoch=1, epochs=2, step=step, total_steps=20, samples=step * 4, loss=loss,
        train_acc=acc, lr=1e-3, elapsed_s=1.0, samples_per_s=40.0, eta_s=1.0, val_acc=val_acc,
    )  # fmt: skip


def test_live_loss_and_accuracy_are_the_latest_steps_not_the_epochs_means() -> None:
    """After an epoch ends, its means (early steps included) would read as a sudden fall in accuracy."""
    job = Job("j1", LONG, None, None)
    assert job.snapshot().loss is None and job.snapshot().train_acc is None
    job._on_progress(_event("step", 5, 1.5, 0.40))
    snap = job.snapshot()
    assert (snap.loss, snap.train_acc, snap.val_acc) == (1.5, 0.40, None)
    job._on_progress(_event("step", 10, 0.03, 0.99))
    job._on_progress(_event("epoch", 10, 0.23, 0.94, val_acc=0.98))
    snap = job.snapshot()
    assert (snap.loss, snap.train_acc, snap.val_acc, snap.step) == (0.03, 0.99, 0.98, 10)
    only_epoch = Job("j2", LONG, None, None)  # progress that never made a step point
    only_epoch._on_progress(_event("epoch", 10, 0.23, 0.94, val_acc=0.98))
    assert (only_epoch.snapshot().loss, only_epoch.snapshot().train_acc) == (0.23, 0.94)


def test_a_running_job_says_whether_it_starts_trains_or_finishes() -> None:
    """Before the first event it starts (or resumes); after the last epoch's it tests and measures."""
    cfg = LONG.replace(epochs=2)
    job = Job("j1", cfg, None, None, resume_id="r1")
    assert job.snapshot().phase == "queued" and job.snapshot().resuming
    job._set(state="running")
    assert job.snapshot().phase == "starting"
    job._on_progress(_event("step", 5, 1.5, 0.40))
    job._on_progress(_event("epoch", 10, 0.2, 0.9, val_acc=0.9))  # epoch 1 of 2 ends: still training
    assert job.snapshot().phase == "training"
    last = ProgressEvent(**{**_event("epoch", 20, 0.1, 0.95, val_acc=0.95).to_dict(), "epoch": 2})
    job._on_progress(last)
    assert job.snapshot().phase == "finishing" and job.snapshot().eta_s == 1.0
    job.stop()
    assert job.snapshot().stopping
    job._set(state="completed")
    assert job.snapshot().phase == "ended" and not Job("j2", cfg, None, None).snapshot().resuming
