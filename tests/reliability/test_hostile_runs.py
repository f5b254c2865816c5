"""Hostile run folders and zips (issue 29, items 1-3 and the crafted checkpoint of 7).

One bad run must never take a listing, a page or the CLI down: every file of
a run is checked against a schema when read or imported (types, ranges,
finite numbers, bounded sizes, integers within int64), only regular files
are read and never without bound, a run without weights is never used to
predict (nor chosen by default), a model's size is checked from its
configuration before anything is built, and a crafted ``checkpoint.pt`` is
refused with a message naming the file, at resume and at import.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from app_helpers import canvas_png, inject, no_exception, open_page
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mnist_core import archive, cli, pipeline, runs
from mnist_core.archive import ArchiveError
from mnist_core.config import RunConfig
from mnist_core.errors import CorruptRun
from mnist_core.models import build_model
from mnist_core.runs import TrainState
from mnist_core.train_step import make_optimizer
from tests.support.saved import zip_of

CFG = RunConfig(hidden=(8,), epochs=2)
HUGE = RunConfig(hidden=(8192,) * 16)  # 1.01 billion parameters: within config.py's limits
DIGITS_5000 = "1" + "0" * 4999  # int(...) of it is refused by Python itself (4300-digit limit)


def _state(cfg: RunConfig = CFG) -> TrainState:
    model = build_model(cfg)
    opt = make_optimizer(cfg, model)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    point = {"kind": "step", "epoch": 1, "loss": 1.0, "train_acc": 0.5, "n": 64}
    return TrainState(1, 0, model.state_dict(), opt.state_dict(), None, 1.0, [point])


def _run(runs_dir: Path, status: str = "completed", accuracy: float = 0.9) -> Path:
    """A valid run folder: config, run.json, weights, checkpoint, history, summary."""
    writer = runs.RunWriter.create(CFG, runs_dir)
    writer.save_checkpoint(_state())
    writer.finish(status, {"test_accuracy": accuracy, "train_time_s": 1.0, "parameters": 6370})
    return writer.path


@pytest.fixture
def fifos() -> Iterator[list[Path]]:
    """FIFOs a test makes; any reader left blocked on one is released at the end."""
    made: list[Path] = []
    yield made
    for path in made:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # succeeds only if a reader waits
        except OSError:
            continue
        os.close(fd)


def _in_time(fn: Callable[[], Any], timeout_s: float = 30) -> Any:
    """``fn()`` in a thread; fails the test if it does not return within ``timeout_s``."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert not thread.is_alive(), f"still blocked after {timeout_s} s"
    if "error" in out:
        raise out["error"]
    return out["value"]


def _scan(runs_dir: Path) -> tuple[list[str], dict[str, str]]:
    good, broken = _in_time(lambda: runs.scan_runs(runs_dir))
    for reason in broken.values():
        assert reason and "\n" not in reason and len(reason) < 500, reason
    return [r.id for r in good], broken


def _entries(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name in runs.RUN_FILES}


def _torch_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _refused(data: bytes, runs_dir: Path, message: str) -> None:
    before = sorted(p.name for p in runs_dir.iterdir())
    with pytest.raises(ArchiveError, match=message):
        archive.import_run(data, runs_dir)
    assert sorted(p.name for p in runs_dir.iterdir()) == before, "a refused import left something behind"


# -- 1. every file against a schema ----------------------------------------------------------------

HOSTILE_SUMMARIES = [
    ('{"test_accuracy": 1' + "0" * 400 + "}", "test_accuracy"),  # OverflowError in float() before
    ('{"test_accuracy": "abc"}', "test_accuracy"),
    ('{"test_accuracy": 0.9, "train_time_s": "abc"}', "train_time_s"),
    ('{"test_accuracy": 1.5}', "test_accuracy"),
    ('{"test_accuracy": NaN}', "test_accuracy"),
    ('{"test_accuracy": 0.9, "parameters": -1}', "parameters"),
    ('{"test_accuracy": 0.9, "parameters": true}', "parameters"),
    ('{"test_accuracy": 0.9, "confusion": [["x"]]}', "confusion"),
    ('{"test_accuracy": 0.9, "unknown_key": 1' + "0" * 400 + "}", "unknown_key"),
]


