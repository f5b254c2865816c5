"""A write that fails while saving (full disk, permission denied) keeps the previous files and says so.

The failure is injected where every save ends, ``os.replace`` in
``mnist_core.fsutil.atomic_write`` (see faults.py), while a real training job
runs through ``JobRegistry`` as the server runs it, and while the Draw page
saves a correction.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from app_helpers import canvas_png, inject, no_exception, open_page, run_until, texts
from faults import DiskFull, no_permission, same_tensors

from mnist_core import online, runs
from mnist_core.config import RunConfig
from mnist_core.data import load_data
from mnist_core.errors import MnistLabError, StorageError
from mnist_core.fsutil import WriteError, atomic_write
from mnist_core.jobs import JobRegistry
from mnist_core.pipeline import run_training

TINY = RunConfig(hidden=(16,), epochs=3, batch_size=64)


def _train_with(disk: DiskFull, runs_dir: Path, data: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(os, "replace", disk)
    registry = JobRegistry()
    job = registry.submit(TINY, runs_dir=runs_dir, data_root=data)
    assert registry.wait(timeout=120)
    return job.snapshot()


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_full_disk_on_a_checkpoint_keeps_the_previous_one_and_fails_with_a_message(
    runs_dir: Path, synthetic_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = DiskFull(names={"checkpoint.pt"})
    snap = _train_with(disk, runs_dir, synthetic_data_dir, monkeypatch)
    assert disk.failures == 1
    assert snap.state == "failed"
    assert snap.error.startswith("Could not save checkpoint.pt in ")
    assert "No space left on device" in snap.error and "free some disk space" in snap.error
    run = runs.load_run(snap.run_id, runs_dir)
    assert run.status == "failed" and run.meta["error"] == snap.error
    state = runs.load_train_state(run.id, runs_dir)  # torch.load(weights_only=True)
    assert state.epoch == 1 and [h["epoch"] for h in state.history if h["kind"] == "epoch"] == [1]
    assert same_tensors(torch.load(run.path / "checkpoint.pt", weights_only=True), disk.kept["checkpoint.pt"])
    model, _ = runs.load_model(run.id, runs_dir)
    assert same_tensors(model.state_dict(), disk.kept["weights.pt"])
    assert _no_temp_files(runs_dir)
    # Space again: the failed run resumes from that checkpoint to the end.
    disk.disarm()
    done = run_training(resume_id=run.id, runs_dir=runs_dir, data_root=synthetic_data_dir)
    assert done.status == "completed" and done.summary["epochs_done"] == 3


def test_a_disk_full_for_every_file_still_keeps_the_checkpoint_and_the_run_resumes(
    runs_dir: Path, synthetic_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even run.json cannot record the failure: the job says why and the run is listed interrupted."""
    disk = DiskFull(names=None)
    snap = _train_with(disk, runs_dir, synthetic_data_dir, monkeypatch)
    assert snap.state == "failed" and snap.error.startswith("Could not save checkpoint.pt")
    assert disk.failures >= 2  # the checkpoint, then the status
    run = runs.load_run(snap.run_id, runs_dir)
    assert run.status == "interrupted"  # nobody holds its lock: never stuck "running"
    assert same_tensors(torch.load(run.path / "checkpoint.pt", weights_only=True), disk.kept["checkpoint.pt"])
    assert runs.load_train_state(run.id, runs_dir).epoch == 1
    assert _no_temp_files(runs_dir)
    disk.disarm()
    done = run_training(resume_id=run.id, runs_dir=runs_dir, data_root=synthetic_data_dir)
    assert done.status == "completed" and done.summary["epochs_done"] == 3


@pytest.mark.parametrize("stage", ["mkstemp", "replace"])
def test_permission_denied_is_a_write_error_that_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    target = folder / "weights.pt"
    target.write_bytes(b"previous")
    if stage == "mkstemp":
        monkeypatch.setattr("tempfile.mkstemp", lambda **_k: (_ for _ in ()).throw(no_permission()))
    else:
        monkeypatch.setattr(os, "replace", DiskFull(arm_after=0, error=no_permission))
    with pytest.raises(WriteError) as caught, atomic_write(target) as f:
        f.write(b"new")
    err = caught.value
    assert isinstance(err, MnistLabError) and isinstance(err, OSError) and err.errno == 13
    assert str(err) == (
        f"Could not save weights.pt in {folder}: Permission denied. "
        "Any previous version of the file is kept; make the folder writable and try again."
    )
    assert target.read_bytes() == b"previous" and [p.name for p in folder.iterdir()] == ["weights.pt"]


