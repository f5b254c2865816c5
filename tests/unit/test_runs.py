"""Runs on disk: layout, atomic writes, statuses, safe loading, broken folders."""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
import textwrap
import threading

import pytest
import torch

from mnist_core import runs
from mnist_core.config import RunConfig
from mnist_core.errors import CorruptRun, MnistLabError, RunNotFound
from mnist_core.models import build_model
from mnist_core.runs import TrainState

CFG = RunConfig(hidden=(8,))


def _state(cfg: RunConfig = CFG, epoch: int = 1) -> TrainState:
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters())
    history = [{"kind": "epoch", "epoch": 1}]
    return TrainState(epoch, 0, model.state_dict(), opt.state_dict(), None, 1.5, history)


def _completed_run(runs_dir, cfg: RunConfig = CFG, accuracy: float = 0.9) -> str:
    writer = runs.RunWriter.create(cfg, runs_dir)
    writer.save_checkpoint(_state(cfg))
    writer.finish("completed", {"test_accuracy": accuracy})
    return writer.id


def test_layout_and_round_trip(runs_dir):
    run_id = _completed_run(runs_dir)
    path = runs_dir / run_id
    assert sorted(p.name for p in path.iterdir() if not p.name.startswith(".")) == [
        "checkpoint.pt", "config.json", "history.json", "run.json", "summary.json", "weights.pt",
    ]
    assert json.loads((path / "config.json").read_text()) == CFG.to_dict()
    info = runs.load_run(run_id, runs_dir)
    assert info.status == "completed" and info.config == CFG and info.test_accuracy == 0.9
    model, cfg = runs.load_model(run_id, runs_dir)
    assert cfg == CFG and not model.training
    expected = build_model(CFG).state_dict()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, expected[key])
    state = runs.load_train_state(run_id, runs_dir)
    assert state.epoch == 1 and [(h["kind"], h["epoch"]) for h in state.history] == [("epoch", 1)]
    assert state.history[0]["val_acc"] is None  # every known key, so resuming never meets a KeyError


def test_no_temp_files_left_and_nothing_else_written(runs_dir):
    run_id = _completed_run(runs_dir)
    assert [p.name for p in runs_dir.iterdir()] == [run_id]
    assert not [p for p in (runs_dir / run_id).iterdir() if p.name.endswith(".tmp")]


