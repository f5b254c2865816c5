"""Sweeps on a real two-node Ray cluster: from the CLI and the Sweeps page, and with a node killed.

Each node is a separate ``ray start`` with one CPU (tests/cluster/ray_cluster.py);
the driver is the CLI in its own process or this test process, never a
node's. A run "lands whole" when the driver's checkpoints folder holds it
completed, with its weights, history and the sweep's tag, once per point.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ray_cluster import node_env
from ray_gate import RayGate, by_value

from mnist_core import runs, sweeps
from mnist_core.config import RunConfig

pytestmark = pytest.mark.slow

GRID = ["--depths", "1", "2", "--widths", "16", "32", "64", "--batch-sizes", "128", "256", "--epochs", "1"]
POINTS = 12
CLI_TIMEOUT_S = 900


def cli(*args: str, runs_dir: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "mnist_core", "--runs-dir", str(runs_dir), "--data-dir", str(data_dir),
           *args]
    return subprocess.run(cmd, env=node_env(), capture_output=True, text=True, timeout=CLI_TIMEOUT_S)


def assert_every_point_landed_once(runs_dir: Path, sweep: sweeps.Sweep) -> list[runs.RunInfo]:
    """Each point of ``sweep`` has exactly one run, completed and whole, and nothing else is there."""
    found = runs.list_runs(runs_dir)
    expected = sorted(sweeps.point_name(sweep, c) for c in sweep.configs)
    assert sorted(r.name for r in found) == expected, "a point lost or doubled"
    for run in found:
        assert run.status == "completed", f"{run.name}: {run.status}"
        assert sweep.tag in run.meta["tags"]
        assert [h["epoch"] for h in runs.load_history(run.id, runs_dir) if h["kind"] == "epoch"] == [1]
        model, _ = runs.load_model(run.id, runs_dir)
        assert sum(p.numel() for p in model.parameters()) == run.summary["parameters"]
    assert all(p.state == "done" for p in sweeps.points(sweep, found))
    return found


def test_a_twelve_point_grid_from_the_cli_lands_whole(cluster, tmp_path, synthetic_data_dir):
    runs_dir = tmp_path / "checkpoints"
    done = cli("sweep", *GRID, "--name", "cluster grid", "--ray", "--ray-address", cluster.address,
               runs_dir=runs_dir, data_dir=synthetic_data_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    (sweep,) = sweeps.list_sweeps(runs_dir)
    assert len(sweep.configs) == POINTS
    assert len(assert_every_point_landed_once(runs_dir, sweep)) == POINTS
    assert f"{POINTS}/{POINTS} runs done, done" in done.stdout



def test_a_grid_from_the_sweeps_page_lands_whole(cluster, app_path, tmp_path, monkeypatch):
    """The page's driver is the app's process (here: the test's), sending trials to the cluster's address."""
    from streamlit.testing.v1 import AppTest

    runs_dir = tmp_path / "checkpoints"
    monkeypatch.setenv("MNIST_LAB_CHECKPOINTS", str(runs_dir))
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    at = AppTest.from_file(str(app_path), default_timeout=60)
    at.switch_page("pages/sweeps.py")
    at.run()
    at.multiselect(key="sweeps_depths").set_value([1, 2])
    at.multiselect(key="sweeps_widths").set_value([16, 32])
    at.multiselect(key="sweeps_batches").set_value([128, 256])
    at.checkbox(key="sweeps_ray").check().run()
    at.text_input(key="sweeps_ray_address").set_value(cluster.address).run()
    next(b for b in at.button if b.label.startswith("Start the sweep")).click().run()
    assert not at.exception, [e.value for e in at.exception]
    (sweep,) = sweeps.list_sweeps(runs_dir)
    from ui.shared import job_registry

    driver = sweeps.ray_task(sweep, job_registry())
    assert driver is not None and driver.join(timeout=CLI_TIMEOUT_S), "the page's sweep did not end"
    assert driver.state == "completed" and driver.error is None
    assert len(assert_every_point_landed_once(runs_dir, sweep)) == 8


def test_a_budgeted_search_from_the_cli_runs_on_the_cluster(cluster, tmp_path, synthetic_data_dir):
    """ASHA on Ray Tune over both nodes: one run per configuration, the stopped ones closed and tagged."""
    runs_dir = tmp_path / "checkpoints"
    done = cli("sweep", "--widths", "16", "32", "--lrs", "0.001", "0.01", "--batch-sizes", "256",
               "--epochs", "3", "--name", "cluster search", "--search", "asha",
               "--ray-address", cluster.address, runs_dir=runs_dir, data_dir=synthetic_data_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    (found,) = sweeps.list_sweeps(runs_dir)
    found_runs = runs.list_runs(runs_dir)
    assert found.kind == "search" and len(found_runs) == 4
    assert sorted(r.name for r in found_runs) == sorted(sweeps.point_name(found, c) for c in found.configs)
    for run in found_runs:
        early = sweeps.EARLY_TAG in run.meta["tags"]
        assert run.status == ("stopped" if early else "completed") and "test_accuracy" in run.summary
    assert not any(p.name.startswith(".tune-") for p in runs_dir.iterdir())  # Tune's files are gone
    assert "of the full grid's 10,800" in done.stdout

# -- faults --------------------------------------------------------------------------------------

WAIT_S = 600  # the most a fault test waits for what it waits on (a hang fails the test, never the suite)
# A driver that is the CLI, with a gate on its trials: python -c DRIVER GATE_DIR SKIP CLI-ARGS...
DRIVER = """
import sys
from mnist_core import raytrials
from mnist_core.cli import main
sys.path.insert(0, {tests!r})
from ray_gate import RayGate, by_value
by_value()
gate, plain = RayGate(sys.argv[1], skip=int(sys.argv[2])), raytrials.run_trials
raytrials.run_trials = lambda *a, **k: plain(*a, **{{**k, "hook": gate}})
sys.exit(main(sys.argv[3:]))
"""


def wait_until(condition, what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.2)


def completed(runs_dir: Path) -> dict[str, str]:
    """Run name -> id of the completed runs (names are the sweep's point names)."""
    return {r.name: r.id for r in runs.list_runs(runs_dir) if r.status == "completed"}


def test_a_driver_killed_mid_sweep_resumes_without_redoing_finished_points(cluster, tmp_path,
                                                                          synthetic_data_dir):
    runs_dir, gate_dir = tmp_path / "checkpoints", tmp_path / "gate"
    gate_dir.mkdir()
    common = ["--runs-dir", str(runs_dir), "--data-dir", str(synthetic_data_dir)]
    # The third trial to start is held, so the driver cannot finish before it is killed.
    code = DRIVER.format(tests=str(Path(__file__).parents[1]))
    log = (tmp_path / "driver.log").open("w")
    driver = subprocess.Popen(
        [sys.executable, "-c", code, str(gate_dir), "2", *common,
         "sweep", *GRID, "--name", "killed driver", "--ray", "--ray-address", cluster.address],
        env=node_env(), stdout=log, stderr=log,
    )
    try:
        gate = RayGate(gate_dir)
        wait_until(lambda: gate.held() and completed(runs_dir), "a run landed and the third trial held")
    finally:
        driver.kill()  # SIGKILL: no goodbye to Ray, no last save
        driver.wait(timeout=60)
        log.close()
    before = completed(runs_dir)
    (sweep,) = sweeps.list_sweeps(runs_dir)
    assert 1 <= len(before) < POINTS
    done = cli("sweep", "--resume", sweep.id, "--ray", "--ray-address", cluster.address,
               runs_dir=runs_dir, data_dir=synthetic_data_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    after = {r.name: r.id for r in assert_every_point_landed_once(runs_dir, sweep)}
    assert {name: after[name] for name in before} == before  # finished points kept, not trained again


def test_a_node_killed_while_a_trial_trains_on_it_loses_nothing(cluster, tmp_path, synthetic_data_dir,
                                                                monkeypatch):
    """Kill the worker node (raylet, agents, workers) with a trial held on it: Ray runs it again on
    the head; the sweep ends with one completed run per point. Last in the module: it kills a node."""
    import ray

    from mnist_core import raytrials
    from mnist_core.jobs import JobRegistry

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    runs_dir, gate_dir = tmp_path / "checkpoints", tmp_path / "gate"
    gate_dir.mkdir()
    by_value()
    configs = sweeps.grid_configs(RunConfig(epochs=1), sweeps.GridSpec(
        depth=(1, 2), width=(16, 32, 64), batch_size=(128, 256)))
    sweep = sweeps.create(configs, "node killed", runs_dir)
    with raytrials.connect(cluster.address):
        worker = next(n["NodeID"] for n in ray.nodes()
                      if n["Alive"] and str(cluster.nodes["worker"]) in n["RayletSocketName"])
        gate = RayGate(gate_dir, only_node=worker)
        outcome: list[sweeps.RayOutcome] = []
        driver = threading.Thread(target=lambda: outcome.append(sweeps.run_on_ray(
            sweep, JobRegistry(), address=cluster.address, runs_dir=runs_dir, data_root=synthetic_data_dir,
            hook=gate)), daemon=True)
        driver.start()
        wait_until(lambda: gate.held(), "a trial training on the worker node")
        assert cluster.kill_node("worker")
        gate.open()
        driver.join(timeout=WAIT_S)
        assert not driver.is_alive(), "the sweep hangs after the node died"
    assert outcome and outcome[0].errors == []
    assert len(assert_every_point_landed_once(runs_dir, sweep)) == POINTS
