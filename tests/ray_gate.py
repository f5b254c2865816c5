"""Hold a Ray trial at its first progress event until a condition holds (not a test module).

A Ray trial runs in another process, so :mod:`job_gate`'s monkeypatch cannot
reach it: the gate travels with the trial as its ``hook`` (pickled by value,
so workers need not import this file) and talks to the test through files in
a folder both see. A held trial cannot end before the test has done what it
wanted to do "while the trial trains" (ask a stop, kill a node).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

HOLD_S = 300  # the most a held trial waits (a test that forgets to release it fails, never hangs)
POLL_S = 0.05


class RayGate:
    """``hook`` for :func:`mnist_core.raytrials.run_trials`.

    Trials are numbered as their first progress event arrives (0, 1, ...);
    those numbered ``skip`` to ``skip + limit - 1`` write ``held-<n>`` (its
    content: the Ray node id) in ``folder`` and wait there until ``release``
    says so: ``"stop"`` (the driver's stop has reached the trial) or ``"file"``
    (the test called :meth:`open`). ``only_node``: hold only trials on that node.
    """

    def __init__(self, folder: Path, release: str = "file", limit: int = 1, skip: int = 0,
                 only_node: str | None = None) -> None:
        self.folder, self.release, self.limit, self.skip = str(folder), release, limit, skip
        self.only_node = only_node
        self._seen = False

    def __call__(self, _event: object) -> None:
        if self._seen:
            return
        self._seen = True  # this copy of the gate lives in one trial: later events pass
        import ray

        node = ray.get_runtime_context().get_node_id()
        if self.only_node is not None and node != self.only_node:
            return
        n = self._arrive()
        if not self.skip <= n < self.skip + self.limit:
            return
        tmp = Path(self.folder, f".held-{n}")
        tmp.write_text(node)
        tmp.replace(Path(self.folder, f"held-{n}"))  # whole or absent for the test
        deadline = time.monotonic() + HOLD_S
        while time.monotonic() < deadline and not self._released():
            time.sleep(POLL_S)  # polls the condition; the deadline only ends a forgotten gate

    def _arrive(self) -> int:
        n = 0
        while True:  # O_EXCL: two trials arriving together never get the same number
            try:
                os.close(os.open(os.path.join(self.folder, f"arrived-{n}"), os.O_CREAT | os.O_EXCL))
                return n
            except FileExistsError:
                n += 1

    def _released(self) -> bool:
        if self.release == "stop":
            from mnist_core import raytask

            return raytask.stop_requested()
        return Path(self.folder, "release").exists()

    # -- test side ---------------------------------------------------------------
    def held(self) -> list[str]:
        """Node ids of the trials held so far."""
        return [p.read_text() for p in sorted(Path(self.folder).glob("held-*"))]

    def open(self) -> None:
        Path(self.folder, "release").write_text("go")


def by_value() -> None:
    """Pickle this module by value, so Ray workers that cannot import it still run the gate."""
    import sys

    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
