"""Hold a training job at its first progress event until the test lets it go (not a test module).

A test that stops a job "while it trains" must not race it: a short run may
finish between the moment the test sees it running and the moment its stop
request lands, on a loaded machine. With the gate the job's thread waits
inside its first progress callback, so the run cannot end before the test has
asked it to stop; on release, its next check between steps sees the request.
"""

from __future__ import annotations

import threading

import pytest

from mnist_core.config import RunConfig
from mnist_core.jobs import Job

HOLD_S = 300  # the most a held job waits for release (a test that forgets it fails, never hangs)


class JobGate:
    """Holds the first job whose config is ``config`` (any job: None), once, at its first progress event."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, config: RunConfig | None = None) -> None:
        self.config = config
        self.held = threading.Event()
        self._release = threading.Event()
        original = Job._on_progress

        def on_progress(job: Job, event) -> None:
            original(job, event)
            if self.config in (None, job.config) and not self._release.is_set():
                self.held.set()
                self._release.wait(timeout=HOLD_S)

        monkeypatch.setattr(Job, "_on_progress", on_progress)

    def wait_held(self, timeout_s: float = 120) -> None:
        what = self.config.label() if self.config is not None else "any configuration"
        assert self.held.wait(timeout=timeout_s), f"no job of {what} started training"

    def release(self) -> None:
        self._release.set()
