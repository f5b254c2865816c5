"""A run end to end (pipeline), the job registry, and the CLI, on generated data."""

from __future__ import annotations

import json
import threading

import pytest
from job_gate import JobGate

from mnist_core import runs
from mnist_core.cli import main
from mnist_core.config import RunConfig
from mnist_core.errors import DatasetUnavailable
from mnist_core.jobs import JobRegistry
from mnist_core.pipeline import run_training
from tests.support.synthetic import make_digits

TINY = RunConfig(hidden=(32,), epochs=2, batch_size=64, lr=3e-3)

SUMMARY_KEYS = {
    "test_accuracy", "per_class_accuracy", "confusion", "misclassified", "train_time_s", "time_per_epoch_s",
    "parameters", "macs", "flops", "weights_bytes", "checkpoint_bytes", "latency_p50_ms", "latency_p95_ms",
    "throughput_images_s", "threads", "device", "energy_kwh", "co2_kg", "co2_country", "energy_estimated",
}


def test_run_training_saves_a_complete_run(runs_dir, synthetic_data_dir):
    started = []
    info = run_training(TINY, runs_dir=runs_dir, data_root=synthetic_data_dir, on_start=started.append)
    assert started == [info.id] and info.status == "completed"
    s = info.summary
    assert SUMMARY_KEYS <= set(s)
    assert s["parameters"] == 784 * 32 + 32 + 32 * 10 + 10
    assert s["macs"] == 784 * 32 + 32 * 10 and s["flops"] == 2 * s["macs"]
    assert s["checkpoint_bytes"] > s["weights_bytes"] > 4 * s["parameters"] - 1  # optimizer state is bigger
    assert 0.5 < s["test_accuracy"] <= 1 and len(s["confusion"]) == 10
    assert sum(map(sum, s["confusion"])) == 200
    assert s["latency_p50_ms"] <= s["latency_p95_ms"]
    assert s["energy_kwh"] > 0 and s["co2_kg"] > 0
    history = runs.load_history(info.id, runs_dir)
    assert [h["epoch"] for h in history if h["kind"] == "epoch"] == [1, 2]
    json.dumps(s)  # JSON-ready


def test_stop_then_resume_to_completion(runs_dir, synthetic_data_dir):
    events = []
    info = run_training(
        TINY, runs_dir=runs_dir, data_root=synthetic_data_dir, on_progress=events.append,
        should_stop=lambda: any(e.kind == "epoch" for e in events),
    )
    assert info.status == "stopped" and info.summary["epochs_done"] == 1
    assert "test_accuracy" in info.summary  # a stopped run keeps usable weights
    resumed = run_training(resume_id=info.id, runs_dir=runs_dir, data_root=synthetic_data_dir)
    assert resumed.id == info.id and resumed.status == "completed"
    assert resumed.summary["epochs_done"] == 2
    assert resumed.summary["energy_kwh"] > info.summary["energy_kwh"]  # both segments counted
    epochs = [h["epoch"] for h in runs.load_history(info.id, runs_dir) if h["kind"] == "epoch"]
    assert epochs == [1, 2]


def test_resuming_a_run_that_died_before_any_checkpoint_starts_over(runs_dir, synthetic_data_dir):
    writer = runs.RunWriter.create(TINY, runs_dir)
    writer.release()  # the process died during the first epoch
    assert runs.load_run(writer.id, runs_dir).status == "interrupted"
    assert not runs.has_checkpoint(writer.id, runs_dir)
    info = run_training(resume_id=writer.id, runs_dir=runs_dir, data_root=synthetic_data_dir)
    assert info.id == writer.id and info.status == "completed" and info.summary["epochs_done"] == 2


