"""Background work that is not a training run, as a :class:`Task` of the one job registry.

A :class:`Task` runs ``work(stop)`` on its own thread and ends "completed",
"stopped" or "failed" with a message for the user; the
:class:`~mnist_core.jobs.JobRegistry` starts them (:meth:`~mnist_core.jobs.JobRegistry.start_task`),
at most one running per kind and key. Two kinds exist: a dataset download
(:func:`start_download`, kind :data:`DOWNLOAD_KIND`) and a sweep's driver on
Ray (:func:`mnist_core.sweep_run.start_on_ray`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import MnistLabError

if TYPE_CHECKING:
    from .jobs import JobRegistry

PathLike = str | os.PathLike[str]
DOWNLOAD_KIND = "download"  # a Task that fetches a dataset (key: "<dataset>@<root>")

TaskWork = Callable[[threading.Event], "str | None"]


class Task:
    """Background work that is not a training run: a dataset download, a sweep's Ray driver.

    ``work(stop)`` runs on the task's thread and should return soon after
    ``stop`` is set; what it returns is a message for the user (trials that
    failed, say) or None. A :class:`MnistLabError` it raises ends the task
    "failed" with its message; so does any other exception, with its type.
    """

    def __init__(self, kind: str, key: str, work: TaskWork) -> None:
        self.kind, self.key = kind, key
        self._work = work
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._state = "running"
        self._error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"{kind}-{key}", daemon=True)

    def stop(self) -> None:
        """Ask the work to end (it checks the flag it was given)."""
        self._stop.set()

    @property
    def state(self) -> str:
        """"running", then "completed", "stopped" (a stop was asked) or "failed"."""
        with self._lock:
            return self._state

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def error(self) -> str | None:
        """What the user should know: the failure, or the message the work returned."""
        with self._lock:
            return self._error

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the work to end (tests, the CLI); False on timeout."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        state, error = "completed", None
        try:
            error = self._work(self._stop)
        except MnistLabError as exc:
            state, error = "failed", str(exc)
        except Exception as exc:  # a bug: keep the message for the page, never lose the thread silently
            state, error = "failed", f"{type(exc).__name__}: {exc}"
        if state == "completed" and self._stop.is_set():
            state = "stopped"
        with self._lock:
            self._state, self._error = state, error


# -- kinds of task ------------------------------------------------------------------------------


def _download_key(dataset: str, root: PathLike) -> str:
    return f"{dataset}@{os.path.abspath(root)}"


def start_download(registry: JobRegistry, dataset: str, root: PathLike) -> Task:
    """Download ``dataset`` (train and test splits) into ``root`` in the background; one per place."""
    from .data import load_split

    def work(_stop: threading.Event) -> None:
        for train in (True, False):  # a download cannot stop half-way: the stop is not checked
            load_split(dataset, train=train, root=root, download=True)

    return registry.start_task(DOWNLOAD_KIND, _download_key(dataset, root), work)


def download_task(registry: JobRegistry, dataset: str, root: PathLike) -> Task | None:
    """The latest download of ``dataset`` into ``root`` started in this process, if any."""
    return registry.task(DOWNLOAD_KIND, _download_key(dataset, root))
