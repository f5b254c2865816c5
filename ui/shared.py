"""UI glue shared by the pages: process-wide resources and small renderers.

Not a page (app.py lists the pages). Nothing here trains, measures or reads
checkpoints itself: it wires Streamlit widgets to ``mnist_core`` calls.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from mnist_core import data as core_data
from mnist_core import estimate, report, sweeps
from mnist_core.config import RunConfig
from mnist_core.errors import MnistLabError
from mnist_core.jobs import Job, JobRegistry, JobSnapshot

SESSION = "session"  # persist_state=SESSION: a widget's value survives a switch to another page and back
FLASH_KINDS = {"error": st.error, "warning": st.warning, "info": st.info, "success": st.success}


def flash(key: str, kind: str, text: str) -> None:
    """Keep a callback's message under ``key`` for the script run that follows it.

    Callbacks run before the script, so they cannot draw it themselves;
    the page calls :func:`show_flash` with the same key. ``kind`` is one of
    :data:`FLASH_KINDS`.
    """
    st.session_state.setdefault(key, []).append((kind, text))


def show_flash(key: str) -> None:
    """Draw, once, the messages that callbacks left under ``key``."""
    for kind, text in st.session_state.pop(key, []):
        FLASH_KINDS[kind](text)


def literal(text: object) -> str:
    """``text`` (a run's or sweep's name) as a Markdown code span: shown exactly as typed.

    Messages, captions, labels and buttons are Markdown; a name is a user's or an imported
    file's text, and must not become a link, ``:red[colour]``, ``$maths$`` or an ``:emoji:``
    (backslash escapes would not stop the emoji: they are replaced inside text).
    """
    text = " ".join(str(text).splitlines())
    fence = "`"
    while fence in text:  # longer than any run of backticks in the name
        fence += "`"
    pad = " " if text[:1] in "` " or text[-1:] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}"


@st.cache_resource
def job_registry() -> JobRegistry:
    """The one job registry of this server process, shared by every tab and session."""
    return JobRegistry()


@st.cache_resource
def _probes() -> estimate.ProbeCache:
    """The server's probes: each configuration timed once, never again while a run trains."""
    return estimate.ProbeCache()


def probe_fn(registry: JobRegistry) -> estimate.ProbeFn:
    """How the Train and Sweeps pages time a configuration: the server's probes, taken once.

    A probe taken while a run of ``registry`` trains is marked busy (re-taken once nothing trains).
    """
    busy = bool(registry.running())
    return lambda cfg: _probes().get(cfg, busy)


# -- dataset download ---------------------------------------------------------


@dataclass
class DownloadState:
    """A background dataset download; the thread writes, the page reads."""

    dataset: str
    root: str
    thread: threading.Thread | None = None
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


