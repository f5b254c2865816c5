"""JobRegistry helpers the Train page relies on: listing, concurrency at runtime, resume guard."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mnist_core.config import RunConfig
from mnist_core.errors import ConfigError, MnistLabError
from mnist_core.jobs import Job, JobRegistry
from mnist_core.train import ProgressEvent
from tests.support.waiting import wait_for

LONG = RunConfig(hidden=(16,), epochs=500, batch_size=4)


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


# -- tasks: the registry's other kinds of background work --------------------------------------


def test_a_task_runs_once_per_kind_and_key_and_reports_its_outcome() -> None:
    registry = JobRegistry()
    release = threading.Event()

    def work(stop: threading.Event) -> str | None:
        release.wait(timeout=60)
        return "2 trials failed" if not stop.is_set() else None

    first = registry.start_task("ray-sweep", "s1", work)
    assert registry.start_task("ray-sweep", "s1", work) is first  # the running one, not a second
    other = registry.start_task("ray-sweep", "s2", work)
    assert first.running and other.running and registry.jobs() == []  # no training slot taken
    other.stop()
    release.set()
    assert first.join(timeout=60) and other.join(timeout=60)
    assert (first.state, first.error) == ("completed", "2 trials failed")
    assert (other.state, other.error) == ("stopped", None)
    assert registry.task("ray-sweep", "s1") is first and registry.tasks("ray-sweep") == [first, other]
    assert registry.task("download", "s1") is None
    again = registry.start_task("ray-sweep", "s1", work)  # an ended task does not block a new one
    assert again is not first and again.join(timeout=60)


def test_a_task_that_raises_fails_with_a_message() -> None:
    registry = JobRegistry()

    def no_cluster(_stop: threading.Event) -> None:
        raise MnistLabError("Could not reach the Ray cluster at head:6379.")

    def bug(_stop: threading.Event) -> None:
        raise KeyError("x")

    a, b = registry.start_task("ray-sweep", "a", no_cluster), registry.start_task("ray-sweep", "b", bug)
    assert a.join(timeout=60) and b.join(timeout=60)
    assert (a.state, a.error) == ("failed", "Could not reach the Ray cluster at head:6379.")
    assert (b.state, b.error) == ("failed", "KeyError: 'x'")


def test_a_download_is_a_task_of_the_registry(tmp_path, monkeypatch) -> None:
    from mnist_core import data, tasks

    fetched: list[tuple[str, bool, str]] = []
    monkeypatch.setattr(data, "load_split",
                        lambda ds, train, root, download: fetched.append((ds, train, root)))
    task = tasks.start_download(JobRegistry(), "mnist", tmp_path)
    assert task.join(timeout=60) and task.state == "completed" and task.error is None
    assert fetched == [("mnist", True, tmp_path), ("mnist", False, tmp_path)]


def test_jobs_running_at_once_share_the_threads_instead_of_each_taking_them_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a 6-thread registry: a job alone trains on 6, two at once on 3 each, and back (issue 28)."""
    from collections import defaultdict

    import torch

    from mnist_core import jobs

    seen: dict[str, int] = {}
    release: defaultdict[str, threading.Event] = defaultdict(threading.Event)
    point = ProgressEvent("step", 1, 1, 1, 10, 4, 1.0, 0.5, 1e-3, 0.1, 40.0, 1.0)

    class Done:
        status, summary = "completed", {}

    def fake_training(cfg, *, on_start, on_progress, **kwargs):  # a run whose progress events we drive
        job_id = threading.current_thread().name
        on_start(f"run-{job_id}")
        while not release[job_id].wait(0.01):
            on_progress(point)
            seen[job_id] = torch.get_num_threads()  # what its steps would train on
        return Done()

    monkeypatch.setattr(jobs, "run_training", fake_training)
    before = torch.get_num_threads()
    registry = JobRegistry(max_concurrent=2, threads=6)
    try:
        a = registry.submit(LONG)
        wait_for(lambda: seen.get(a.id) == 6)
        b = registry.submit(LONG)
        wait_for(lambda: seen.get(a.id) == 3 and seen.get(b.id) == 3)  # a follows when b starts
        c = registry.submit(LONG)
        assert c.state == "queued" and registry.threads_per_job() == 3
        release[a.id].set()
        wait_for(lambda: seen.get(c.id) == 3)  # c took a's slot, beside b
        release[b.id].set()
        wait_for(lambda: seen.get(c.id) == 6)  # alone again: all six
    finally:
        for job_id in ("job-1", "job-2", "job-3"):
            release[job_id].set()
        assert registry.wait(timeout=60)
        torch.set_num_threads(before)


def test_a_page_can_wait_for_a_new_runs_folder_but_never_for_a_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    """wait_begun: True once the run folder exists or the job ended; False at once for a queued job."""
    from mnist_core import jobs

    may_start = threading.Event()
    release = threading.Event()

    class Done:
        status, summary = "completed", {}

    def fake_training(cfg, *, on_start, **kwargs):
        if cfg.hidden == (13,):
            raise MnistLabError("no data here")  # ends before any folder
        may_start.wait(timeout=60)
        on_start(f"run-{threading.current_thread().name}")
        release.wait(timeout=60)
        return Done()

    monkeypatch.setattr(jobs, "run_training", fake_training)
    registry = JobRegistry(max_concurrent=1)
    try:
        first = registry.submit(LONG)
        queued = registry.submit(LONG)
        assert not registry.wait_begun(queued, timeout=0)  # waits for a slot: no waiting on it
        assert not registry.wait_begun(first, timeout=0.05)  # no folder yet
        may_start.set()
        assert registry.wait_begun(first, timeout=30) and first.run_id == f"run-{first.id}"
        release.set()
        assert registry.wait(timeout=60)
        failing = registry.submit(LONG.replace(hidden=(13,)))
        assert failing.wait_begun(timeout=30)  # it ended: a page waits no longer
        assert registry.wait(timeout=60)
        drawn = registry.submit(LONG, begin_wait=30)  # what a page's click does: submit, then wait
        assert drawn.run_id == f"run-{drawn.id}"
        assert registry.wait(timeout=60) and failing.state == "failed" and failing.run_id is None
    finally:
        may_start.set()
        release.set()
        registry.wait(timeout=60)


@pytest.mark.parametrize(
    ("name", "title"),
    [
        (None, "MLP 784-64-10 bs1"),
        ("A-1x64-bs1", "A-1x64-bs1 (MLP 784-64-10 bs1)"),  # the name typed on the Train page, and what it is
        ("MLP 784-64-10 bs1 seed 0 (Reproduce the study)", "MLP 784-64-10 bs1 seed 0 (Reproduce the study)"),
    ],
)
def test_a_job_is_called_by_the_name_the_user_gave_it(tmp_path: Path, name: str | None, title: str) -> None:
    """The live panel and the queue said "Training now: MLP 784-64-10 bs1" for a run named A-1x64-bs1."""
    job = Job("job-1", RunConfig(hidden=(64,), batch_size=1), tmp_path, tmp_path, name=name)
    assert job.title == title
    assert job.snapshot().label == title
