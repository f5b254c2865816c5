"""Foreign, corrupt or malicious run files: refused with a message, nothing executed, nothing written outside.

Two ways in: a folder planted in checkpoints/ (read by every listing, by
the Draw page, resumed by a job) and a zip given to ``archive.import_run``.
Every pickle here would create a marker file if it were ever unpickled
(the last test proves the payload is real); the whole test folder is
compared before and after, so a write anywhere outside the checkpoints
folder fails the test.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from app_helpers import canvas_png, inject, no_exception, open_page

from mnist_core import archive, runs
from mnist_core.archive import ArchiveError
from mnist_core.config import RunConfig
from mnist_core.errors import CorruptRun, MnistLabError
from mnist_core.jobs import JobRegistry
from mnist_core.models import build_model
from mnist_core.runs import TrainState

CFG = RunConfig(hidden=(8,), epochs=2)


class Payload:
    """Unpickling this creates ``marker``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "outside" / "pwned"


@pytest.fixture
def outside(tmp_path: Path, runs_dir: Path, marker: Path):
    """A snapshot of every file of the test's folder outside checkpoints/; checked unchanged at the end."""
    marker.parent.mkdir()
    (tmp_path / "outside" / "keep.txt").write_text("untouched")

    def snapshot() -> dict[str, tuple[int, int]]:
        return {
            str(p.relative_to(tmp_path)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in tmp_path.rglob("*")
            if p.is_file() and runs_dir not in p.parents
        }

    before = snapshot()
    yield
    assert not marker.exists(), "a pickle ran"
    assert snapshot() == before, "something was written outside the checkpoints folder"


def _torch_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _state(cfg: RunConfig = CFG) -> TrainState:
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters())
    return TrainState(1, 0, model.state_dict(), opt.state_dict(), None, 1.0, [{"kind": "epoch", "epoch": 1}])


def _run(runs_dir: Path, status: str = "completed") -> Path:
    """A valid run folder: config, run.json, weights, checkpoint, history, summary."""
    writer = runs.RunWriter.create(CFG, runs_dir)
    writer.save_checkpoint(_state())
    writer.finish(status, {"test_accuracy": 0.99})
    return writer.path


# -- a folder planted in checkpoints/ ------------------------------------------------------


def _evil_weights(marker: Path) -> bytes:
    return _torch_bytes({"layers.0.weight": Payload(marker)})


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("how", ["torch.save", "plain pickle"])
def test_planted_pickle_in_weights_is_refused_everywhere(
    runs_dir: Path, marker: Path, outside: None, how: str
) -> None:
    folder = _run(runs_dir)
    evil = {"layers.0.weight": Payload(marker)}
    data = _torch_bytes(evil) if how == "torch.save" else pickle.dumps(evil)
    (folder / "weights.pt").write_bytes(data)
    with pytest.raises(CorruptRun, match=r"weights\.pt cannot be loaded safely"):
        runs.load_model(folder.name, runs_dir)
    assert [r.id for r in runs.list_runs(runs_dir)] == [folder.name]  # listing reads no .pt file


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_planted_pickle_in_a_checkpoint_is_refused_and_the_resume_job_fails_with_a_message(
    runs_dir: Path, synthetic_data_dir: Path, marker: Path, outside: None
) -> None:
    folder = _run(runs_dir, status="stopped")
    ckpt = {"epoch": 1, "step_in_epoch": 0, "model": {"x": Payload(marker)}, "optimizer": {},
            "scheduler": None, "elapsed_s": 1.0}  # fmt: skip
    (folder / "checkpoint.pt").write_bytes(_torch_bytes(ckpt))
    with pytest.raises(CorruptRun, match=r"checkpoint\.pt cannot be loaded safely"):
        runs.load_train_state(folder.name, runs_dir)
    registry = JobRegistry()
    job = registry.submit(CFG, runs_dir=runs_dir, data_root=synthetic_data_dir, resume_id=folder.name)
    assert registry.wait(timeout=120)
    snap = job.snapshot()
    assert snap.state == "failed" and "checkpoint.pt cannot be loaded safely" in snap.error
    assert runs.load_run(folder.name, runs_dir).status == "failed"  # resumable once the file is fixed


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("config.json", CFG.to_dict() | {"evil": 1}, "not a valid configuration: evil: unknown"),
        ("config.json", CFG.to_dict() | {"hidden": [10**9]}, "configuration: hidden: 1000000000 is"),
        ("config.json", CFG.to_dict() | {"hidden": [8] * 10**4}, "10000 layers is more than the maximum"),
        ("config.json", [1, 2], "not a valid configuration: config: expected a JSON object, got list"),
        ("config.json", "mlp", "expected a JSON object, got str"),
        ("run.json", [], r"run\.json is not a JSON object"),
        ("run.json", {"status": "pwned"}, "unknown status 'pwned'"),
        ("summary.json", 42, r"summary\.json is not a JSON object"),
        ("config.json", None, "not a valid configuration"),
    ],
)
def test_planted_bad_json_is_listed_as_broken_with_the_reason(
    runs_dir: Path, outside: None, file: str, content: Any, message: str
) -> None:
    good = _run(runs_dir)
    bad = _run(runs_dir)
    (bad / file).write_text(json.dumps(content))
    listed, broken = runs.scan_runs(runs_dir)
    assert [r.id for r in listed] == [good.name]
    assert list(broken) == [bad.name]
    assert re.search(message, broken[bad.name]), broken[bad.name]
    with pytest.raises(CorruptRun):
        runs.load_run(bad.name, runs_dir)
    assert runs.broken_runs(runs_dir) == broken


