"""Runs as zip files: export, safe import, and the staging helpers of runs.py it relies on."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

import pytest
import torch

from mnist_core import archive, runs
from mnist_core.archive import ArchiveError, ImportLimits
from mnist_core.config import RunConfig
from mnist_core.errors import MnistLabError
from mnist_core.models import build_model
from tests.support.fakeruns import make_fake_runs

CFG = RunConfig(hidden=(8,))


def _zip(files: dict[str, bytes], infos: dict[str, zipfile.ZipInfo] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr((infos or {}).get(name, name), data)
    return buf.getvalue()


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _valid_files(cfg: RunConfig = CFG) -> dict[str, bytes]:
    meta = {
        "id": "20260101-000000-mlp-8-abcdef",
        "name": "mine",
        "status": "completed",
        "tags": ["a"],
        "notes": "hello",
        "created": "2026-01-01T00:00:00+00:00",
        "parent": "elsewhere",
    }
    return {
        "config.json": json.dumps(cfg.to_dict()).encode(),
        "run.json": json.dumps(meta).encode(),
        "summary.json": json.dumps({"test_accuracy": 0.9}).encode(),
        "history.json": json.dumps([{"kind": "epoch", "epoch": 1}]).encode(),
        "weights.pt": _torch_bytes(build_model(cfg).state_dict()),
    }


def _nothing_written(runs_dir: Path) -> bool:
    return list(runs_dir.iterdir()) == []


# -- export and round trip --------------------------------------------------------------


def test_export_then_import_gives_a_new_run_with_the_same_files(runs_dir, tmp_path):
    (run_id,) = make_fake_runs(runs_dir, 1, seed=0, n_test=100, weights=True, max_width=32)
    runs.update_meta(run_id, runs_dir, name="exported", tags=["t"], notes="n")
    data = archive.export_run(run_id, runs_dir)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == sorted(
            ["config.json", "run.json", "summary.json", "history.json", "weights.pt"]
        )
    other = tmp_path / "elsewhere"
    info = archive.import_run(data, other)
    assert info.id != run_id and [p.name for p in other.iterdir()] == [info.id]
    original = runs.load_run(run_id, runs_dir)
    assert info.config == original.config and info.summary == original.summary
    assert info.name == "exported" and info.meta["tags"] == ["t"] and info.meta["notes"] == "n"
    assert info.meta["imported_from"] == run_id and info.meta["id"] == info.id and info.status == "completed"
    assert runs.load_history(info.id, other) == runs.load_history(run_id, runs_dir)
    a, _ = runs.load_model(run_id, runs_dir)
    b, _ = runs.load_model(info.id, other)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    again = archive.import_run(io.BytesIO(data), runs_dir)  # into the same folder: a third run
    assert again.id not in (run_id, info.id) and len(runs.list_runs(runs_dir)) == 2


def test_export_includes_the_checkpoint_unless_asked_not_to(runs_dir):
    writer = runs.RunWriter.create(CFG, runs_dir)
    model = build_model(CFG)
    opt = torch.optim.Adam(model.parameters())
    from mnist_core.runs import TrainState

    writer.save_checkpoint(TrainState(1, 0, model.state_dict(), opt.state_dict(), None, 1.0, []))
    with pytest.raises(MnistLabError, match="being trained"):
        archive.export_run(writer.id, runs_dir)
    writer.finish("stopped", {"test_accuracy": 0.5})
    with zipfile.ZipFile(io.BytesIO(archive.export_run(writer.id, runs_dir))) as zf:
        assert "checkpoint.pt" in zf.namelist() and ".lock" not in zf.namelist()
    with zipfile.ZipFile(io.BytesIO(archive.export_run(writer.id, runs_dir, include_checkpoint=False))) as zf:
        assert "checkpoint.pt" not in zf.namelist()
    info = archive.import_run(archive.export_run(writer.id, runs_dir), runs_dir)
    assert runs.load_train_state(info.id, runs_dir).epoch == 1 and info.status == "stopped"


def test_minimal_run_imports_and_running_becomes_interrupted(runs_dir):
    files = _valid_files()
    meta = json.loads(files["run.json"]) | {"status": "running"}
    minimal = {"config.json": files["config.json"], "run.json": json.dumps(meta).encode()}
    _refused(runs_dir, _zip(minimal), r"no weights\.pt")  # nothing to use: refused (issue 29.3)
    info = archive.import_run(_zip(minimal | {"weights.pt": files["weights.pt"]}), runs_dir)
    assert info.status == "interrupted" and info.meta["parent"] is None and info.summary == {}


# -- refusals: nothing written -------------------------------------------------------------


def _refused(runs_dir: Path, data: bytes, match: str, limits: ImportLimits | None = None) -> None:
    with pytest.raises(ArchiveError, match=match):
        archive.import_run(data, runs_dir, limits)
    assert _nothing_written(runs_dir), list(runs_dir.iterdir())


@pytest.mark.parametrize(
    "name",
    ["../config.json", "/etc/passwd", "sub/config.json", "sub/", "..\\weights.pt", ".lock", "evil.py"],
)
def test_refuses_paths_other_than_a_run_file(runs_dir, name):
    files = _valid_files() | {name: b"x"}
    _refused(runs_dir, _zip(files), "not a file of a run")


def test_refuses_symlinks_duplicates_folders_and_missing_files(runs_dir):
    files = _valid_files()
    link = zipfile.ZipInfo("weights.pt")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    _refused(runs_dir, _zip(files, {"weights.pt": link}), "not a plain file")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, pytest.warns(UserWarning, match="Duplicate"):
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("summary.json", b"{}")
    _refused(runs_dir, buf.getvalue(), "appears twice")
    _refused(runs_dir, _zip({"config.json": files["config.json"]}), "no run.json")
    _refused(runs_dir, b"PK\x03\x04 definitely not a zip", "Not a zip file")
    _refused(runs_dir, b"", "Not a zip file")


def test_refuses_encrypted_entries(runs_dir):
    data = bytearray(_zip(_valid_files()))
    # Set the "encrypted" bit of every entry in the central directory.
    start = 0
    while (pos := data.find(b"PK\x01\x02", start)) != -1:
        data[pos + 8] |= 0x1
        start = pos + 4
    _refused(runs_dir, bytes(data), "encrypted")


def test_refuses_a_pickle_payload_and_never_runs_it(runs_dir, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = _torch_bytes({"1.weight": Payload()})
    _refused(runs_dir, _zip(_valid_files() | {"weights.pt": evil}), "cannot be loaded safely")
    assert not marker.exists()
    with pytest.raises(ArchiveError):
        archive.import_run(_zip(_valid_files() | {"checkpoint.pt": evil}), runs_dir)
    assert not marker.exists() and _nothing_written(runs_dir)
    torch.load(io.BytesIO(evil), weights_only=False)  # the payload is real: an unsafe load runs it
    assert marker.exists()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"hidden": [10**9]}, "not a valid configuration: hidden"),
        ({"model": "transformer"}, "not a valid configuration: model"),
        ({"evil": 1}, "unknown setting"),
        (
            {"model": "cnn", "cnn_channels": [8, 8, 8, 8], "crop": 20, "cnn_style": "lenet"},
            "no buildable model",
        ),
    ],
)
def test_refuses_invalid_configurations(runs_dir, change, match):
    config = CFG.to_dict() | change
    _refused(runs_dir, _zip(_valid_files() | {"config.json": json.dumps(config).encode()}), match)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("config.json", b"[1, 2]", "not a valid configuration"),
        ("run.json", b"[]", "run.json is not a JSON object"),
        ("run.json", b'"just text"', "run.json is not a JSON object"),
        ("run.json", json.dumps({"name": "x", "status": "hacked"}).encode(), "unknown status"),
        ("run.json", json.dumps({"name": "", "status": "completed"}).encode(), "needs a name"),
        ("run.json", json.dumps({"name": "x", "status": "completed", "tags": "a"}).encode(), "tags"),
        ("summary.json", b"[]", "summary.json is not a JSON object"),
        ("summary.json", b"{not json", "summary.json is not valid JSON"),
        ("summary.json", b"\xff\xfe", "not valid JSON"),
        ("history.json", b"{}", "history.json is not a list"),
        ("history.json", b"[1, 2]", "history.json is not a list"),
        ("summary.json", b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ],
)
def test_refuses_json_that_is_not_what_a_run_holds(runs_dir, name, content, match):
    _refused(runs_dir, _zip(_valid_files() | {name: content}), match)


def test_refuses_weights_of_another_model(runs_dir):
    other = build_model(RunConfig(hidden=(16,))).state_dict()
    _refused(runs_dir, _zip(_valid_files() | {"weights.pt": _torch_bytes(other)}), "has shape")
    renamed = {f"x{k}": v for k, v in build_model(CFG).state_dict().items()}
    _refused(
        runs_dir, _zip(_valid_files() | {"weights.pt": _torch_bytes(renamed)}), "does not hold the tensors"
    )
    half = {k: v.half() for k, v in build_model(CFG).state_dict().items()}
    _refused(runs_dir, _zip(_valid_files() | {"weights.pt": _torch_bytes(half)}), "float16")
    _refused(runs_dir, _zip(_valid_files() | {"weights.pt": _torch_bytes([1, 2])}), "does not hold")
    _refused(runs_dir, _zip(_valid_files() | {"weights.pt": b"garbage"}), "cannot be loaded safely")
    ckpt = _torch_bytes({"epoch": 1})
    _refused(runs_dir, _zip(_valid_files() | {"checkpoint.pt": ckpt}), "not a training checkpoint")


def test_zip_bomb_stops_at_the_cap(runs_dir):
    big = b"{" + b" " * 5_000_000 + b"}"  # compresses to a few kB
    data = _zip(_valid_files() | {"summary.json": big})
    assert len(data) < 100_000
    _refused(runs_dir, data, "at most", ImportLimits(json_bytes=1_000_000))
    _refused(runs_dir, data, "unpacks to more than", ImportLimits(total_bytes=2_000_000))
    _refused(runs_dir, data, "at most 1,000 are accepted", ImportLimits(archive_bytes=1_000))


def test_zip_bomb_lying_about_its_size_stops_while_unpacking(runs_dir):
    data = bytearray(_zip(_valid_files() | {"summary.json": b"{" + b" " * 5_000_000 + b"}"}))
    # Claim a tiny uncompressed size in the central directory entry of summary.json.
    start = 0
    while (pos := data.find(b"PK\x01\x02", start)) != -1:
        name_len = int.from_bytes(data[pos + 28 : pos + 30], "little")
        if data[pos + 46 : pos + 46 + name_len] == b"summary.json":
            data[pos + 24 : pos + 28] = (100).to_bytes(4, "little")
        start = pos + 4
    with pytest.raises(ArchiveError):
        archive.import_run(bytes(data), runs_dir, ImportLimits(json_bytes=1_000_000))
    assert _nothing_written(runs_dir)


# -- staging helpers in runs.py -------------------------------------------------------------


def test_adopt_never_replaces_an_existing_run(runs_dir, monkeypatch):
    (existing,) = make_fake_runs(runs_dir, 1, seed=1, n_test=100)
    before = sorted(p.name for p in (runs_dir / existing).iterdir())
    ids = iter([existing, "20260101-000000-mlp-8-fresh0"])
    monkeypatch.setattr(runs.staging, "new_run_id", lambda cfg, now=None: next(ids))  # adopt asks here
    info = archive.import_run(_zip(_valid_files()), runs_dir)
    assert info.id == "20260101-000000-mlp-8-fresh0"
    assert sorted(p.name for p in (runs_dir / existing).iterdir()) == before
    assert runs.load_run(existing, runs_dir).name != "mine"


def test_staging_is_hidden_from_listings_and_adopt_checks_its_argument(runs_dir, tmp_path):
    staging = runs.new_staging_dir(runs_dir)
    assert staging.parent == runs_dir and staging.name.startswith(".")
    runs.write_json(staging / "config.json", CFG.to_dict())
    assert runs.list_runs(runs_dir) == [] and runs.scan_runs(runs_dir) == ([], {})
    assert runs.folder_state(runs_dir) == ()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with pytest.raises(MnistLabError, match="not a staging folder"):
        runs.adopt_staged(foreign, CFG, runs_dir)
    runs.write_json(staging / "run.json", {"id": None, "name": "s", "status": "completed"})
    run_id = runs.adopt_staged(staging, CFG, runs_dir)
    assert not staging.exists() and runs.load_run(run_id, runs_dir).meta["id"] == run_id
    assert not (runs_dir / run_id / ".meta.lock").exists()
