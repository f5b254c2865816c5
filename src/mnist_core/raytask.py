"""The worker side of Ray trials: one task trains one configuration and hands back its run.

:func:`run_trial` is what :func:`mnist_core.raytrials.run_trials` sends to
Ray: on a worker it calls :func:`mnist_core.pipeline.run_training` with the
CPUs Ray reserved, then returns the run's id (written to a shared folder,
where an attempt whose node died is resumed from its checkpoint) or the run
exported as a zip, or the error message a user can act on (never a remote
traceback). While it trains it polls the driver's stop flag (a one-bit Ray
actor, :class:`StopFlag`) without blocking, and a progress hook running in
the trial can ask :func:`stop_requested`. Ray is imported only inside the
functions here; the driver side (connection, scheduling, landing the runs)
is :mod:`mnist_core.raytrials`.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .config import RunConfig

if TYPE_CHECKING:
    from .train import ProgressEvent

# How often a running trial asks the driver's stop flag (a Ray actor call, ~1 ms).
STOP_POLL_S = 0.5

TrialHook = Callable[["ProgressEvent"], None]  # runs on the worker, so it must pickle


class StopFlag:
    """A one-bit Ray actor: the driver sets it, running trials poll it between steps."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


def _flag_poller(flag: Any) -> Callable[[], bool]:
    """``should_stop`` for :func:`run_training` that never blocks on the flag actor.

    A task blocked in ``ray.get`` hands its CPUs back to the scheduler, which
    may start another trial on them (two trials on one CPU's worth), so the
    answer is requested ahead and read only once ``ray.wait(timeout=0)`` says
    it is there; a new question goes out at most every STOP_POLL_S.
    """
    import ray

    state: dict[str, Any] = {"ref": flag.is_set.remote(), "next": 0.0, "stop": False}

    def should_stop() -> bool:
        now = time.monotonic()
        if state["stop"] or now < state["next"]:
            return state["stop"]
        state["next"] = now + STOP_POLL_S
        ready, _ = ray.wait([state["ref"]], timeout=0)
        if ready:
            state["stop"] = bool(ray.get(ready[0]))
            state["ref"] = flag.is_set.remote()
        return state["stop"]

    return should_stop


_TRIAL_STOP: list[Callable[[], bool]] = []  # the running trial's stop check, for stop_requested()


def stop_requested() -> bool:
    """Inside a trial (a ``hook``, on the worker): whether the driver has asked it to stop.

    False outside a trial or when the driver gave no ``should_stop``.
    """
    return bool(_TRIAL_STOP) and _TRIAL_STOP[-1]()


def run_trial(
    config: dict[str, Any],
    shared_runs_dir: str | None,
    data_root: str | None,
    name: str | None,
    tags: tuple[str, ...],
    threads: int,
    flag: Any,
    hook: TrialHook | None = None,
) -> tuple[str, Any]:
    """Train one configuration on this worker.

    Returns ``("run", run_id)`` (written to the shared folder), ``("zip",
    bytes)`` (the exported run) or ``("error", message)``. Errors are returned,
    not raised, so the driver gets the message a user can act on rather than a
    remote traceback. In a shared folder, a run of this point left unfinished by
    an earlier attempt (its node died) is resumed from its last checkpoint
    rather than started again beside it.
    """
    os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
    import torch

    from .archive import export_run
    from .pipeline import run_training

    should_stop = _flag_poller(flag) if flag is not None else None
    torch.set_num_threads(threads)  # the CPUs Ray reserved for this trial, no more
    _TRIAL_STOP.append(should_stop or (lambda: False))
    try:
        cfg = RunConfig.from_dict(config)
        common: dict[str, Any] = {"data_root": data_root, "should_stop": should_stop, "on_progress": hook}
        if shared_runs_dir is not None:
            earlier = _unfinished_attempt(shared_runs_dir, cfg, name, tags)
            if earlier is not None:
                info = run_training(runs_dir=shared_runs_dir, resume_id=earlier, **common)
            else:
                info = run_training(cfg, runs_dir=shared_runs_dir, name=name, tags=tags, **common)
            return ("run", info.id)
        with tempfile.TemporaryDirectory(prefix="mnist-lab-trial-") as tmp:
            info = run_training(cfg, runs_dir=tmp, name=name, tags=tags, **common)
            return ("zip", export_run(info.id, tmp))
    except Exception as exc:
        return ("error", f"on {socket.gethostname()}: {type(exc).__name__}: {exc}")
    finally:
        _TRIAL_STOP.pop()


def _unfinished_attempt(runs_dir: str, cfg: RunConfig, name: str | None, tags: tuple[str, ...]) -> str | None:
    """A run of this very trial (config, name, tags) that an earlier attempt left unfinished, if any.

    Only the driver hands a point to a task, one task at a time, so such a
    run belongs to an attempt whose worker or node died (Ray retried the task).
    """
    from .runs import RESUMABLE, list_runs

    for run in list_runs(runs_dir):
        if (run.status in RESUMABLE and run.config == cfg and list(run.meta.get("tags") or []) == list(tags)
                and (name is None or run.name == name)):
            return run.id
    return None