@pytest.mark.parametrize(("content", "field"), HOSTILE_SUMMARIES)
def test_a_summary_that_breaks_the_schema_makes_its_run_broken_with_the_reason(
    runs_dir: Path, content: str, field: str
) -> None:
    good = _run(runs_dir, accuracy=0.5)
    bad = _run(runs_dir, accuracy=0.99)
    (bad / "summary.json").write_text(content)
    listed, broken = _scan(runs_dir)
    assert listed == [good.name] and list(broken) == [bad.name]
    assert "summary.json" in broken[bad.name] and field in broken[bad.name], broken[bad.name]
    assert runs.best_run(runs_dir).id == good.name
    with pytest.raises(CorruptRun, match=field):
        runs.load_run(bad.name, runs_dir)


@pytest.mark.parametrize(
    ("file", "content", "field"),
    [
        ("run.json", {"name": 12, "status": "completed"}, "name"),
        ("run.json", {"name": "x", "status": "completed", "tags": [1, 2]}, "tags"),
        ("run.json", {"name": "x", "status": "completed", "details": ["what"]}, "details"),
        ("run.json", {"name": "x", "status": "completed", "notes": "n" * 200_001}, "notes"),
        ("history.json", [{"kind": "step", "epoch": 1}], "point 0"),
        ("history.json", [{"kind": "epoch", "epoch": "one"}], "epoch"),
    ],
)
def test_run_json_and_history_are_checked_too(runs_dir: Path, file: str, content: Any, field: str) -> None:
    bad = _run(runs_dir)
    (bad / file).write_text(json.dumps(content))
    if file == "run.json":
        _, broken = _scan(runs_dir)
        assert field in broken[bad.name], broken
    else:
        with pytest.raises(CorruptRun, match=field):
            runs.load_history(bad.name, runs_dir)