def test_missing_dataset_raises_instructions_and_leaves_no_run(runs_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("mnist_core.data._DATASETS", {"mnist": _OfflineMNIST, "fashion": _OfflineMNIST})
    with pytest.raises(DatasetUnavailable, match="Put the four files"):
        run_training(TINY, runs_dir=runs_dir, data_root=tmp_path / "empty")
    assert runs.list_runs(runs_dir) == []


def test_failure_while_training_marks_the_run_failed(runs_dir, synthetic_data_dir):
    def explode(_event):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_training(TINY, runs_dir=runs_dir, data_root=synthetic_data_dir, on_progress=explode)
    (failed,) = runs.list_runs(runs_dir)
    assert failed.status == "failed" and failed.meta["error"] == "RuntimeError: boom"


class _OfflineMNIST:
    __name__ = "MNIST"

    def __init__(self, *_a, **_k):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")


def test_registry_runs_one_at_a_time_and_stops(runs_dir, synthetic_data_dir, monkeypatch):
    gate = JobGate(monkeypatch, TINY.replace(epochs=50))  # held while it trains: it cannot end first
    registry = JobRegistry(max_concurrent=1)
    long = registry.submit(TINY.replace(epochs=50), runs_dir=runs_dir, data_root=synthetic_data_dir)
    short = registry.submit(TINY.replace(epochs=1), runs_dir=runs_dir, data_root=synthetic_data_dir)
    gate.wait_held()
    snap = long.snapshot()
    assert snap.state == "running" and snap.run_id and 0 < snap.fraction < 1
    assert short.snapshot().state == "queued"
    long.stop()
    gate.release()
    assert registry.wait(timeout=60)
    assert long.snapshot().state == "stopped"
    done = short.snapshot()
    assert done.state == "completed" and done.summary["test_accuracy"] > 0.3
    assert done.events and done.events[-1].kind == "epoch"
    statuses = {r.id: r.status for r in runs.list_runs(runs_dir)}
    assert statuses == {long.snapshot().run_id: "stopped", done.run_id: "completed"}


def test_registry_records_failures(runs_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("mnist_core.data._DATASETS", {"mnist": _OfflineMNIST, "fashion": _OfflineMNIST})
    registry = JobRegistry()
    job = registry.submit(TINY, runs_dir=runs_dir, data_root=tmp_path / "empty")
    assert registry.wait(timeout=60)
    snap = job.snapshot()
    assert snap.state == "failed" and "Put the four files" in snap.error


def test_registry_is_shared_across_threads(runs_dir, synthetic_data_dir):
    registry = JobRegistry(max_concurrent=2)
    jobs = []
    threads = [
        threading.Thread(
            target=lambda: jobs.append(
                registry.submit(TINY.replace(epochs=1), runs_dir=runs_dir, data_root=synthetic_data_dir)
            )
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert registry.wait(timeout=120)
    assert sorted(j.snapshot().state for j in jobs) == ["completed"] * 3
    assert len({j.snapshot().run_id for j in jobs}) == 3


def test_stopping_a_queued_job_never_starts_it(runs_dir, synthetic_data_dir):
    registry = JobRegistry(max_concurrent=1)
    first = registry.submit(TINY.replace(epochs=1), runs_dir=runs_dir, data_root=synthetic_data_dir)
    queued = registry.submit(TINY, runs_dir=runs_dir, data_root=synthetic_data_dir)
    queued.stop()
    assert registry.wait(timeout=60)
    assert first.snapshot().state == "completed"
    assert queued.snapshot().state == "stopped" and queued.snapshot().run_id is None


# -- CLI --------------------------------------------------------------------------
def test_cli_train_runs_evaluate_predict(runs_dir, synthetic_data_dir, tmp_path, capsys):
    from PIL import Image

    args = ["--runs-dir", str(runs_dir), "--data-dir", str(synthetic_data_dir)]
    assert main([*args, "train", "--depth", "1", "--width", "32", "--epochs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "MACs (fvcore)" in out and "FLOPs (2 x MACs)" in out
    (run,) = runs.list_runs(runs_dir)
    assert run.config.hidden == (32,) and run.config.epochs == 1

    assert main([*args, "runs"]) == 0
    assert run.id in capsys.readouterr().out

    assert main([*args, "evaluate", run.id]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["test_accuracy"] == pytest.approx(run.summary["test_accuracy"])

    images, _labels = make_digits(3, seed=5)
    paths = []
    for i, img in enumerate(images):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(img).resize((140, 140)).save(path)
        paths.append(str(path))
    blank = tmp_path / "blank.png"
    Image.new("L", (50, 50), 255).save(blank)
    assert main([*args, "predict", run.id, *paths, str(blank)]) == 1  # one image failed
    predicted = json.loads(capsys.readouterr().out)
    assert [p.get("label") is not None for p in predicted] == [True, True, True, False]
    assert "error" in predicted[3]


def test_cli_trains_with_mixed_precision_and_the_run_says_so(runs_dir, synthetic_data_dir, capsys):
    args = ["--runs-dir", str(runs_dir), "--data-dir", str(synthetic_data_dir)]
    assert main([*args, "train", "--width", "16", "--epochs", "1", "--amp", "--quiet"]) == 0
    (run,) = runs.list_runs(runs_dir)
    assert run.config.amp is True and run.status == "completed"
    assert runs.load_run(run.id, runs_dir).config.amp is True  # saved in config.json, read back


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        (["--depth", "0"], "hidden"),
        (["--width", "10000000"], "hidden"),
        (["--batch-size", "0"], "batch_size"),
        (["--batch-size", "60000"], "batch_size"),
        (["--lr", "0"], "lr"),
        (["--lr", "-1"], "lr"),
        (["--epochs", "0"], "epochs"),
    ],
)
def test_cli_rejects_bad_config_naming_the_field(runs_dir, flags, field, capsys):
    assert main(["--runs-dir", str(runs_dir), "train", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and field in err
    assert runs.list_runs(runs_dir) == []  # nothing was created


def test_cli_unknown_run(runs_dir, capsys):
    assert main(["--runs-dir", str(runs_dir), "evaluate", "no-such-run"]) == 2
    assert "No run" in capsys.readouterr().err
