"""Run a batch of training trials as Ray tasks and land each one as a normal run.

A sweep's points are independent runs, so on a Ray cluster each becomes one
task that calls :func:`mnist_core.pipeline.run_training` on a worker. This
module is the driver's side (the connection, handing out trials, a stop,
landing each run); the task itself is :mod:`mnist_core.raytask`. The run
reaches the driver's checkpoints folder in one of two ways:

- ``shared_folder=False`` (default): the worker trains into a temporary
  folder, exports the run as a zip (:func:`mnist_core.archive.export_run`)
  and returns the bytes; the driver saves them with
  :func:`mnist_core.archive.import_run`, which validates them like any
  upload (nothing from a worker is trusted more than a browser upload). The
  run keeps its config, name, tags, history, summary and weights, under a
  fresh id.
- ``shared_folder=True``: the worker writes straight into ``runs_dir``, which
  must be the same folder on every node (NFS or similar); the driver then
  checks that it sees the run.

Workers need this package and its dependencies installed (the same versions
as the driver) and the dataset on disk: at ``data_root`` when it is given
(the same path on every node), else at their own ``$MNIST_DATA_DIR`` or
``./data``. A worker does not download it for you on a cluster without
internet access.

Ray is an optional dependency (``pip install -r requirements-ray.txt`` or the
``ray`` extra). It is imported only inside the functions here, so importing
this module never needs it.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .config import RunConfig
from .errors import MnistLabError
from .raytask import StopFlag, TrialHook, run_trial
from .runs import default_runs_dir

PathLike = str | os.PathLike[str]

INSTALL_HINT = "pip install -r requirements-ray.txt (or pip install 'mnist-lab[ray]')"

# A local instance is sized for a laptop and for tests: two trials at once, no
# dashboard, the smallest object store Ray accepts with room for a few zips.
LOCAL_NUM_CPUS = 2
LOCAL_OBJECT_STORE_BYTES = 100 * 1024 * 1024

# How long the driver waits for a result before it polls ``should_stop`` again.
DRIVER_POLL_S = 0.25
# How often Ray runs a trial again when its worker or node died under it (not when training raised).
MAX_RETRIES = 3


class RayUnavailable(MnistLabError):
    """Ray is not installed (or does not import) in this environment."""


class RayConnectError(MnistLabError):
    """Ray is installed but no cluster could be started or reached."""


# -- availability and settings --------------------------------------------------------


def ray_available() -> bool:
    """Whether ``import ray`` works here; never raises (the app hides its Ray option when False)."""
    try:
        if importlib.util.find_spec("ray") is None:  # cheap: no import when it is absent
            return False
        importlib.import_module("ray")
    except Exception:  # a broken install must hide the option, not break the page
        return False
    return True


def ray_address(setting: str | None = None) -> str | None:
    """The cluster to use: ``setting``, else ``$RAY_ADDRESS``, else None (a local instance)."""
    for value in (setting, os.environ.get("RAY_ADDRESS")):
        if value and value.strip():
            return value.strip()
    return None


def _import_ray() -> Any:
    try:
        return importlib.import_module("ray")
    except Exception as exc:
        raise RayUnavailable(
            f"Running trials on Ray needs the ray package, which does not import here ({exc}). "
            f"Install it with: {INSTALL_HINT}."
        ) from exc


# -- the connection ---------------------------------------------------------------------


class _Connection:
    """Who started this process's Ray connection, and how many callers use it.

    Ray's connection is global to the process (``ray.init``), so this is too:
    two sweeps running at once in one app server share it, and the instance is
    shut down when the last caller that needed it leaves, never while another
    still has trials in flight, and never when someone else started it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._owned = False

    @contextlib.contextmanager
    def hold(self, ray: Any, address: str | None, local_cpus: int) -> Iterator[None]:
        with self._lock:
            if not ray.is_initialized():
                _init(ray, address, local_cpus)
                self._owned = True
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and self._owned:
                    self._owned = False
                    ray.shutdown()


_CONNECTION = _Connection()


def _init(ray: Any, address: str | None, local_cpus: int) -> None:
    """Attach to ``address``, or start a small local instance (``"local"`` ignores $RAY_ADDRESS)."""
    common: dict[str, Any] = {
        "log_to_driver": False, "ignore_reinit_error": True, "logging_level": logging.WARNING,
    }
    try:
        if address:
            ray.init(address=address, **common)
        else:
            ray.init(
                address="local", num_cpus=local_cpus, include_dashboard=False,
                object_store_memory=LOCAL_OBJECT_STORE_BYTES, **common,
            )
    except Exception as exc:  # ConnectionError, RuntimeError, ValueError depending on the failure
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise RayConnectError(
            f"Could not start or reach {where}: {exc}. Check the address (setting or RAY_ADDRESS), "
            "that the cluster is running (`ray status`), and that this machine can reach it."
        ) from exc


@contextlib.contextmanager
def connect(address: str | None = None, *, local_cpus: int = LOCAL_NUM_CPUS) -> Iterator[None]:
    """Hold a Ray connection for a block; :func:`run_trials` inside it reuses the connection.

    Starts a local instance (or attaches to ``address``) unless Ray is already
    initialised in this process, and shuts down only what it started.
    """
    ray = _import_ray()
    with _CONNECTION.hold(ray, address, local_cpus):
        yield


# -- the driver ------------------------------------------------------------------------------