def test_failed_write_keeps_previous_file(runs_dir, monkeypatch):
    writer = runs.RunWriter.create(CFG, runs_dir)
    writer.save_checkpoint(_state(epoch=1))
    before = (runs_dir / writer.id / "checkpoint.pt").read_bytes()

    def disk_full(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space"):
        writer.save_checkpoint(_state(epoch=2))
    assert (runs_dir / writer.id / "checkpoint.pt").read_bytes() == before
    assert not [p for p in (runs_dir / writer.id).iterdir() if p.name.endswith(".tmp")]
    assert runs.load_train_state(writer.id, runs_dir).epoch == 1


def test_running_with_live_lock_is_running(runs_dir):
    writer = runs.RunWriter.create(CFG, runs_dir)
    assert runs.load_run(writer.id, runs_dir).status == "running"
    writer.release()
    assert runs.load_run(writer.id, runs_dir).status == "interrupted"


def test_killed_process_leaves_interrupted_run(runs_dir):
    """A process that dies holding the lock (SIGKILL) leaves a resumable run."""
    code = textwrap.dedent(
        f"""
        import os, signal
        from mnist_core import runs
        from mnist_core.config import RunConfig
        w = runs.RunWriter.create(RunConfig(hidden=(8,)), {str(runs_dir)!r})
        print(w.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9
    run_id = proc.stdout.strip()
    assert runs.load_run(run_id, runs_dir).status == "interrupted"
    writer = runs.RunWriter.reopen(run_id, runs_dir)  # interrupted runs resume
    assert runs.load_run(run_id, runs_dir).status == "running"
    writer.finish("completed", {})
    assert runs.load_run(run_id, runs_dir).status == "completed"


def test_reopen_refuses_completed_and_live_runs(runs_dir):
    done = _completed_run(runs_dir)
    with pytest.raises(MnistLabError, match="completed"):
        runs.RunWriter.reopen(done, runs_dir)
    live = runs.RunWriter.create(CFG, runs_dir)
    with pytest.raises(MnistLabError, match="running"):
        runs.RunWriter.reopen(live.id, runs_dir)


def test_list_runs_newest_first_and_skips_broken(runs_dir, caplog):
    first = _completed_run(runs_dir, accuracy=0.8)
    second = _completed_run(runs_dir, accuracy=0.95)
    (runs_dir / "broken-json").mkdir()
    (runs_dir / "broken-json" / "run.json").write_text("{not json")
    (runs_dir / "not-an-object").mkdir()
    (runs_dir / "not-an-object" / "run.json").write_text("[1, 2]")
    (runs_dir / "bad-config").mkdir()
    (runs_dir / "bad-config" / "run.json").write_text(json.dumps({"status": "completed"}))
    (runs_dir / "bad-config" / "config.json").write_text(json.dumps({"hidden": [10**9]}))
    (runs_dir / "stray-file.txt").write_text("hello")
    with caplog.at_level(logging.WARNING, logger="mnist_core.runs"):
        listed = runs.list_runs(runs_dir)
    assert {r.id for r in listed} == {first, second}
    assert listed[0].created >= listed[1].created
    assert sum("Skipping broken run" in m for m in caplog.messages) == 3
    broken = runs.broken_runs(runs_dir)
    assert set(broken) == {"broken-json", "not-an-object", "bad-config"}
    assert "hidden" in broken["bad-config"]
    assert runs.best_run(runs_dir).id == second
    # Pages list the runs on every rerun: each broken folder is logged once per reason, not each time.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mnist_core.runs"):
        runs.list_runs(runs_dir)
        runs.list_runs(runs_dir)
        (runs_dir / "broken-json" / "run.json").write_text("[3]")  # broken another way: said once more
        runs.list_runs(runs_dir)
    assert [m for m in caplog.messages if "Skipping broken run" in m] == [
        f"Skipping broken run folder {runs_dir / 'broken-json'}: {runs.broken_runs(runs_dir)['broken-json']}"
    ]


def test_the_folder_state_sees_a_file_edited_in_place(runs_dir):
    """A history.json overwritten in place (not renamed in) left the folder's mtime, the cache key, as it was:
    the Runs page kept drawing the old curves."""
    run_id = _completed_run(runs_dir, accuracy=0.9)
    before = runs.folder_state(runs_dir)
    folder = runs_dir / run_id
    stamp = folder.stat().st_mtime_ns
    history = folder / "history.json"
    history.write_text("{ not json")  # in place
    os.utime(history, ns=(stamp + 10**9, stamp + 10**9))  # a second later, whatever the clock's grain
    os.utime(folder, ns=(stamp, stamp))  # the folder itself unchanged, as after an in-place edit
    assert runs.folder_state(runs_dir) != before
    assert dict(runs.folder_state(runs_dir))[run_id] == stamp + 10**9


def test_list_runs_of_missing_folder_is_empty(tmp_path):
    assert runs.list_runs(tmp_path / "nope") == []
    assert runs.best_run(tmp_path / "nope") is None


@pytest.mark.parametrize("bad", ["../etc", "/abs", "a/b", "", "..", ".hidden"])
def test_run_ids_cannot_escape(runs_dir, bad):
    with pytest.raises(RunNotFound):
        runs.run_path(bad, runs_dir)


def test_missing_run(runs_dir):
    with pytest.raises(RunNotFound):
        runs.load_run("20200101-000000-mlp-1-abcd", runs_dir)


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/mnist-lab-pwned",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_pickle_is_refused_and_never_runs(runs_dir):
    run_id = _completed_run(runs_dir)
    marker = "/tmp/mnist-lab-pwned"
    if os.path.exists(marker):
        os.unlink(marker)
    with open(runs_dir / run_id / "weights.pt", "wb") as f:
        pickle.dump({"w": _Boom()}, f)
    with pytest.raises(CorruptRun, match="cannot be loaded safely"):
        runs.load_model(run_id, runs_dir)
    assert not os.path.exists(marker)


def test_truncated_or_mismatched_weights(runs_dir):
    run_id = _completed_run(runs_dir)
    weights = runs_dir / run_id / "weights.pt"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptRun):
        runs.load_model(run_id, runs_dir)
    torch.save(build_model(RunConfig(hidden=(9,))).state_dict(), weights)
    with pytest.raises(CorruptRun, match="does not match"):
        runs.load_model(run_id, runs_dir)
    weights.unlink()
    with pytest.raises(CorruptRun, match="missing"):
        runs.load_model(run_id, runs_dir)


def test_new_run_ids_are_unique_and_valid():
    ids = {runs.new_run_id(CFG) for _ in range(50)}
    assert len(ids) == 50
    for run_id in ids:
        runs.run_path(run_id)  # valid


# -- managing runs ------------------------------------------------------------------
def test_update_meta_renames_tags_and_annotates(runs_dir):
    run_id = _completed_run(runs_dir)
    info = runs.update_meta(run_id, runs_dir, name="  wide one ", tags=["b", "a", "a", " "], notes="hi")
    assert (info.name, info.meta["tags"], info.meta["notes"]) == ("wide one", ["a", "b"], "hi")
    assert info.status == "completed" and info.summary["test_accuracy"] == 0.9
    with pytest.raises(MnistLabError, match="name"):
        runs.update_meta(run_id, runs_dir, name="   ")


def test_status_change_keeps_a_concurrent_rename(runs_dir):
    writer = runs.RunWriter.create(CFG, runs_dir)
    runs.update_meta(writer.id, runs_dir, name="renamed while training", tags=["x"])
    writer.finish("completed", {"test_accuracy": 0.5})
    info = runs.load_run(writer.id, runs_dir)
    assert info.status == "completed" and info.name == "renamed while training" and info.meta["tags"] == ["x"]


def test_concurrent_meta_edits_are_never_torn(runs_dir):
    run_id = _completed_run(runs_dir)
    errors = []

    def edit(i: int) -> None:
        try:
            for j in range(20):
                runs.update_meta(run_id, runs_dir, notes=f"{i}-{j}")
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert runs.load_run(run_id, runs_dir).meta["notes"].endswith("-19")


def test_delete_run(runs_dir):
    run_id = _completed_run(runs_dir)
    live = runs.RunWriter.create(CFG, runs_dir)
    with pytest.raises(MnistLabError, match="being trained"):
        runs.delete_run(live.id, runs_dir)
    runs.delete_run(run_id, runs_dir)
    assert [r.id for r in runs.list_runs(runs_dir)] == [live.id]
    assert sorted(p.name for p in runs_dir.iterdir()) == [live.id]  # no hidden leftovers
    with pytest.raises(RunNotFound):
        runs.delete_run(run_id, runs_dir)


def test_delete_runs_removes_what_it_can_and_says_why_not_the_rest(runs_dir):
    """The Runs page's Delete: one core call for the picked runs (the page looped over delete_run)."""
    a, b = _completed_run(runs_dir), _completed_run(runs_dir)
    live = runs.RunWriter.create(CFG, runs_dir)
    deleted, errors = runs.delete_runs([a, live.id, "nope", b], runs_dir)
    assert deleted == 2 and len(errors) == 2
    assert "being trained" in errors[0] and "nope" in errors[1]
    assert [r.id for r in runs.list_runs(runs_dir)] == [live.id]


def test_save_version_keeps_parent_and_lineage(runs_dir):
    parent_id = _completed_run(runs_dir, accuracy=0.9)
    parent_weights = (runs_dir / parent_id / "weights.pt").read_bytes()
    model, _ = runs.load_model(parent_id, runs_dir)
    changed = {k: v + 1 for k, v in model.state_dict().items()}
    v1 = runs.save_version(parent_id, changed, {"test_accuracy": 0.89}, runs_dir, details={"label": 7})
    v2 = runs.save_version(v1.id, changed, {"test_accuracy": 0.88}, runs_dir)
    assert (runs_dir / parent_id / "weights.pt").read_bytes() == parent_weights
    assert v1.status == "completed" and v1.meta["parent"] == parent_id and v1.meta["kind"] == "correction"
    assert v1.meta["details"] == {"label": 7} and v1.config == CFG
    loaded, _ = runs.load_model(v1.id, runs_dir)
    for key, value in changed.items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    assert [r.id for r in runs.lineage(v2.id, runs_dir)] == [parent_id, v1.id, v2.id]
    runs.delete_run(v2.id, runs_dir)  # "undo" is deleting the version
    assert [r.id for r in runs.lineage(v1.id, runs_dir)] == [parent_id, v1.id]


def test_save_version_refuses_foreign_weights(runs_dir):
    parent_id = _completed_run(runs_dir)
    wrong = build_model(RunConfig(hidden=(9,))).state_dict()
    with pytest.raises(CorruptRun):
        runs.save_version(parent_id, wrong, {}, runs_dir)
    assert [r.id for r in runs.list_runs(runs_dir)] == [parent_id]


def test_deeply_nested_json_is_a_corrupt_run_not_a_crash(runs_dir):
    run_id = _completed_run(runs_dir)
    (runs_dir / run_id / "summary.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CorruptRun):
        runs.load_run(run_id, runs_dir)
    assert runs.list_runs(runs_dir) == []


def test_a_run_whose_first_files_cannot_be_written_leaves_no_folder(runs_dir, monkeypatch):
    def full_disk(path, obj):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runs.staging, "write_json", full_disk)  # where the new run is filled
    with pytest.raises(OSError, match="No space left"):
        runs.RunWriter.create(CFG, runs_dir)
    assert list(runs_dir.iterdir()) == []  # not a folder holding only .lock, listed as broken


def test_a_version_that_cannot_be_saved_leaves_only_the_parent(runs_dir, monkeypatch):
    parent_id = _completed_run(runs_dir)
    model, _ = runs.load_model(parent_id, runs_dir)

    def full_disk(path, obj):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runs.staging, "write_torch", full_disk)  # where the version is filled
    with pytest.raises(OSError, match="No space left"):
        runs.save_version(parent_id, model.state_dict(), {"test_accuracy": 0.5}, runs_dir)
    assert [p.name for p in runs_dir.iterdir() if not p.name.startswith(".")] == [parent_id]
    assert runs.broken_runs(runs_dir) == {}


def test_the_checkpoint_carries_its_history_so_a_crash_between_writes_loses_no_epoch(runs_dir):
    writer = runs.RunWriter.create(CFG, runs_dir)
    writer.save_checkpoint(_state(epoch=1))
    later = _state(epoch=2)
    later.history.append({"kind": "epoch", "epoch": 2})
    writer.save_checkpoint(later)
    # A crash after checkpoint.pt was renamed but before history.json was: put back the old one.
    (runs_dir / writer.id / "history.json").write_text(json.dumps([{"kind": "epoch", "epoch": 1}]))
    writer.release()
    state = runs.load_train_state(writer.id, runs_dir)
    assert state.epoch == 2 and [h["epoch"] for h in state.history] == [1, 2]


# -- the schema of a run's files (runschema) -------------------------------------------------


@pytest.mark.parametrize(
    "cfg",
    [
        RunConfig(hidden=(8,)),
        RunConfig(hidden=(64, 32, 16), batch_norm=True, crop=20),
        RunConfig(model="cnn", cnn_style="modern", cnn_channels=(16, 32), hidden=(128,)),
        RunConfig(model="cnn", cnn_style="lenet", cnn_channels=(6, 16), hidden=(120, 84)),
        RunConfig(model="cnn", cnn_style="modern", cnn_channels=(8, 8, 8, 8), hidden=(), crop=20),
    ],
)
def test_parameter_count_from_the_config_matches_the_built_model(cfg):
    from mnist_core.runs.schema import parameter_count

    assert parameter_count(cfg) == sum(p.numel() for p in build_model(cfg).parameters())


def test_the_train_page_s_largest_model_is_under_the_cap_and_a_16x8192_mlp_is_over():
    from mnist_core.runs.schema import MAX_PARAMETERS, parameter_count

    largest = RunConfig(model="cnn", cnn_channels=(32, 64), hidden=(4096,) * 8)
    assert parameter_count(largest) < MAX_PARAMETERS < parameter_count(RunConfig(hidden=(8192,) * 16))


@pytest.mark.parametrize(
    ("optimizer", "schedule", "momentum"),
    [("adam", "none", 0.9), ("adamw", "onecycle", 0.9), ("sgd", "cosine", 0.9), ("sgd", "none", 0.0)],
)
def test_real_checkpoints_of_every_optimizer_and_schedule_pass_the_schema(optimizer, schedule, momentum):
    from mnist_core.runs.schema import check_checkpoint
    from mnist_core.train_step import make_optimizer, make_scheduler

    cfg = RunConfig(model="cnn", cnn_channels=(4,), hidden=(8,), optimizer=optimizer, schedule=schedule,
                    momentum=momentum)
    model = build_model(cfg)
    opt = make_optimizer(cfg, model)
    sched = make_scheduler(cfg, opt, 100)
    for _ in range(3):
        model(torch.randn(2, 1, 28, 28)).sum().backward()
        opt.step()
        if sched is not None:
            sched.step()
    point = {"kind": "step", "epoch": 1, "loss": float("nan"), "train_acc": 0.1, "n": 2}  # diverged: valid
    ckpt = {"epoch": 0, "step_in_epoch": 3, "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict() if sched else None, "elapsed_s": 0.5, "history": [point]}
    checked = check_checkpoint(ckpt, cfg)
    assert checked["epoch"] == 0 and checked["history"][0]["n"] == 2
    fresh = make_optimizer(cfg, build_model(cfg))
    fresh.load_state_dict(checked["optimizer"])  # and torch agrees


def test_summary_and_meta_keep_their_keys_and_unknown_small_ones():
    from mnist_core.runs import schema as runschema

    assert runschema.summary({}) == {}
    summary = {"test_accuracy": 1, "test_loss": float("nan"), "new_figure": [1, "a", None]}
    assert runschema.summary(summary) == summary  # an int accuracy, a NaN loss, a future key
    meta = {"name": "n", "status": "completed", "details": {"what": "taught", "label": 3}}
    assert runschema.meta(meta) == meta
    with pytest.raises(CorruptRun, match=r"run\.json: details"):
        runschema.meta(meta | {"details": {"x": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}})


def test_a_history_keeps_its_per_layer_statistics_and_refuses_impossible_ones():
    from mnist_core.runs import schema as runschema

    layer = {"name": "layer 1 (784\u2192512)", "grad_norm": 0.5, "update_ratio": 1e-3, "dead_share": 0.25,
             "saturated_share": None}
    point = {"kind": "step", "epoch": 1, "step": 3, "loss": 0.3, "train_acc": 0.9, "n": 64, "layers": [layer]}
    loaded = runschema.history([point, point | {"layers": None}])
    assert loaded[0]["layers"] == [layer] and loaded[1]["layers"] is None  # the Train page's figures survive
    with pytest.raises(CorruptRun, match="point 0"):
        runschema.history([point | {"layers": [layer | {"dead_share": 1.5}]}])  # a share over 100%


def test_notes_and_tags_too_long_for_the_schema_are_refused_when_written_and_long_errors_are_cut(runs_dir):
    from mnist_core.runs import schema as runschema

    run_id = _completed_run(runs_dir)
    with pytest.raises(MnistLabError, match="Notes are limited"):
        runs.update_meta(run_id, runs_dir, notes="n" * (runschema.MAX_TEXT + 1))
    with pytest.raises(MnistLabError, match="tags"):
        runs.update_meta(run_id, runs_dir, tags=["t" * 201])
    runs.update_meta(run_id, runs_dir, notes="n" * runschema.MAX_TEXT)
    writer = runs.RunWriter.create(CFG, runs_dir)
    writer.finish("failed", error="E" * (runschema.MAX_TEXT * 2))
    info = runs.load_run(writer.id, runs_dir)  # listed, not broken: its error is all a failed run has
    assert info.status == "failed" and len(info.meta["error"]) == runschema.MAX_TEXT + 3


def test_a_corrected_version_is_the_best_run_only_when_it_is_more_accurate(runs_dir):
    """A correction keeps its parent's accuracy: it became every page's default model after one drawing."""
    parent = _completed_run(runs_dir, accuracy=0.95)
    state = runs.load_model(parent, runs_dir)[0].state_dict()
    tied = runs.save_version(parent, state, {"test_accuracy": 0.95}, runs_dir)
    assert tied.meta["parent"] == parent and runs.best_run(runs_dir).id == parent
    better = runs.save_version(parent, state, {"test_accuracy": 0.96}, runs_dir)
    assert runs.best_run(runs_dir).id == better.id