class DatasetDownloads:
    """Downloads started from the UI, one per (dataset, root), off the script thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._downloads: dict[tuple[str, str], DownloadState] = {}

    def get(self, dataset: str, root: str) -> DownloadState | None:
        with self._lock:
            return self._downloads.get((dataset, root))

    def start(self, dataset: str, root: str) -> DownloadState:
        with self._lock:
            state = self._downloads.get((dataset, root))
            if state is not None and state.running:
                return state
            state = DownloadState(dataset, root)
            state.thread = threading.Thread(
                target=_download, args=(state,), name=f"download-{dataset}", daemon=True
            )
            self._downloads[(dataset, root)] = state
            state.thread.start()
            return state


def _download(state: DownloadState) -> None:
    # Worker thread: never calls st.*; the page polls ``state``.
    try:
        for train in (True, False):
            core_data.load_split(state.dataset, train=train, root=state.root, download=True)
    except MnistLabError as exc:
        state.error = str(exc)
    except Exception as exc:  # a bug: show it on the page rather than lose it with the thread
        state.error = f"{type(exc).__name__}: {exc}"


@st.cache_resource
def dataset_downloads() -> DatasetDownloads:
    return DatasetDownloads()


# -- sweeps sent to Ray ---------------------------------------------------------


@dataclass
class RaySweepState:
    """A sweep whose trials run on Ray; a driver thread waits for them and saves each run."""

    sweep_id: str
    stop: threading.Event
    thread: threading.Thread | None = None
    error: str | None = None


class RaySweeps:
    """Sweeps sent to a Ray cluster from the UI, one driver thread each (never calls st.*)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, RaySweepState] = {}

    def start(self, sweep: sweeps.Sweep, registry: JobRegistry, *, address: str | None, runs_dir: Path,
              data_root: Path) -> None:
        with self._lock:
            if self.running(sweep.id):
                return
            state = RaySweepState(sweep.id, threading.Event())
            state.thread = threading.Thread(
                target=_drive_ray, args=(state, sweep, registry, address, runs_dir, data_root),
                name=f"ray-{sweep.id}", daemon=True,
            )
            self._states[sweep.id] = state
            state.thread.start()

    def running(self, sweep_id: str) -> bool:
        state = self._states.get(sweep_id)
        return state is not None and state.thread is not None and state.thread.is_alive()

    def any_running(self) -> bool:
        return any(self.running(i) for i in list(self._states))

    def stop(self, sweep_id: str) -> int:
        """Cancel the sweep's pending trials; 1 if it was running on Ray, else 0."""
        state = self._states.get(sweep_id)
        if state is None or not self.running(sweep_id):
            return 0
        state.stop.set()
        return 1

    def error(self, sweep_id: str) -> str | None:
        state = self._states.get(sweep_id)
        return state.error if state is not None else None


def _drive_ray(state: RaySweepState, sweep: sweeps.Sweep, registry: JobRegistry, address: str | None,
               runs_dir: Path, data_root: Path) -> None:
    try:
        outcome = sweeps.run_on_ray(sweep, registry, address=address, runs_dir=runs_dir, data_root=data_root,
                                    should_stop=state.stop.is_set)
        state.error = outcome.summary()
    except MnistLabError as exc:
        state.error = str(exc)
    except Exception as exc:  # a bug: show it on the page rather than lose it with the thread
        state.error = f"{type(exc).__name__}: {exc}"


@st.cache_resource
def ray_sweeps() -> RaySweeps:
    return RaySweeps()


# -- renderers ----------------------------------------------------------------


def percent(value: float | None) -> str:
    """A share as the pages show it: one decimal, ``97.3%``."""
    return report.percent(value, 1)


def metric_row() -> DeltaGenerator:
    """A row for ``st.metric``s that wraps onto another line on a narrow screen.

    They sit side by side and share the width, as in ``st.columns``, which
    would instead cut their labels and values short ("40…") at 1024 px.
    """
    return st.container(horizontal=True, gap="medium")


RECENT_STEPS = "Mean over the latest training steps, not over the whole epoch."
VALIDATION = "On the validation split, after the last finished epoch."


def show_job_progress(snap: JobSnapshot, compact: bool = False) -> None:
    """Progress bar (with the time spent and left) and live metrics of one training job.

    The Train page's live view shows the learning rate too; ``compact`` (the
    Home page's quick model) leaves it out.
    """
    fraction, text = report.progress_line(snap)  # says what it does: starting, training, testing
    st.progress(fraction, text=text)
    if snap.state == "queued":
        return
    values: list[tuple[str, str, str | None]] = [
        ("Loss", "—" if snap.loss is None else f"{snap.loss:.4f}", RECENT_STEPS),
        ("Train accuracy", percent(snap.train_acc), RECENT_STEPS),
        ("Validation accuracy", percent(snap.val_acc), VALIDATION),
        ("Images / s", "—" if snap.samples_per_s is None else f"{snap.samples_per_s:,.0f}", None),
    ]
    if not compact:
        values.append(("Learning rate", "—" if snap.lr is None else f"{snap.lr:.3g}", None))
    with metric_row():
        for label, value, help_text in values:
            st.metric(label, value, help=help_text)


def latest_job(jobs: list[Job], config: RunConfig) -> Job | None:
    """The most recently submitted job with this configuration, if any (``jobs`` is oldest first)."""
    matching = [job for job in jobs if job.config == config]
    return matching[-1] if matching else None