def test_an_error_of_the_writer_itself_is_not_disguised_as_a_disk_error(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    with pytest.raises(ZeroDivisionError), atomic_write(folder / "x.json") as f:
        f.write(b"half")
        _ = 1 / 0
    assert list(folder.iterdir()) == []


def _trained(runs_dir: Path, data: Path) -> runs.RunInfo:
    return run_training(TINY.replace(epochs=1), runs_dir=runs_dir, data_root=data)


def test_a_correction_that_cannot_be_saved_leaves_the_parent_intact(
    runs_dir: Path, synthetic_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = _trained(runs_dir, synthetic_data_dir)
    before = (parent.path / "weights.pt").read_bytes()
    model, cfg = runs.load_model(parent.id, runs_dir)
    data = load_data(cfg.dataset, cfg.val_fraction, cfg.seed, synthetic_data_dir)
    x = data.test.tensors()[0][:1]
    result = online.learn(model, x, [3], data.train, data.test, online.CorrectionSettings(steps=2))
    monkeypatch.setattr(os, "replace", DiskFull(names={"weights.pt"}, arm_after=0))
    with pytest.raises(StorageError) as caught:
        runs.save_version(parent.id, result.state_dict, result.summary(parent.summary), runs_dir)
    assert str(caught.value) == (  # the file and the run, not the hidden folder it was written in
        f"Could not save weights.pt of the new version of run {parent.id} in {runs_dir}: "
        "No space left on device. Nothing was half-saved; free some disk space and try again."
    )
    assert (parent.path / "weights.pt").read_bytes() == before
    assert runs.load_run(parent.id, runs_dir).status == "completed"
    listed = {r.id: r.status for r in runs.list_runs(runs_dir)}
    assert [status for rid, status in listed.items() if rid != parent.id] in ([], ["failed"])
    assert _no_temp_files(runs_dir)


# -- what the user sees ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("names", [{"checkpoint.pt"}, None], ids=["checkpoint-only", "every-file"])
def test_train_page_shows_the_save_error(
    app_path: Path, runs_dir: Path, monkeypatch: pytest.MonkeyPatch, names: set[str] | None
) -> None:
    from ui.shared import job_registry

    monkeypatch.setattr(os, "replace", DiskFull(names=names))
    at = open_page(app_path, "pages/train.py")
    at.select_slider(key="train_width").set_value(16)
    at.number_input(key="train_epochs").set_value(3)
    at.run()
    next(b for b in at.button if b.label == "Start training").click()
    at.run()
    registry = job_registry()
    at = run_until(at, lambda at: not registry.active() and any(
        "Could not save checkpoint.pt" in e.value for e in at.error))
    no_exception(at)
    (message,) = [e.value for e in at.error if "Could not save" in e.value]
    assert "No space left on device" in message and "free some disk space" in message
    assert "Traceback" not in message and "OSError" not in message


@pytest.mark.slow
def test_draw_page_shows_an_error_when_a_correction_cannot_be_saved(
    app_path: Path, runs_dir: Path, synthetic_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = _trained(runs_dir, synthetic_data_dir)
    before = (parent.path / "weights.pt").read_bytes()
    at = inject(open_page(app_path, "pages/draw.py"), canvas_png(3))
    predicted = int(next(m.value for m in at.metric if m.label == "Prediction"))
    at.button_group(key="draw_true_label").set_value((predicted + 1) % 10)
    at = at.run()
    monkeypatch.setattr(os, "replace", DiskFull(names={"weights.pt"}, arm_after=0))
    at = next(b for b in at.button if b.label.startswith("Teach it: this is")).click().run()
    no_exception(at)
    errors = [e.value for e in at.error]
    assert any("Could not save weights.pt" in e and "No space left on device" in e for e in errors), errors
    assert at.selectbox(key="draw_run").value == parent.id  # still the original
    assert (parent.path / "weights.pt").read_bytes() == before
    assert "Saved as a new version" not in texts(at)
