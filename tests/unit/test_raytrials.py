"""Trials on Ray (raytrials): runs landed in both modes, failures, stop, and life without Ray.

The Ray tests share one local instance (module fixture) so its start-up and the
workers' torch import are paid once; they need the ``ray`` package
(requirements-dev.txt installs it) and are skipped, with the reason, without it.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from ray_gate import RayGate, by_value

from mnist_core import raytask, raytrials, runs
from mnist_core.config import MAX_EPOCHS, RunConfig

TINY = [RunConfig(hidden=(16,), epochs=1, batch_size=256, seed=s) for s in (0, 1)]
# Its first progress event comes by the end of epoch 1 at the latest: a trial held there has one to go.
TWO_EPOCHS = RunConfig(hidden=(16,), epochs=2, batch_size=256, seed=1)
# Larger than the generated training split (900 images): valid as a config, refused by train().
FAILS = RunConfig(hidden=(16,), epochs=1, batch_size=1024)
# 900 000 steps at batch size 1 (hours on a CPU): only a stop ends it, so a stop test never races it.
ENDLESS = RunConfig(hidden=(16,), epochs=MAX_EPOCHS, batch_size=1)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module; run_trials inside it must leave it running."""
    ray = pytest.importorskip("ray", reason="needs ray: pip install -r requirements-ray.txt")
    by_value()  # the gate reaches the workers pickled, not imported
    with raytrials.connect():
        yield ray
    assert not ray.is_initialized()  # connect() shuts down the instance it started


# -- without Ray -------------------------------------------------------------------------


def test_without_ray_it_is_unavailable_and_says_how_to_install(monkeypatch, runs_dir):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    assert raytrials.ray_available() is False
    with pytest.raises(raytrials.RayUnavailable, match=r"requirements-ray\.txt"):
        raytrials.run_trials(TINY, runs_dir=runs_dir)
    assert list(runs_dir.iterdir()) == []


