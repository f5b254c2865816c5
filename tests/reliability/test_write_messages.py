"""Failed saves say what happened and what to do, never a raw torch/OS error or a traceback.

- a full disk while torch writes a ``.pt`` (torch turns the OSError into
  ``RuntimeError: [enforce fail at inline_container.cc] unexpected pos``);
- a full disk while a zip is imported;
- a run folder removed (``rm -rf``) while the run trains;
- ``predict`` on a run whose weights are NaN.

The full disk is a file whose ``write`` raises ``OSError(ENOSPC)`` once a
byte budget is spent (``faults.FullDiskWrites``), as a real full disk does
in the middle of a file.
"""

from __future__ import annotations

import io
import math
import shutil
from pathlib import Path

import pytest
import torch
from faults import FullDiskWrites

from mnist_core import archive, cli, runs
from mnist_core.config import RunConfig
from mnist_core.errors import MnistLabError, RunFolderMissing, StorageError
from mnist_core.fsutil import WriteError
from mnist_core.jobs import Job, JobRegistry
from mnist_core.models import build_model
from mnist_core.pipeline import run_training

TINY = RunConfig(hidden=(16,), epochs=3, batch_size=64)
RAW = ("inline_container", "enforce fail", "unexpected pos", "Traceback", "RuntimeError", "OSError")


def _fake_run(runs_dir: Path, weights: dict[str, torch.Tensor] | None = None) -> runs.RunInfo:
    """A completed run without training: the config's fresh weights (or ``weights``)."""
    cfg = TINY.replace(epochs=1)
    writer = runs.RunWriter.create(cfg, runs_dir)
    runs.write_torch(writer.path / "weights.pt", weights or build_model(cfg).state_dict())
    writer.finish("completed", {"test_accuracy": 0.5})
    return runs.load_run(writer.id, runs_dir)


def _says_what_to_do(message: str) -> None:
    assert "No space left on device" in message and "free some disk space" in message, message
    assert not any(raw in message for raw in RAW), message


def test_a_full_disk_in_the_middle_of_a_pt_file_is_a_write_error_not_torchs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    target = folder / "weights.pt"
    target.write_bytes(b"previous")
    FullDiskWrites(budget=1000).install(monkeypatch)
    with pytest.raises(WriteError) as caught:
        runs.write_torch(target, {"w": torch.zeros(10_000)})
    assert str(caught.value).startswith(f"Could not save weights.pt in {folder}: ")
    _says_what_to_do(str(caught.value))
    assert target.read_bytes() == b"previous" and [p.name for p in folder.iterdir()] == ["weights.pt"]


def test_a_run_whose_checkpoint_hits_a_full_disk_records_a_message_not_torchs_error(
    runs_dir: Path, synthetic_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FullDiskWrites(budget=1000, names={"checkpoint.pt"})  # fails inside torch.save
    disk.install(monkeypatch)
    registry = JobRegistry()
    job = registry.submit(TINY, runs_dir=runs_dir, data_root=synthetic_data_dir)
    assert registry.wait(timeout=120)
    snap = job.snapshot()
    assert disk.failures >= 1 and snap.state == "failed"
    assert snap.error.startswith("Could not save checkpoint.pt in ")
    _says_what_to_do(snap.error)
    run = runs.load_run(snap.run_id, runs_dir)
    assert run.status == "failed" and run.meta["error"] == snap.error


def test_an_import_into_a_full_disk_says_so_and_leaves_nothing(
    runs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _fake_run(tmp_path / "elsewhere")
    data = archive.export_run(source.id, tmp_path / "elsewhere")
    FullDiskWrites(budget=100).install(monkeypatch)  # unpacking writes with plain open()
    with pytest.raises(StorageError) as caught:
        archive.import_run(io.BytesIO(data), runs_dir)
    message = str(caught.value)
    assert message.startswith(f"Could not import the run into {runs_dir}: ")
    assert "Nothing was imported" in message
    _says_what_to_do(message)
    assert isinstance(caught.value, MnistLabError)  # what the Runs page shows as a message
    assert list(runs_dir.iterdir()) == []  # no run, no staging folder


def test_removing_a_run_folder_while_it_trains_gives_a_message(
    runs_dir: Path, synthetic_data_dir: Path
) -> None:
    started: list[str] = []

    def rm_rf_after_first_epoch(event) -> None:  # what a user does in a shell meanwhile
        if event.kind == "epoch" and event.epoch == 1:
            shutil.rmtree(runs_dir / started[0])

    with pytest.raises(RunFolderMissing) as caught:
        run_training(TINY, runs_dir=runs_dir, data_root=synthetic_data_dir,
                     on_start=started.append, on_progress=rm_rf_after_first_epoch)
    message = str(caught.value)
    assert f"The folder of run {started[0]}" in message and "deleted or moved" in message
    assert "Start the run again" in message
    assert "FileNotFoundError" not in message and "Errno" not in message


def test_removing_a_run_folder_while_a_job_trains_it_shows_the_message_in_the_job(
    runs_dir: Path, synthetic_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Job._on_progress

    def rm_rf_after_first_epoch(job: Job, event) -> None:
        original(job, event)
        if event.kind == "epoch" and event.epoch == 1:
            shutil.rmtree(runs_dir / job.run_id)

    monkeypatch.setattr(Job, "_on_progress", rm_rf_after_first_epoch)
    registry = JobRegistry()
    job = registry.submit(TINY, runs_dir=runs_dir, data_root=synthetic_data_dir)
    assert registry.wait(timeout=120)
    snap = job.snapshot()
    assert snap.state == "failed" and f"The folder of run {snap.run_id}" in snap.error
    assert "was deleted or moved" in snap.error and "FileNotFoundError" not in snap.error
    assert list(runs_dir.iterdir()) == []


def test_predict_on_a_run_with_nan_weights_prints_a_message(
    runs_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = TINY.replace(epochs=1)
    nan = {k: torch.full_like(v, math.nan) for k, v in build_model(cfg).state_dict().items()}
    run = _fake_run(runs_dir, nan)
    image = tmp_path / "digit.png"
    from PIL import Image

    pixels = Image.new("L", (28, 28))
    for y in range(5, 22):
        for x in range(12, 16):
            pixels.putpixel((x, y), 255)
    pixels.save(image)
    code = cli.main(["--runs-dir", str(runs_dir), "predict", run.id, str(image)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"Run {run.id}" in err and "NaN" in err and "Train it again" in err, err
    assert "Traceback" not in err and "ValueError" not in err


def test_removing_a_run_folder_after_its_last_checkpoint_gives_the_same_message(
    runs_dir: Path, synthetic_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the last checkpoint and the summary (the test set is being measured)."""
    from mnist_core import pipeline

    started: list[str] = []
    real = pipeline.cost_report

    def rm_rf_then_measure(model):
        shutil.rmtree(runs_dir / started[0])
        return real(model)

    monkeypatch.setattr(pipeline, "cost_report", rm_rf_then_measure)
    with pytest.raises(RunFolderMissing, match="was deleted or moved"):
        run_training(TINY.replace(epochs=1), runs_dir=runs_dir, data_root=synthetic_data_dir,
                     on_start=started.append)
    assert list(runs_dir.iterdir()) == []
