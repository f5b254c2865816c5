"""A run, a saved version or an import killed (SIGKILL) at any moment is whole or absent.

Each is built in a hidden staging folder that its process holds locked, and
published with one rename. ``faults.py`` runs the operation in a forked
child and freezes it just before each of its file-system steps in turn
(every open, mkdir, rename, replace, remove and flock under the checkpoints
folder); while the child is frozen a cleanup runs and must spare what the
live child is filling; then the child is SIGKILLed. Whatever step a kill
lands on, afterwards:

- every run folder loads (no broken runs in the listing), with every file
  the operation writes (a version has its weights and is "completed");
- a saved version is never resumable (Resume would train a fresh model);
- ``clean_stale_staging`` removes every staging folder left by the dead
  children, and nothing else.

The steps are counted, not timed: no assertion depends on timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from mnist_core import archive, report, runs
from mnist_core.config import RunConfig
from mnist_core.errors import MnistLabError
from mnist_core.models import build_model

HERE = Path(__file__).resolve().parent
CFG = RunConfig(hidden=(16,), epochs=1)
pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform != "linux", reason="needs fork")


def _sweep(mode: str, op: str, root: Path, arg: str, tmp_path: Path, *extra: int) -> dict[str, Any]:
    out = tmp_path / f"{mode}-{op}.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run(
        [sys.executable, str(HERE / "faults.py"), mode, op, str(root), arg, str(out), *map(str, extra)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def _parent(root: Path) -> runs.RunInfo:
    writer = runs.RunWriter.create(CFG, root, name="parent")
    torch.manual_seed(0)
    runs.write_torch(writer.path / "weights.pt", build_model(CFG).state_dict())
    runs.write_json(writer.path / "history.json", [])
    writer.finish("completed", {"test_accuracy": 0.9})
    return runs.load_run(writer.id, root)


def _spared_live_children(kills: list[dict[str, Any]]) -> None:
    for kill in kills:
        mine = [n for n in kill.get("removed_while_alive", []) if n.startswith(f".staging-{kill['pid']}-")]
        assert not mine, f"a cleanup removed the staging folder of a live process: {kill}"


def _no_leftovers_after_cleanup(root: Path) -> list[str]:
    removed = runs.clean_stale_staging(root, temp_older_than_s=-1)  # the dead children's temp files too
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []
    assert [p.name for p in root.rglob("*.tmp")] == []
    return removed


def _whole_runs(root: Path) -> list[runs.RunInfo]:
    good, broken = runs.scan_runs(root)
    assert broken == {}, f"broken runs after a kill: {broken}"
    return good


def _report(what: str, result: dict[str, Any], extra: str = "") -> None:
    events: dict[str, int] = {}
    for kill in result["kills"]:
        key = f"{kill.get('event', '?')} {Path(kill.get('path', '')).name}".strip()
        events[key] = events.get(key, 0) + 1
    print(f"\n{what}: {len(result['kills'])} kills {extra}; at: {events}")


def test_a_run_killed_at_any_step_of_its_creation_is_whole_or_absent(runs_dir: Path, tmp_path: Path) -> None:
    result = _sweep("kill-sweep", "create", runs_dir, "-", tmp_path)
    _report("create", result, f"(every one of {result['steps']} steps)")
    assert len(result["kills"]) == result["steps"] >= 10
    _spared_live_children(result["kills"])
    made = _whole_runs(runs_dir)
    assert 0 < len(made) < len(result["kills"])  # kills before the rename leave no run
    for info in made:
        assert info.name == "killed?" and info.status in ("interrupted", "completed")
        assert info.config == CFG
    _no_leftovers_after_cleanup(runs_dir)
    assert len(runs.list_runs(runs_dir)) == len(made)  # the cleanup touched no run


def test_a_version_killed_at_any_step_of_its_save_is_whole_or_absent_and_never_resumable(
    runs_dir: Path, tmp_path: Path
) -> None:
    parent = _parent(runs_dir)
    before = {p.name: p.read_bytes() for p in parent.path.iterdir() if p.is_file() and p.suffix}
    result = _sweep("kill-sweep", "version", runs_dir, parent.id, tmp_path)
    _report("save_version", result, f"(every one of {result['steps']} steps)")
    assert len(result["kills"]) == result["steps"] >= 10
    _spared_live_children(result["kills"])
    versions = [r for r in _whole_runs(runs_dir) if r.id != parent.id]
    assert versions  # the kills after the rename
    expected = {k: v + 1.0 for k, v in runs.load_model(parent.id, runs_dir)[0].state_dict().items()}
    for v in versions:
        assert v.status == "completed" and v.meta["parent"] == parent.id and v.meta["kind"] == "correction"
        assert v.summary == {"test_accuracy": 0.5} and not runs.resumable(v)
        model, _ = runs.load_model(v.id, runs_dir)
        assert all(torch.equal(model.state_dict()[k], t) for k, t in expected.items())
        with pytest.raises(MnistLabError):
            runs.RunWriter.reopen(v.id, runs_dir)
    assert {p.name: p.read_bytes() for p in parent.path.iterdir() if p.is_file() and p.suffix} == before
    _no_leftovers_after_cleanup(runs_dir)


def test_an_import_killed_at_any_step_is_whole_or_absent_and_its_staging_is_cleaned(
    runs_dir: Path, tmp_path: Path
) -> None:
    source = _parent(tmp_path / "elsewhere")
    zipped = tmp_path / "run.zip"
    zipped.write_bytes(archive.export_run(source.id, tmp_path / "elsewhere"))
    result = _sweep("kill-sweep", "import", runs_dir, str(zipped), tmp_path)
    _report("import", result, f"(every one of {result['steps']} steps)")
    assert len(result["kills"]) == result["steps"] >= 10
    _spared_live_children(result["kills"])
    imported = _whole_runs(runs_dir)
    assert imported
    for info in imported:
        assert info.name == "parent" and info.status == "completed"
        assert info.meta["imported_from"] == source.id
        runs.load_model(info.id, runs_dir)
    removed = _no_leftovers_after_cleanup(runs_dir)
    removed += [n for kill in result["kills"] for n in kill["removed_while_alive"]]
    assert removed and all(n.startswith(".staging-") for n in removed)  # what the dead children left


@pytest.mark.slow
@pytest.mark.parametrize("op", ["create", "version", "import"])
def test_kills_at_random_steps_of_a_loop_leave_only_whole_runs(
    op: str, runs_dir: Path, tmp_path: Path
) -> None:
    """A child repeats the operation; it is killed at a random (seeded) step, 25 times."""
    arg = "-"
    if op == "version":
        arg = _parent(runs_dir).id
    elif op == "import":
        source = _parent(tmp_path / "elsewhere")
        (tmp_path / "run.zip").write_bytes(archive.export_run(source.id, tmp_path / "elsewhere"))
        arg = str(tmp_path / "run.zip")
    result = _sweep("kill-random", op, runs_dir, arg, tmp_path, 25, 29)
    _report(f"{op} in a loop", result, "(random steps)")
    assert len(result["kills"]) == 25 and all(k["event"] != "done" for k in result["kills"])  # no crash
    good = _whole_runs(runs_dir)
    assert all(r.status in ("completed", "interrupted") for r in good)
    assert all(not runs.resumable(r) for r in good if r.meta.get("parent"))
    _no_leftovers_after_cleanup(runs_dir)


@pytest.mark.slow
def test_a_run_killed_as_soon_as_its_folder_appears_is_not_broken(runs_dir: Path, tmp_path: Path) -> None:
    """The window of the issue: SIGKILL microseconds after a new run folder is listed, 20 times."""
    result = _sweep("kill-on-appear", "create", runs_dir, "-", tmp_path, 20)
    assert len(result["kills"]) == 20
    good = _whole_runs(runs_dir)
    assert len(good) >= 20
    _no_leftovers_after_cleanup(runs_dir)


def test_cleanup_spares_a_staging_folder_held_by_a_live_process_and_removes_a_dead_ones(
    runs_dir: Path,
) -> None:
    held = runs.new_staging_dir(runs_dir)  # this process is alive and holds its lock
    dead = runs_dir / ".staging-999999999-abc"  # a pid that cannot exist, no lock held
    dead.mkdir()
    (dead / "weights.pt").write_bytes(b"x" * 1000)
    deleted = runs_dir / ".deleted-20260101-000000-mlp-16-aaaaaa-123456"
    deleted.mkdir()
    legacy = runs_dir / ".staging-abcdef"  # no pid (before issue 29): kept until it is old
    legacy.mkdir()
    assert sorted(runs.clean_stale_staging(runs_dir)) == [deleted.name, dead.name]
    assert held.is_dir() and legacy.is_dir()
    os.utime(legacy, (0, 0))
    assert runs.clean_stale_staging(runs_dir) == [legacy.name]
    assert held.is_dir()
    runs.discard_staging(held)
    assert list(runs_dir.iterdir()) == []


def test_an_unlocked_staging_folder_of_a_live_process_is_kept_until_it_is_old(runs_dir: Path) -> None:
    """The moment between creating a staging folder and locking it: the pid is alive, so keep it."""
    young = runs_dir / f".staging-{os.getpid()}-young"
    young.mkdir()
    assert runs.clean_stale_staging(runs_dir) == []
    os.utime(young, (0, 0))
    assert runs.clean_stale_staging(runs_dir) == [young.name]


def test_an_interrupted_version_from_before_the_fix_is_not_resumable(runs_dir: Path) -> None:
    """What a kill in save_version left before: a "running" version with no weights, unlocked."""
    parent = _parent(runs_dir)
    writer = runs.RunWriter.create(CFG, runs_dir, name="half", parent=parent.id)
    writer.release()  # its process died
    info = runs.load_run(writer.id, runs_dir)
    assert info.status == "interrupted" and not runs.resumable(info)
    assert not report.can_resume(info)  # the Train page offers no "Resume" for it
    with pytest.raises(MnistLabError, match="nothing to resume"):
        runs.RunWriter.reopen(writer.id, runs_dir)


def test_the_app_removes_leftovers_of_killed_processes_when_it_starts(app_path: Path, runs_dir: Path) -> None:
    from app_helpers import no_exception, open_page

    dead = runs_dir / ".staging-999999999-killed"  # what a killed import left: 1.1 GB in the issue
    dead.mkdir()
    (dead / "weights.pt").write_bytes(b"x" * 1000)
    held = runs.new_staging_dir(runs_dir)  # an import this process is still unpacking
    no_exception(open_page(app_path))
    assert not dead.exists() and held.is_dir()
    runs.discard_staging(held)


def test_temp_files_of_a_killed_write_are_removed_from_runs_nobody_trains(runs_dir: Path) -> None:
    idle = runs.RunWriter.create(CFG, runs_dir)
    idle.finish("completed", {"test_accuracy": 0.5})
    training = runs.RunWriter.create(CFG, runs_dir)  # this process holds its lock
    left = []
    for writer in (idle, training):
        tmp = writer.path / ".checkpoint.pt.k1lled.tmp"  # what atomic_write leaves when killed mid-save
        tmp.write_bytes(b"x" * 1000)
        left.append(tmp)
    assert runs.clean_stale_staging(runs_dir) == []  # young: a live writer may be about to rename it
    for tmp in left:
        os.utime(tmp, (0, 0))
    assert runs.clean_stale_staging(runs_dir) == [f"{idle.id}/.checkpoint.pt.k1lled.tmp"]
    assert not left[0].exists() and left[1].exists()  # the run being trained is left alone
    assert {r.id for r in runs.list_runs(runs_dir)} == {idle.id, training.id}
    training.finish("stopped")