def test_the_cli_lists_a_run_with_text_where_numbers_belong_as_broken(
    runs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _run(runs_dir)
    bad = _run(runs_dir)
    (bad / "summary.json").write_text('{"test_accuracy": 0.9, "train_time_s": "abc", "parameters": "x"}')
    assert cli.main(["--runs-dir", str(runs_dir), "runs"]) == 0
    out = capsys.readouterr().out
    assert good.name in out and "Traceback" not in out
    (line,) = [ln for ln in out.splitlines() if bad.name in ln]
    assert "broken" in line and "train_time_s" in line


def test_the_import_refuses_a_summary_with_a_400_digit_accuracy(runs_dir: Path) -> None:
    entries = _entries(_run(runs_dir / "elsewhere"))
    entries["summary.json"] = b'{"test_accuracy": 1' + b"0" * 400 + b"}"
    _refused(zip_of(entries), runs_dir, "summary.json: test_accuracy")
    entries["summary.json"] = b'{"train_time_s": "abc"}'
    _refused(zip_of(entries), runs_dir, "summary.json: train_time_s")
    entries["summary.json"] = b'{"test_accuracy": 0.9}'
    entries["history.json"] = b'[{"kind": "step", "epoch": 1}]'
    _refused(zip_of(entries), runs_dir, "history.json: point 0")


# -- 2. one bad folder never takes the listing down ----------------------------------------------


@pytest.mark.parametrize("file", ["config.json", "run.json", "summary.json"])
def test_a_5000_digit_integer_anywhere_makes_one_broken_run(runs_dir: Path, file: str) -> None:
    good = _run(runs_dir)
    bad = _run(runs_dir)
    data = json.loads((bad / file).read_text())
    key = {"config.json": "seed", "run.json": "notes", "summary.json": "parameters"}[file]
    data[key] = "HUGE"
    (bad / file).write_text(json.dumps(data).replace('"HUGE"', DIGITS_5000))
    listed, broken = _scan(runs_dir)
    assert listed == [good.name] and list(broken) == [bad.name]
    assert file in broken[bad.name], broken


def test_a_fifo_named_run_json_does_not_hang_the_listing(runs_dir: Path, fifos: list[Path]) -> None:
    good = _run(runs_dir)
    bad = _run(runs_dir)
    for name in ("run.json", "summary.json"):
        (bad / name).unlink()
        os.mkfifo(bad / name)
        fifos.append(bad / name)
    listed, broken = _scan(runs_dir)
    assert listed == [good.name] and "not a regular file" in broken[bad.name], broken


def test_a_run_json_linked_to_dev_zero_is_refused_without_reading_it(runs_dir: Path) -> None:
    """In a child process whose address space is capped: an unbounded read fails there, not here."""
    good = _run(runs_dir)
    bad = _run(runs_dir)
    for name in ("run.json", "config.json"):
        (bad / name).unlink()
        (bad / name).symlink_to("/dev/zero")
    code = textwrap.dedent(
        f"""
        import json, resource
        from mnist_core import runs
        vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize"))
        cap = vm * 1024 + (512 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        good, broken = runs.scan_runs({str(runs_dir)!r})
        print(json.dumps([[r.id for r in good], broken]))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    listed, broken = json.loads(proc.stdout)
    assert listed == [good.name] and "symbolic link" in broken[bad.name], broken


def test_a_lock_that_is_a_folder_does_not_crash_the_listing(runs_dir: Path) -> None:
    writer = runs.RunWriter.create(CFG, runs_dir)
    writer.release()
    (writer.path / ".lock").unlink()
    (writer.path / ".lock").mkdir()
    listed, broken = _scan(runs_dir)
    assert listed == [writer.id] and broken == {}
    assert runs.load_run(writer.id, runs_dir).status == "interrupted"


def test_any_error_while_reading_one_folder_is_that_folder_s_reason(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = _run(runs_dir)
    bad = _run(runs_dir)
    real = runs.load_run

    def flaky(run_id: str, runs_dir: Any = None) -> runs.RunInfo:
        if run_id == bad.name:
            raise RuntimeError("disk on fire\nsecond line")
        return real(run_id, runs_dir)

    monkeypatch.setattr(runs.catalog, "load_run", flaky)  # what scan_runs calls
    listed, broken = _scan(runs_dir)
    assert listed == [good.name] and "disk on fire" in broken[bad.name]


def test_a_symlinked_run_file_is_not_followed(runs_dir: Path, tmp_path: Path) -> None:
    bad = _run(runs_dir)
    outside = tmp_path / "summary.json"
    outside.write_text('{"test_accuracy": 0.5}')
    (bad / "summary.json").unlink()
    (bad / "summary.json").symlink_to(outside)
    _, broken = _scan(runs_dir)
    assert "symbolic link" in broken[bad.name], broken


# -- 3. no weights, too many parameters -------------------------------------------------------------


def _plant(runs_dir: Path, cfg: RunConfig, summary: dict[str, Any], name: str) -> Path:
    folder = runs_dir / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(cfg.to_dict()))
    (folder / "run.json").write_text(json.dumps({"id": name, "name": name, "status": "completed"}))
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


@pytest.fixture
def no_big_builds(monkeypatch: pytest.MonkeyPatch) -> list[RunConfig]:
    """Fails the test if a model is built for a configuration that has no weights or is too big."""
    built: list[RunConfig] = []
    real = runs.catalog.build_model

    def guarded(cfg: RunConfig, *args: Any, **kwargs: Any) -> Any:
        built.append(cfg)
        if len(cfg.hidden) > 4:
            raise AssertionError(f"built a model of {cfg.label()}")
        return real(cfg, *args, **kwargs)

    for module in (runs.catalog, runs.manage):  # load_model, save_version
        monkeypatch.setattr(module, "build_model", guarded)
    return built


def test_a_run_without_weights_is_never_the_default_and_never_built(
    runs_dir: Path, no_big_builds: list[RunConfig]
) -> None:
    good = _run(runs_dir, accuracy=0.9)
    empty = _plant(runs_dir, CFG, {"test_accuracy": 1.0}, "20990101-000000-mlp-8-aaaaaa")
    listed, broken = _scan(runs_dir)
    assert set(listed) == {good.name, empty.name} and broken == {}
    assert runs.best_run(runs_dir).id == good.name
    with pytest.raises(CorruptRun, match=r"weights\.pt is missing"):
        runs.load_model(empty.name, runs_dir)
    assert no_big_builds == []


def test_a_config_too_big_to_build_is_broken_and_refused_before_building(
    runs_dir: Path, no_big_builds: list[RunConfig]
) -> None:
    good = _run(runs_dir, accuracy=0.9)
    huge = _plant(runs_dir, HUGE, {"test_accuracy": 1.0}, "20990101-000000-mlp-huge-bbbbbb")
    (huge / "weights.pt").write_bytes(_torch_bytes({"x": torch.zeros(1)}))
    listed, broken = _scan(runs_dir)
    assert listed == [good.name] and "1,013,268,490 parameters" in broken[huge.name], broken
    assert runs.best_run(runs_dir).id == good.name
    with pytest.raises(CorruptRun, match="parameters"):
        runs.load_model(huge.name, runs_dir)
    assert no_big_builds == []


def test_weights_larger_than_the_model_are_not_loaded(runs_dir: Path) -> None:
    bad = _run(runs_dir)
    state = build_model(CFG).state_dict() | {"extra": torch.zeros(4 << 20)}  # 16 MB more
    (bad / "weights.pt").write_bytes(_torch_bytes(state))
    with pytest.raises(CorruptRun, match="larger than"):
        runs.load_model(bad.name, runs_dir)


def test_the_import_refuses_a_run_without_weights_or_with_a_huge_config(runs_dir: Path) -> None:
    entries = _entries(_run(runs_dir / "elsewhere"))
    entries.pop("checkpoint.pt")
    no_weights = {k: v for k, v in entries.items() if k != "weights.pt"}
    no_weights["config.json"] = json.dumps(HUGE.to_dict()).encode()
    no_weights["summary.json"] = b'{"test_accuracy": 1.0}'
    data = zip_of(no_weights)  # the 724-byte zip
    assert len(data) < 4000
    _refused(data, runs_dir, "1,013,268,490 parameters")
    _refused(zip_of(entries | {"config.json": no_weights["config.json"]}), runs_dir, "parameters")
    _refused(zip_of({k: v for k, v in entries.items() if k != "weights.pt"}), runs_dir, r"no weights\.pt")


# -- 7. a crafted checkpoint.pt ----------------------------------------------------------------------


def _crafted(kind: str) -> dict[str, Any]:
    state = _state()
    ckpt: dict[str, Any] = {
        "epoch": state.epoch, "step_in_epoch": state.step_in_epoch, "model": state.model,
        "optimizer": state.optimizer, "scheduler": state.scheduler, "elapsed_s": state.elapsed_s,
        "history": state.history,
    }  # fmt: skip
    opt = ckpt["optimizer"]
    if kind == "bad optimizer":
        ckpt["optimizer"] = {"bad": 1}
    elif kind == "epoch abc":
        ckpt["epoch"] = "abc"
    elif kind == "epoch huge":
        ckpt["epoch"] = 10**400
    elif kind == "wrong model keys":
        ckpt["model"] = {f"x{k}": v for k, v in state.model.items()}
    elif kind == "history missing keys":
        ckpt["history"] = [{"kind": "step"}]
    elif kind == "optimizer state shape":
        opt["state"][0]["exp_avg"] = torch.zeros(3)
    elif kind == "optimizer lr text":
        opt["param_groups"][0]["lr"] = "abc"
    elif kind == "optimizer amsgrad":
        opt["param_groups"][0]["amsgrad"] = True
    elif kind == "optimizer unknown param":
        opt["state"][99] = opt["state"][0]
    elif kind == "missing field":
        del ckpt["elapsed_s"]
    elif kind == "scheduler without schedule":
        ckpt["scheduler"] = {"x": torch.zeros(1)}
    return ckpt


CRAFTED = [
    "bad optimizer", "epoch abc", "epoch huge", "wrong model keys", "history missing keys",
    "optimizer state shape", "optimizer lr text", "optimizer amsgrad", "optimizer unknown param",
    "missing field", "scheduler without schedule",
]  # fmt: skip


@pytest.mark.parametrize("kind", CRAFTED)
def test_a_crafted_checkpoint_is_refused_at_resume_and_at_import(runs_dir: Path, kind: str) -> None:
    folder = _run(runs_dir, status="stopped")
    (folder / "checkpoint.pt").write_bytes(_torch_bytes(_crafted(kind)))
    with pytest.raises(CorruptRun, match=r"checkpoint\.pt"):
        runs.load_train_state(folder.name, runs_dir)
    target = runs_dir / "imports"
    target.mkdir()
    _refused(zip_of(_entries(folder)), target, r"checkpoint\.pt")


def test_the_untouched_checkpoint_passes(runs_dir: Path) -> None:
    """The refusals above are not vacuous: the same checkpoint, untouched, resumes and imports."""
    folder = _run(runs_dir, status="stopped")
    (folder / "checkpoint.pt").write_bytes(_torch_bytes(_crafted("none")))
    state = runs.load_train_state(folder.name, runs_dir)
    assert state.epoch == 1 and state.history[0]["n"] == 64
    assert archive.import_run(zip_of(_entries(folder)), runs_dir / "imports").status == "stopped"


def test_resuming_a_run_with_a_crafted_checkpoint_fails_with_a_message(
    runs_dir: Path, synthetic_data_dir: Path
) -> None:
    folder = _run(runs_dir, status="stopped")
    (folder / "checkpoint.pt").write_bytes(_torch_bytes(_crafted("bad optimizer")))
    with pytest.raises(CorruptRun, match=r"checkpoint\.pt's optimizer state"):
        pipeline.run_training(None, runs_dir=runs_dir, data_root=synthetic_data_dir, resume_id=folder.name)
    info = runs.load_run(folder.name, runs_dir)
    assert info.status == "failed" and "checkpoint.pt" in info.meta["error"]


# -- the pages, with every hostile folder at once ------------------------------------------------------


@pytest.fixture
def hostile_folder(runs_dir: Path, fifos: list[Path]) -> Path:
    """One good run (the only one a page may use) beside one of each hostile kind."""
    good = _run(runs_dir, accuracy=0.5)
    for content, _ in HOSTILE_SUMMARIES[:3]:
        (_run(runs_dir, accuracy=0.99) / "summary.json").write_text(content)
    config = _run(runs_dir, accuracy=0.99)
    text = json.dumps(CFG.to_dict() | {"seed": "HUGE"})
    (config / "config.json").write_text(text.replace('"HUGE"', DIGITS_5000))
    _plant(runs_dir, CFG, {"test_accuracy": 1.0}, "20990101-000000-mlp-8-aaaaaa")
    _plant(runs_dir, HUGE, {"test_accuracy": 1.0}, "20990101-000000-mlp-huge-bbbbbb")
    fifo = _run(runs_dir, accuracy=0.99)
    (fifo / "run.json").unlink()
    os.mkfifo(fifo / "run.json")
    fifos.append(fifo / "run.json")
    locked = runs.RunWriter.create(CFG, runs_dir)
    locked.release()
    (locked.path / ".lock").unlink()
    (locked.path / ".lock").mkdir()
    crafted = _run(runs_dir, status="stopped", accuracy=0.99)
    (crafted / "checkpoint.pt").write_bytes(_torch_bytes(_crafted("epoch abc")))
    return good


@pytest.mark.parametrize("page", [None, "pages/train.py", "pages/runs.py"])
def test_home_train_and_runs_pages_survive_every_hostile_run(
    app_path: Path, hostile_folder: Path, page: str | None
) -> None:
    at = _in_time(lambda: open_page(app_path, page), timeout_s=120)
    no_exception(at)


def test_the_draw_page_predicts_with_the_good_run_beside_every_hostile_one(
    app_path: Path, hostile_folder: Path
) -> None:
    at = _in_time(lambda: inject(open_page(app_path, "pages/draw.py"), canvas_png(3)), timeout_s=120)
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    shown = "\n".join(str(el.value) for kind in ("markdown", "caption") for el in at.get(kind))
    assert hostile_folder.name in shown or runs.load_run(hostile_folder.name).name in shown


@pytest.mark.parametrize("file", ["weights.pt", "checkpoint.pt"])
def test_a_fifo_or_link_named_like_a_pt_file_is_refused_with_a_message(
    runs_dir: Path, fifos: list[Path], tmp_path: Path, file: str
) -> None:
    folder = _run(runs_dir, status="stopped")
    load = runs.load_model if file == "weights.pt" else runs.load_train_state
    (folder / file).unlink()
    os.mkfifo(folder / file)
    fifos.append(folder / file)
    assert runs.has_checkpoint(folder.name, runs_dir)  # never a silent start from scratch
    with pytest.raises(CorruptRun, match="not a regular file"):
        _in_time(lambda: load(folder.name, runs_dir))
    (folder / file).unlink()
    (folder / file).symlink_to(tmp_path / "nowhere.pt")
    with pytest.raises(CorruptRun, match="symbolic link"):
        load(folder.name, runs_dir)


# -- any JSON at all: read, shown, never raised ------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.floats() | st.text(max_size=20)
    | st.integers(min_value=-(10**30), max_value=10**30) | st.sampled_from([10**400, -(2**64), 2**63]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
_keys = st.sampled_from(
    ["test_accuracy", "train_time_s", "parameters", "confusion", "per_class_accuracy", "misclassified",
     "name", "status", "tags", "details", "notes", "created", "kind", "epoch", "loss", "n", "hidden", "seed"]
)  # fmt: skip
_object = st.dictionaries(_keys | st.text(max_size=8), _json, max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    file=st.sampled_from(["summary.json", "run.json", "config.json", "history.json"]),
    content=_object | _json | st.lists(_object, max_size=3),
    merge=st.booleans(),
)
@example(file="summary.json", content={"test_accuracy": 10**400}, merge=True)
@example(file="summary.json", content={"train_time_s": "abc", "parameters": [1]}, merge=True)
@example(file="run.json", content={"details": [], "tags": "x"}, merge=True)
def test_any_json_in_any_file_is_either_a_run_or_a_broken_one(
    runs_dir: Path, file: str, content: Any, merge: bool
) -> None:
    """Whatever JSON a file holds: the listing, the tables, the summary and the curve never raise."""
    from mnist_core import compare, curves, report

    folder = runs_dir / "20260101-000000-mlp-8-fuzzed"
    if not folder.exists():
        folder = _run(runs_dir)
        folder.rename(runs_dir / "20260101-000000-mlp-8-fuzzed")
        folder = runs_dir / "20260101-000000-mlp-8-fuzzed"
        original = {name: (folder / name).read_text() for name in ("summary.json", "run.json", "config.json")}
        (runs_dir.parent / "originals.json").write_text(json.dumps(original))
    for name, text in json.loads((runs_dir.parent / "originals.json").read_text()).items():
        (folder / name).write_text(text)
    if merge and isinstance(content, dict) and file != "history.json":
        base = json.loads((folder / file).read_text())
        content = base | content
    (folder / file).write_text(json.dumps(content))
    listed, broken = runs.scan_runs(runs_dir)
    assert len(listed) + len(broken) == 1
    for reason in broken.values():
        assert reason and "\n" not in reason
    for run in listed:
        compare.table([run])
        report.summary_items(run.summary)
        report.epochs_done(run, [])
        assert run.test_accuracy is None or 0.0 <= run.test_accuracy <= 1.0
        runs.best_of([run])
        try:
            curves.curve_columns(runs.load_history(run.id, runs_dir))
        except CorruptRun:
            pass