def test_module_imports_without_ray():
    code = (
        "import sys\n"
        "import mnist_core.raytrials as r\n"
        "assert 'ray' not in sys.modules, 'importing raytrials imported ray'\n"
        "sys.modules['ray'] = None\n"
        "assert r.ray_available() is False\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_ray_address_prefers_the_setting_then_the_environment(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert raytrials.ray_address() is None
    assert raytrials.ray_address("  ") is None
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    assert raytrials.ray_address() == "10.0.0.5:6379"
    assert raytrials.ray_address("") == "10.0.0.5:6379"
    assert raytrials.ray_address(" ray://head:10001 ") == "ray://head:10001"


class _FakeRay:
    """Records init/shutdown; enough of ray's API for the connection bookkeeping."""

    def __init__(self, initialized: bool = False) -> None:
        self.initialized, self.inits, self.shutdowns = initialized, [], 0

    def is_initialized(self) -> bool:
        return self.initialized

    def init(self, **kwargs) -> None:
        self.inits.append(kwargs)
        self.initialized = True

    def shutdown(self) -> None:
        self.shutdowns += 1
        self.initialized = False


def test_connection_shuts_down_only_what_it_started_after_its_last_user():
    fake, conn = _FakeRay(), raytrials._Connection()
    with conn.hold(fake, None, 2):
        with conn.hold(fake, None, 2):  # a second sweep in the same process
            pass
        assert fake.shutdowns == 0  # the first one still has trials in flight
    assert len(fake.inits) == 1 and fake.shutdowns == 1
    local = fake.inits[0]
    assert local["address"] == "local" and local["num_cpus"] == 2 and local["include_dashboard"] is False
    assert local["log_to_driver"] is False and local["object_store_memory"] <= 128 * 2**20

    theirs = _FakeRay(initialized=True)  # someone else connected this process
    with conn.hold(theirs, "head:6379", 2):
        pass
    assert theirs.inits == [] and theirs.shutdowns == 0 and theirs.initialized


def test_connection_attaches_to_an_address_without_sizing_it():
    fake = _FakeRay()
    with raytrials._Connection().hold(fake, "head:6379", 2):
        pass
    assert fake.inits[0]["address"] == "head:6379" and "num_cpus" not in fake.inits[0]


def test_connection_failure_is_a_clear_error():
    class Unreachable(_FakeRay):
        def init(self, **kwargs) -> None:
            raise ConnectionError("Could not find any running Ray instance")

    with pytest.raises(raytrials.RayConnectError, match=r"nowhere:6379.*RAY_ADDRESS"):
        with raytrials._Connection().hold(Unreachable(), "nowhere:6379", 2):
            pass


def test_names_must_match_configs(runs_dir):
    with pytest.raises(ValueError, match="1 names for 2"):
        raytrials.run_trials(TINY, runs_dir=runs_dir, names=["only one"])


# -- on a local Ray ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("shared_folder", [False, True], ids=["zip-to-driver", "shared-folder"])
def test_trials_land_as_tagged_runs(local_ray, runs_dir, synthetic_data_dir, shared_folder):
    done: list[tuple[int, str]] = []
    errors: list[tuple[int, str]] = []
    ids = raytrials.run_trials(
        TINY, runs_dir=runs_dir, data_root=synthetic_data_dir, tags=("sweep-abc",), names=["first", None],
        on_done=lambda i, run_id: done.append((i, run_id)), on_error=lambda i, msg: errors.append((i, msg)),
        shared_folder=shared_folder,
    )
    assert errors == []
    assert None not in ids and len(set(ids)) == 2
    assert sorted(done) == [(0, ids[0]), (1, ids[1])]
    assert sorted(r.id for r in runs.list_runs(runs_dir)) == sorted(ids)
    for cfg, run_id in zip(TINY, ids, strict=True):
        info = runs.load_run(run_id, runs_dir)
        assert info.status == "completed" and info.config == cfg
        assert info.meta["tags"] == ["sweep-abc"]
        assert ("imported_from" in info.meta) is not shared_folder  # zips go through import_run
        assert 0 < info.summary["test_accuracy"] <= 1 and info.summary["epochs_done"] == 1
        assert [h["epoch"] for h in runs.load_history(run_id, runs_dir) if h["kind"] == "epoch"] == [1]
        model, _ = runs.load_model(run_id, runs_dir)
        assert sum(p.numel() for p in model.parameters()) == info.summary["parameters"]
    assert runs.load_run(ids[0], runs_dir).name == "first"
    assert runs.load_run(ids[1], runs_dir).name == TINY[1].label()
    assert local_ray.is_initialized()  # not started by run_trials, so not shut down by it


@pytest.mark.slow
def test_a_failing_trial_reports_and_the_other_lands(local_ray, runs_dir, synthetic_data_dir):
    done: list[int] = []
    errors: list[tuple[int, str]] = []
    ids = raytrials.run_trials(
        [FAILS, TINY[0]], runs_dir=runs_dir, data_root=synthetic_data_dir, tags=("sweep-f",),
        on_done=lambda i, _id: done.append(i), on_error=lambda i, msg: errors.append((i, msg)),
    )
    assert ids[0] is None and ids[1] is not None and done == [1]
    assert len(errors) == 1 and errors[0][0] == 0
    assert "ConfigError" in errors[0][1] and "larger than the training set" in errors[0][1]
    assert [r.id for r in runs.list_runs(runs_dir)] == [ids[1]]
    assert runs.load_run(ids[1], runs_dir).status == "completed"


@pytest.mark.slow
def test_stop_stops_the_running_trial_and_cancels_the_pending_one(local_ray, runs_dir, synthetic_data_dir,
                                                                  tmp_path):
    # The second trial to start is held at its first step until the driver's stop reaches it,
    # so it cannot end before the stop, however fast it trains; the stop is asked once it is held.
    gate = RayGate(tmp_path, release="stop", skip=1)
    done: list[int] = []
    errors: list[str] = []
    # Two CPUs per trial on a two-CPU instance: one trial at a time, the others wait their turn.
    ids = raytrials.run_trials(
        [TINY[0], TWO_EPOCHS, TINY[0].replace(seed=2)], runs_dir=runs_dir, data_root=synthetic_data_dir,
        cpus_per_trial=2, shared_folder=True, hook=gate, should_stop=lambda: bool(gate.held()),
        on_done=lambda i, _id: done.append(i), on_error=lambda _i, msg: errors.append(msg),
    )
    assert errors == [] and done == [0, 1]
    assert ids[2] is None  # the third never trained
    first, second = (runs.load_run(i, runs_dir) for i in ids[:2])
    assert first.status == "completed"
    assert second.status == "stopped" and second.summary["epochs_done"] < 2  # held by the end of epoch 1
    assert len(runs.list_runs(runs_dir)) == 2


@pytest.mark.slow
def test_a_stop_asked_between_trials_starts_no_other(local_ray, runs_dir, synthetic_data_dir):
    stop = threading.Event()

    def on_done(_i: int, _run_id: str) -> None:
        stop.set()  # after the first run lands, before the driver hands out the next

    ids = raytrials.run_trials(
        [TINY[0], ENDLESS, ENDLESS], runs_dir=runs_dir, data_root=synthetic_data_dir, cpus_per_trial=2,
        on_done=on_done, should_stop=stop.is_set,
    )
    assert ids[0] is not None and ids[1:] == [None, None]
    assert [r.id for r in runs.list_runs(runs_dir)] == [ids[0]]


def test_nothing_starts_when_already_asked_to_stop(runs_dir):
    pytest.importorskip("ray", reason="needs ray: pip install -r requirements-ray.txt")
    assert raytrials.run_trials(TINY, runs_dir=runs_dir, should_stop=lambda: True) == [None, None]
    assert not Path(runs_dir).exists() or list(Path(runs_dir).iterdir()) == []


def test_a_retried_trial_in_a_shared_folder_finds_the_run_its_dead_attempt_left(runs_dir):
    """Ray runs a trial again when its node dies; in a shared folder the new attempt resumes that run."""
    cfg, tags = TINY[0], ("sweep:s",)
    dead = runs.RunWriter.create(cfg, runs_dir, name="p", tags=tags)
    dead.release()  # its process died: the run reads "interrupted"
    assert runs.load_run(dead.id, runs_dir).status == "interrupted"
    assert raytask._unfinished_attempt(str(runs_dir), cfg, "p", tags) == dead.id
    assert raytask._unfinished_attempt(str(runs_dir), cfg, "another point", tags) is None
    assert raytask._unfinished_attempt(str(runs_dir), TINY[1], "p", tags) is None
    assert raytask._unfinished_attempt(str(runs_dir), cfg, "p", ("sweep:other",)) is None
    done = runs.RunWriter.reopen(dead.id, runs_dir)
    done.finish("completed", {})
    assert raytask._unfinished_attempt(str(runs_dir), cfg, "p", tags) is None  # finished: nothing to resume
