"""Background work: a queue of training jobs and other tasks that outlive any one browser tab.

A :class:`JobRegistry` runs :func:`mnist_core.pipeline.run_training` on
worker threads, at most ``max_concurrent`` at a time, the rest waiting in
order. Workers write progress into their :class:`Job` under a lock; any
reader (a page fragment, a test) takes a consistent :meth:`Job.snapshot`.

The same registry runs the other kinds of background work, each a
:class:`Task` on its own thread (they train nothing here, so they take no
training slot), at most one running per kind and key: a dataset download
(:func:`mnist_core.tasks.start_download`) and a sweep's driver on Ray
(:func:`mnist_core.sweep_run.start_on_ray`); :mod:`mnist_core.tasks` holds the
:class:`Task` and the downloads. Nothing here knows about Streamlit: the app
keeps one registry per server.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .config import RunConfig
from .errors import ConfigError, MnistLabError
from .pipeline import run_training
from .tasks import Task, TaskWork
from .train import ProgressEvent

PathLike = str | os.PathLike[str]
ACTIVE = ("queued", "running")
# What a running job is doing (JobSnapshot.phase): before its first step (loading the data, building
# the model, reading a checkpoint), training, or after its last step (testing, measuring, saving).
PHASES = ("queued", "starting", "training", "finishing", "ended")
MAX_CONCURRENT = 8  # more parallel jobs than this only slow each other down on a CPU


@dataclass(frozen=True)
class JobSnapshot:
    """A consistent copy of a job's state at one moment."""

    id: str
    label: str
    state: str  # "queued", "running", "completed", "stopped" or "failed"
    run_id: str | None
    epoch: int  # epoch in progress (1-based) or last finished
    epochs: int
    step: int
    total_steps: int
    fraction: float  # 0..1 of all steps
    loss: float | None  # mean training loss of the latest steps (the last "step" event)
    train_acc: float | None  # likewise
    val_acc: float | None
    lr: float | None
    samples_per_s: float | None
    elapsed_s: float
    eta_s: float | None
    error: str | None
    summary: dict[str, Any] = field(default_factory=dict)
    events: tuple[ProgressEvent, ...] = ()
    phase: str = "training"  # one of PHASES
    resuming: bool = False  # it continues a saved run (from its checkpoint)
    stopping: bool = False  # a stop was asked for: it ends after the current step, then tests and saves

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