@pytest.mark.parametrize(
    "content", [b"", b"{", b"\xff\xfe garbage", b"[" * 100_000 + b"]" * 100_000, b"NaN"]
)
def test_planted_truncated_or_garbage_files_never_crash_a_listing(
    runs_dir: Path, outside: None, content: bytes
) -> None:
    bad = _run(runs_dir)
    for name in ("config.json", "run.json"):
        original = (bad / name).read_bytes()
        (bad / name).write_bytes(content)
        _, broken = runs.scan_runs(runs_dir)
        assert list(broken) == [bad.name] and broken[bad.name], broken
        (bad / name).write_bytes(original)
    (bad / "weights.pt").write_bytes(content)
    with pytest.raises(CorruptRun):
        runs.load_model(bad.name, runs_dir)


def test_the_app_shows_a_planted_run_it_cannot_load_without_running_it(
    app_path: Path, runs_dir: Path, marker: Path, outside: None
) -> None:
    folder = _run(runs_dir)
    (folder / "weights.pt").write_bytes(_evil_weights(marker))
    at = inject(open_page(app_path, "pages/draw.py"), canvas_png(3))
    no_exception(at)
    assert any("cannot be loaded" in e.value and "weights.pt" in e.value for e in at.error), at.error
    at = open_page(app_path, "pages/runs.py")
    no_exception(at)


def test_a_planted_symlinked_run_folder_is_refused(tmp_path: Path, runs_dir: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    shutil.move(_run(runs_dir, status="stopped"), elsewhere)
    (runs_dir / "20260101-000000-mlp-8-abcdef").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(MnistLabError, match="symbolic link"):
        runs.RunWriter.reopen("20260101-000000-mlp-8-abcdef", runs_dir)
    assert runs.list_runs(runs_dir) == []
    assert "symbolic link" in runs.broken_runs(runs_dir)["20260101-000000-mlp-8-abcdef"]


# -- a zip given to import ----------------------------------------------------------------


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data)  # ZipInfo keeps "../" and "/" as given
    return buf.getvalue()


def _valid_entries(runs_dir: Path) -> dict[str, bytes]:
    folder = _run(runs_dir)
    entries = {p.name: p.read_bytes() for p in folder.iterdir() if p.name in runs.RUN_FILES}
    shutil.rmtree(folder)
    return entries


def _refused(data: bytes, runs_dir: Path, message: str) -> None:
    before = sorted(p.name for p in runs_dir.iterdir())
    with pytest.raises(ArchiveError, match=message):
        archive.import_run(data, runs_dir)
    assert sorted(p.name for p in runs_dir.iterdir()) == before, "a refused import left something behind"


def test_zip_slip_and_absolute_paths_are_refused_and_write_nothing(
    tmp_path: Path, runs_dir: Path, outside: None
) -> None:
    valid = _valid_entries(runs_dir)
    absolute = tmp_path / "outside" / "abs.json"
    for name in [
        "../config.json", "../../outside/escaped.json", "../../../../../../tmp/escaped.json",
        str(absolute), "/etc/cron.d/pwned", "C:\\Windows\\pwned.json", "./config.json", "weights.pt/../x",
    ]:  # fmt: skip
        _refused(_zip(valid | {name: b"{}"}), runs_dir, "is not a file of a run")
    assert not absolute.exists() and not (tmp_path / "outside" / "escaped.json").exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_import_refuses_pickles_bad_configs_and_json_that_is_not_an_object(
    runs_dir: Path, marker: Path, outside: None
) -> None:
    valid = _valid_entries(runs_dir)
    evil = _evil_weights(marker)
    cases = [
        ({"weights.pt": evil}, r"weights\.pt cannot be loaded safely"),
        ({"weights.pt": pickle.dumps({"layers.0.weight": Payload(marker)})}, "cannot be loaded safely"),
        ({"checkpoint.pt": _torch_bytes({"model": {"x": Payload(marker)}})}, "cannot be loaded safely"),
        ({"config.json": json.dumps(CFG.to_dict() | {"evil": 1}).encode()}, "unknown setting 'evil'"),
        ({"config.json": json.dumps(CFG.to_dict() | {"hidden": [10**9]}).encode()}, "hidden: 1000000000"),
        ({"config.json": b"[]"}, "expected a JSON object, got list"),
        ({"run.json": b'"a string"'}, r"run\.json is not a JSON object"),
        ({"summary.json": b"[1]"}, r"summary\.json is not a JSON object"),
        ({"history.json": b"{}"}, r"history\.json is not a list"),
    ]
    for change, message in cases:
        _refused(_zip(valid | change), runs_dir, message)
    assert runs.list_runs(runs_dir) == [] and runs.broken_runs(runs_dir) == {}


def test_the_payload_is_real(marker: Path) -> None:
    """Without weights_only the same bytes do run code: the refusals above are not vacuous."""
    marker.parent.mkdir()
    torch.load(io.BytesIO(_evil_weights(marker)), weights_only=False)
    assert marker.exists()
    os.unlink(marker)