def run_trials(
    configs: Sequence[RunConfig],
    *,
    address: str | None = None,
    runs_dir: PathLike | None = None,
    data_root: PathLike | None = None,
    tags: tuple[str, ...] = (),
    names: Sequence[str | None] | None = None,
    on_done: Callable[[int, str], None] | None = None,
    on_error: Callable[[int, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    shared_folder: bool = False,
    cpus_per_trial: float = 1.0,
    local_cpus: int = LOCAL_NUM_CPUS,
    max_in_flight: int | None = None,
    max_retries: int = MAX_RETRIES,
    hook: TrialHook | None = None,
) -> list[str | None]:
    """Train every configuration as a Ray task; returns the saved run ids in config order.

    ``on_done(i, run_id)`` is called as each run lands in ``runs_dir`` (a
    trial stopped part-way lands too, with status "stopped"); ``on_error(i,
    message)`` when trial ``i`` fails, which does not stop the others. Once
    ``should_stop()`` returns True, trials not yet started are cancelled and
    running ones stop at their next step. The list holds None where a trial
    failed or was cancelled.

    Trials are handed to Ray ``max_in_flight`` at a time (default: as many as
    the cluster's CPUs hold when the call starts), so a stop cancels the rest
    here, before Ray ever sees them. ``address`` None starts a local instance
    (``local_cpus`` CPUs) for the duration of the call; when Ray is already
    initialised in this process that connection is used, whatever ``address``
    says (see :func:`connect`). Raises :class:`RayUnavailable` when Ray is
    not installed and :class:`RayConnectError` when no cluster can be started
    or reached.

    A trial whose worker process or node dies is run again by Ray, on a live
    node, up to ``max_retries`` times (a zipped trial starts afresh: nothing of
    the dead attempt landed; in a shared folder it resumes the dead attempt's
    run from its checkpoint). ``hook(event)``, when given, runs on the worker
    with each progress event of each trial (it must pickle; tests hold a trial
    with it, see :func:`mnist_core.raytask.stop_requested`).
    """
    if names is not None and len(names) != len(configs):
        raise ValueError(f"{len(names)} names for {len(configs)} configurations")
    if cpus_per_trial <= 0:
        raise ValueError(f"cpus_per_trial must be positive, not {cpus_per_trial}")
    ray = _import_ray()
    root = Path(os.path.abspath(runs_dir if runs_dir is not None else default_runs_dir()))
    data = os.path.abspath(data_root) if data_root is not None else None
    results: list[str | None] = [None] * len(configs)
    if not configs or (should_stop is not None and should_stop()):
        return results
    root.mkdir(parents=True, exist_ok=True)
    labels = list(names) if names is not None else [None] * len(configs)
    with _CONNECTION.hold(ray, address, local_cpus):
        flag = ray.remote(num_cpus=0)(StopFlag).remote() if should_stop is not None else None
        task = ray.remote(num_cpus=cpus_per_trial, max_retries=max_retries, retry_exceptions=False)(run_trial)
        shared = str(root) if shared_folder else None
        threads = max(1, int(cpus_per_trial))
        todo = deque(
            (i, (cfg.to_dict(), shared, data, label, tuple(tags), threads, flag, hook))
            for i, (cfg, label) in enumerate(zip(configs, labels, strict=True))
        )
        window = max_in_flight or max(1, int(ray.cluster_resources().get("CPU", 0) // cpus_per_trial))
        pending: dict[Any, int] = {}
        stopping = False
        try:
            while todo or pending:
                # Asked before handing out more: a stop seen as a trial lands starts no other one.
                if not stopping and should_stop is not None and should_stop():
                    stopping = True
                    flag.set.remote()
                while todo and not stopping and len(pending) < window:
                    i, args = todo.popleft()
                    pending[task.remote(*args)] = i
                if not pending:
                    break
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=DRIVER_POLL_S)
                for ref in ready:
                    i = pending.pop(ref)
                    _report(i, *_land(ray, ref, root), results, on_done, on_error)
        finally:
            for ref in pending:  # only left when the driver is interrupted or a callback raised
                ray.cancel(ref)
    return results


def _report(
    i: int,
    run_id: str | None,
    error: str | None,
    results: list[str | None],
    on_done: Callable[[int, str], None] | None,
    on_error: Callable[[int, str], None] | None,
) -> None:
    if run_id is not None:
        results[i] = run_id
        if on_done is not None:
            on_done(i, run_id)
    elif error is not None and on_error is not None:
        on_error(i, error)


def _land(ray: Any, ref: Any, root: Path) -> tuple[str | None, str | None]:
    """``(run id, None)`` once the trial's run is in ``root``; ``(None, message)`` if it failed."""
    from .archive import import_run
    from .runs import load_run

    try:
        kind, value = ray.get(ref)
    except Exception as exc:  # the worker died, was killed or the task was cancelled
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return None, f"{type(exc).__name__}: {first}"[:1000]
    if kind == "error":
        return None, str(value)
    try:
        if kind == "zip":
            return import_run(value, root).id, None
        return load_run(value, root).id, None
    except MnistLabError as exc:
        if kind == "run":
            return None, (f"the worker saved run {value} in {root}, but it is not readable here ({exc}); "
                          "shared_folder needs a folder every node sees at the same path")
        return None, f"the run returned by the worker was refused: {exc}"