class Job:
    """One training job; its progress is written by its worker thread only."""

    def __init__(
        self,
        job_id: str,
        cfg: RunConfig,
        runs_dir: PathLike | None,
        data_root: PathLike | None,
        name: str | None = None,
        resume_id: str | None = None,
        tags: tuple[str, ...] = (),
    ) -> None:
        self.id, self.config = job_id, cfg
        self._kwargs: dict[str, Any] = {
            "runs_dir": runs_dir, "data_root": data_root, "name": name, "tags": tags,
        }
        self._resume_id = resume_id
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._begun = threading.Event()  # its run folder exists, or it ended without one
        self._state = "queued"
        self._run_id: str | None = resume_id
        self._events: list[ProgressEvent] = []
        self._error: str | None = None
        self._summary: dict[str, Any] = {}
        self._started: float | None = None
        self._finished: float | None = None
        self._threads: Callable[[], int] | None = None

    def stop(self) -> None:
        """Ask the job to end between two steps (or never start, if queued)."""
        self._stop.set()
        with self._lock:
            if self._state == "queued":
                self._state = "stopped"

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def state(self) -> str:
        """The current state alone: cheaper than a snapshot, which copies every event."""
        with self._lock:
            return self._state

    @property
    def run_id(self) -> str | None:
        """The run this job trains (known once started), or resumes (known at once)."""
        with self._lock:
            return self._run_id

    @property
    def tags(self) -> tuple[str, ...]:
        """Tags given at submission (a sweep's jobs carry its tag, resumed ones too)."""
        return tuple(self._kwargs["tags"])

    @property
    def resume_id(self) -> str | None:
        """The run this job continues, or None for a new run."""
        return self._resume_id

    @property
    def title(self) -> str:
        """What the pages call it: the name the user typed, with the architecture when the name lacks it."""
        label = self.config.label()
        name = self._kwargs.get("name")
        if not name or label in name:
            return name or label
        return f"{name} ({label})"

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            events = tuple(self._events)
            state, run_id, error, summary = self._state, self._run_id, self._error, dict(self._summary)
            started, finished = self._started, self._finished
        last = events[-1] if events else None
        last_epoch = next((e for e in reversed(events) if e.kind == "epoch"), None)
        # Loss and accuracy of the latest steps: an epoch event's are means over the whole epoch,
        # which after the first one read as a sudden fall (99% on the last steps, 94% for the epoch).
        recent = next((e for e in reversed(events) if e.kind == "step"), last)
        cfg = self.config
        total = last.total_steps if last else 0
        elapsed = last.elapsed_s if last else 0.0
        if started is not None and last is None:
            elapsed = (finished or time.monotonic()) - started
        return JobSnapshot(
            phase=_phase(state, last, cfg.epochs), resuming=self._resume_id is not None,
            stopping=self._stop.is_set(),
            id=self.id, label=self.title, state=state, run_id=run_id,
            epoch=last.epoch if last else 0, epochs=cfg.epochs, step=last.step if last else 0,
            total_steps=total, fraction=min(1.0, last.step / total) if last and total else 0.0,
            loss=recent.loss if recent else None, train_acc=recent.train_acc if recent else None,
            val_acc=last_epoch.val_acc if last_epoch else None, lr=last.lr if last else None,
            samples_per_s=last.samples_per_s if last else None, elapsed_s=elapsed,
            eta_s=last.eta_s if last and state == "running" else None,
            error=error, summary=summary, events=events,
        )

    # -- worker side ---------------------------------------------------------
    def _set(self, **changes: Any) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(self, f"_{key}", value)

    def _on_progress(self, event: ProgressEvent) -> None:
        with self._lock:
            self._events.append(event)
        self._fit_threads()

    def _fit_threads(self) -> None:
        """On the job's thread: train on the threads its registry gives it now (OpenMP counts per thread)."""
        if self._threads is not None:
            n = self._threads()
            if torch.get_num_threads() != n:
                torch.set_num_threads(n)

    def run(self, threads: Callable[[], int] | None = None) -> None:
        """Train to the end; every outcome is recorded, nothing escapes the thread.

        ``threads()``: how many CPU threads to train on, asked again at each
        progress event (:meth:`JobRegistry.threads_per_job`); None: as they are.
        """
        try:
            self._train(threads)
        finally:
            self._begun.set()

    def wait_begun(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s until the run folder exists or the job has ended; whether it did."""
        return self._begun.wait(timeout)

    def _begin(self, run_id: str) -> None:
        self._set(run_id=run_id)
        self._begun.set()

    def _train(self, threads: Callable[[], int] | None) -> None:
        if self._stop.is_set():
            self._set(state="stopped", finished=time.monotonic())
            return
        self._threads = threads
        self._fit_threads()
        self._set(state="running", started=time.monotonic())
        try:
            info = run_training(
                None if self._resume_id else self.config,
                resume_id=self._resume_id,
                on_start=self._begin,
                on_progress=self._on_progress,
                should_stop=self._stop.is_set,
                **self._kwargs,
            )
            self._set(state=info.status, summary=info.summary, finished=time.monotonic())
        except MnistLabError as exc:
            self._set(state="failed", error=str(exc), finished=time.monotonic())
        except Exception as exc:  # a bug: keep the message for the page, never lose the thread silently
            self._set(state="failed", error=f"{type(exc).__name__}: {exc}", finished=time.monotonic())


def _phase(state: str, last: ProgressEvent | None, epochs: int) -> str:
    """Starting before the first progress event, finishing after the last epoch's (see :data:`PHASES`).

    After the last epoch the pipeline still tests the model, measures its
    latency and costs and saves it: seconds in which the training ETA reads 0.
    """
    if state in ("queued", "running"):
        if state == "queued":
            return "queued"
        if last is None:
            return "starting"
        return "finishing" if last.kind == "epoch" and last.epoch >= epochs else "training"
    return "ended"


class JobRegistry:
    """A FIFO of training jobs, ``max_concurrent`` of them running at once, and background tasks.

    Jobs running at once share the CPU threads the process had when the
    registry was made (``threads``): each trains on ``threads // n`` of them,
    ``n`` the jobs running, never fewer than one, and follows ``n`` as jobs
    start and end (at its next progress event, ~4 a second). Two runs at
    once on 2 cores then train on one thread each instead of four threads on
    two cores: the blog study without its batch-1 rows, two rows at once,
    measured 58.1 s against 76.9 s one row at a time on two threads
    (benchmark part 12, 2026-12-05, quiet). A thread count is the job's own
    (OpenMP's setting is per thread); it also becomes the process's default
    for threads made later.
    """

    def __init__(self, max_concurrent: int = 1, threads: int | None = None) -> None:
        self.max_concurrent = max_concurrent
        self.threads = threads or torch.get_num_threads()
        self._tasks: dict[tuple[str, str], Task] = {}
        self._jobs: list[Job] = []
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def submit(
        self,
        cfg: RunConfig,
        *,
        runs_dir: PathLike | None = None,
        data_root: PathLike | None = None,
        name: str | None = None,
        resume_id: str | None = None,
        tags: tuple[str, ...] = (),
        begin_wait: float = 0.0,
    ) -> Job:
        """Queue a run (or the resumption of ``resume_id``); it starts when a slot is free.

        Refuses to resume a run that a queued or running job of this registry already trains.
        ``begin_wait``: when it starts at once, wait up to that many seconds for its run folder
        (:meth:`wait_begun`), so the page that queued it can draw it with its run id.
        """
        if resume_id is not None and self.job_for_run(resume_id) is not None:
            raise MnistLabError(f"Run {resume_id} is already queued or training.")
        with self._lock:
            job = Job(f"job-{next(self._ids)}", cfg, runs_dir, data_root, name, resume_id, tags)
            self._jobs.append(job)
        self._fill_slots()
        if begin_wait > 0:
            self.wait_begun(job, begin_wait)
        return job

    def jobs(self) -> list[Job]:
        """All jobs of this process, oldest first."""
        with self._lock:
            return list(self._jobs)

    def get(self, job_id: str) -> Job | None:
        return next((j for j in self.jobs() if j.id == job_id), None)

    def active(self) -> list[Job]:
        return [j for j in self.jobs() if j.state in ACTIVE]

    def running(self) -> list[Job]:
        """Jobs training now, oldest first."""
        return [j for j in self.jobs() if j.state == "running"]

    def queued(self) -> list[Job]:
        """Jobs waiting for a slot, in the order they will start."""
        return [j for j in self.jobs() if j.state == "queued"]

    def job_for_run(self, run_id: str) -> Job | None:
        """The queued or running job that trains or resumes ``run_id``, if any."""
        return next((j for j in self.active() if run_id in (j.run_id, j.resume_id)), None)

    def set_max_concurrent(self, n: int) -> None:
        """Allow ``n`` jobs at once from now on; a larger ``n`` starts waiting jobs at once.

        Lowering it stops nothing: running jobs finish, and the queue waits until
        fewer than ``n`` run.
        """
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CONCURRENT:
            raise ConfigError("max_concurrent", f"{n!r} is not an integer in [1, {MAX_CONCURRENT}]")
        with self._lock:
            self.max_concurrent = n
        self._fill_slots()

    def _fill_slots(self) -> None:
        with self._lock:
            queued = [j for j in self._jobs if j.id not in self._running and j.state == "queued"]
            while queued and len(self._running) < self.max_concurrent:
                job = queued.pop(0)
                self._running.add(job.id)
                threading.Thread(target=self._work, args=(job,), name=job.id, daemon=True).start()

    def wait_begun(self, job: Job, timeout: float) -> bool:
        """Wait up to ``timeout`` s for ``job``'s run folder (or its end); False if it waits for a slot.

        A page that queues a run and draws it at once would otherwise draw it
        without its run id, then rerun a moment later when the id appears: on
        a warm server (the data cached) the folder exists within milliseconds.
        """
        with self._lock:
            has_slot = job.id in self._running
        return has_slot and job.wait_begun(timeout)

    def threads_per_job(self) -> int:
        """The threads each running job trains on now: :attr:`threads` shared by the jobs running."""
        with self._lock:
            return max(1, self.threads // max(1, len(self._running)))

    def _work(self, job: Job) -> None:
        try:
            job.run(threads=self.threads_per_job)
        finally:
            with self._lock:
                self._running.discard(job.id)
            self._fill_slots()

    # -- tasks: background work of other kinds ---------------------------------
    def start_task(self, kind: str, key: str, work: TaskWork) -> Task:
        """Run ``work`` on its own thread, unless a task of this kind and key runs already (then that one)."""
        with self._lock:
            task = self._tasks.get((kind, key))
            if task is not None and task.running:
                return task
            task = Task(kind, key, work)
            self._tasks[(kind, key)] = task
        task._thread.start()
        return task

    def task(self, kind: str, key: str) -> Task | None:
        """The latest task of this kind and key (running or ended), if any."""
        with self._lock:
            return self._tasks.get((kind, key))

    def tasks(self, kind: str) -> list[Task]:
        """This kind's latest task per key, oldest first."""
        with self._lock:
            return [t for (k, _), t in self._tasks.items() if k == kind]

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no job is queued or running (tests, the CLI); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.active():
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True
