"""The Train page through AppTest: controls, cost, live progress, summary, queue, stop/resume."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from job_gate import JobGate
from streamlit.testing.v1 import AppTest

from mnist_core import report, runs
from mnist_core.config import RunConfig
from mnist_core.data import load_data
from mnist_core.jobs import JobRegistry
from mnist_core.train import train
from tests.support import apptest
from tests.support.apptest import metrics, open_app

PAGE = "pages/train.py"
START = "Start training"


def open_train(app_path: Path) -> AppTest:
    return open_app(app_path, PAGE, check=True)


def set_tiny(at: AppTest, epochs: int, batch: int = 64, width: int = 16) -> AppTest:
    """An MLP 784-width-10: trains in well under a second per epoch on the generated data."""
    at.select_slider(key="train_width").set_value(width)
    at.select_slider(key="train_batch").set_value(batch)
    at.number_input(key="train_epochs").set_value(epochs)
    return at.run()


def button(at: AppTest, label: str | None = None, key: str | None = None):
    if key is not None:
        return at.button(key=key)
    return next(b for b in at.button if b.label == label)


def click(at: AppTest, label: str | None = None, key: str | None = None) -> AppTest:
    button(at, label, key).click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def run_until(at: AppTest, done: Callable[[AppTest], bool], timeout_s: float = 60) -> AppTest:
    return apptest.run_until(at, done, timeout_s, describe=texts)


def has_button(at: AppTest, key: str) -> bool:
    return any(b.key == key for b in at.button)


def texts(at: AppTest) -> str:
    return apptest.page_text(at, subheaders=True, progress=True)


def progress_text(at: AppTest) -> str:
    return " ".join(str(el.proto.text) for el in at.get("progress"))


def has_result(at: AppTest) -> bool:
    return any(s.value.startswith("Result") for s in at.subheader)


def test_controls_show_the_cost_and_survive_a_page_switch(app_path: Path) -> None:
    at = open_train(app_path)
    at.slider(key="train_depth").set_value(2)
    set_tiny(at, epochs=3, width=32)
    shown = metrics(at)
    params = 784 * 32 + 32 + 32 * 32 + 32 + 32 * 10 + 10
    assert shown["Parameters"] == report.count(params)
    assert shown["MACs / image"] == report.count(784 * 32 + 32 * 32 + 32 * 10)
    assert shown["FLOPs / image"] == report.count(2 * (784 * 32 + 32 * 32 + 32 * 10))
    assert shown["Weights (fp32)"] == report.size(4 * params)
    assert shown["Per epoch (est.)"].endswith(" s") and "3 epochs (est.)" in shown
    # 1000 generated images, 10% held out; the live progress counts the whole run's steps, as this says
    assert "15 steps per epoch, 45 in the whole run (3 epochs), on 900 training images" in texts(at)

    at.checkbox(key="train_per_layer").check()
    at.run()
    at.number_input(key="train_width_1").set_value(64)
    at.run()
    assert metrics(at)["Parameters"] == report.count(784 * 32 + 32 + 32 * 64 + 64 + 64 * 10 + 10)

    at.switch_page("pages/home.py").run()
    at.switch_page(PAGE).run()
    assert at.slider(key="train_depth").value == 2
    assert at.select_slider(key="train_width").value == 32
    assert at.number_input(key="train_epochs").value == 3
    assert at.number_input(key="train_width_1").value == 64


def column_errors(at: AppTest) -> list[list[str]]:
    """The messages in each of the controls' three columns (Model, Training, Data and device)."""
    return [[e.value for e in col.error] for col in at.columns[:3]]


def test_invalid_combinations_show_a_message_under_the_field_and_disable_start(app_path: Path) -> None:
    # Under its field: on a phone the columns stack, and a message below them was a screen away.
    at = open_train(app_path)
    at.select_slider(key="train_batch").set_value(4096)
    at.run()
    assert column_errors(at) == [[], ["batch_size: 4096 is larger than the training set (900 images)"], []]
    assert len(at.error) == 1 and button(at, START).disabled

    at.select_slider(key="train_batch").set_value(64)
    at.radio(key="train_model").set_value("CNN")
    at.run()
    at.selectbox(key="train_cnn_style").set_value("lenet")
    at.selectbox(key="train_channels").set_value("32-64-128")
    at.run()
    (model_errors, _, _) = column_errors(at)
    assert len(at.error) == 1 and model_errors[0].startswith("cnn_channels: 3 conv stages")
    assert button(at, START).disabled
    assert not at.exception


def test_too_many_epochs_are_named_under_the_field_and_start_says_why_it_is_off(app_path: Path) -> None:
    at = open_train(app_path)
    at.number_input(key="train_epochs").set_value(5000)
    at.run()
    assert column_errors(at) == [[], ["epochs: 5000 is out of range [1, 1000]"], []]
    assert len(at.error) == 1 and button(at, START).disabled
    assert "Start is off until the setting named in red is changed." in [c.value for c in at.caption]

    at.number_input(key="train_epochs").set_value(2)
    at.run()
    assert not at.error and not button(at, START).disabled
    assert "Start is off until the setting named in red is changed." not in [c.value for c in at.caption]


@pytest.mark.slow
def test_training_shows_live_progress_then_the_summary(
    app_path: Path, registry: JobRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = JobGate(monkeypatch)  # the run waits at its first progress event until the page has shown it
    at = set_tiny(open_train(app_path), epochs=15, batch=4)
    at = click(at, START)
    seen = {"progress": False, "chart": False, "metrics": False, "time": False}

    def watch(at: AppTest) -> bool:
        if "step" in progress_text(at):
            seen["progress"] = True
            seen["chart"] |= any(c.key == "train_live_job-1" for c in at.get("bidi_component"))
            seen["metrics"] |= {"Learning rate", "Images / s"} <= set(metrics(at))
            seen["time"] |= "elapsed, about" in progress_text(at) and " left" in progress_text(at)
        if all(seen.values()):
            gate.release()
        return has_result(at)

    run_until(at, watch, timeout_s=60)
    assert seen == {"progress": True, "chart": True, "metrics": True, "time": True}
    assert not at.error, [e.value for e in at.error]
    shown = metrics(at)
    assert shown["Test accuracy"].endswith("%")
    for label in ("Training time", "Time / epoch", "Checkpoint", "Latency p50", "Latency p95"):
        assert shown[label] != report.DASH, label
    assert any(label.startswith("Energy") for label in shown) and any(k.startswith("CO2") for k in shown)
    (run,) = runs.list_runs()
    assert run.status == "completed" and "completed" in texts(at)
    keys = {chart.key for chart in at.get("plotly_chart")}
    assert {f"train_result_{run.id}_loss", f"train_confusion_{run.id}"} <= keys
    links = {link.proto.page: link.proto.query_string for link in at.get("page_link")}
    assert links == {"runs": f"run={run.id}", "draw": f"run={run.id}"}


def test_mixed_precision_box_trains_a_bfloat16_run(app_path: Path, registry: JobRegistry) -> None:
    at = set_tiny(open_train(app_path), epochs=1)
    assert at.checkbox(key="train_amp").value is False
    at.checkbox(key="train_amp").check()
    at = click(at.run(), START)
    run_until(at, has_result, timeout_s=60)
    assert not at.error, [e.value for e in at.error]
    (run,) = runs.list_runs()
    assert run.status == "completed" and run.config.amp is True


@pytest.mark.slow
def test_queue_cancel_concurrency_stop_and_resume(app_path: Path, registry: JobRegistry) -> None:
    at = set_tiny(open_train(app_path), epochs=200, batch=1)
    for _ in range(3):
        at = click(at, START)
    first, second, third = registry.jobs()
    run_until(at, lambda at: "step" in progress_text(at))
    assert "Waiting: 2 runs" in texts(at)
    assert [b.label for b in at.button if (b.key or "").startswith("train_cancel_")] == ["Cancel", "Cancel"]

    at = click(at, key=f"train_cancel_{third.id}")
    assert third.state == "stopped" and "Waiting: 1 run" in texts(at)
    at.number_input(key="train_max_concurrent").set_value(2)
    at.run()
    run_until(at, lambda at: has_button(at, f"train_stop_{second.id}"))
    assert registry.max_concurrent == 2 and "Waiting" not in texts(at)

    at = click(at, key=f"train_stop_{second.id}")
    at = click(at, key=f"train_stop_{first.id}")
    run_until(at, lambda at: not registry.active())
    run_id = first.run_id
    assert runs.load_run(run_id).status == "stopped"
    state = runs.load_train_state(run_id)
    stopped_at = state.epoch * 900 + state.step_in_epoch  # batch 1: 900 steps per epoch
    at = click(at, key=f"train_show_{run_id}")
    assert "Stopped before the end" in texts(at)

    at = click(at, key=f"train_resume_{run_id}")
    resumed = registry.jobs()[-1]
    assert resumed.resume_id == run_id
    run_until(at, lambda at: resumed.snapshot().step > stopped_at + 50)
    assert has_button(at, f"train_stop_{resumed.id}")  # the live panel of the resumed run
    at = click(at, key=f"train_stop_{resumed.id}")
    run_until(at, lambda at: not registry.active())
    assert resumed.snapshot().state == "stopped" and resumed.run_id == run_id
    assert resumed.snapshot().events[0].step > stopped_at  # it continued, it did not restart


@pytest.mark.slow
def test_interrupted_run_is_listed_and_resumes(
    app_path: Path, registry: JobRegistry, runs_dir: Path, synthetic_data_dir: Path
) -> None:
    cfg = RunConfig(hidden=(16,), epochs=2, batch_size=64)
    writer = runs.RunWriter.create(cfg, runs_dir)
    epochs = []
    train(
        cfg,
        load_data("mnist", cfg.val_fraction, cfg.seed, synthetic_data_dir),
        on_progress=lambda e: epochs.append(e) if e.kind == "epoch" else None,
        should_stop=lambda: bool(epochs),
        on_checkpoint=writer.save_checkpoint,
    )
    writer.release()  # the process "dies": status still "running", nobody holds the lock

    at = open_train(app_path)
    assert "interrupted" in texts(at) and has_button(at, f"train_resume_{writer.id}")
    at = click(at, key=f"train_show_{writer.id}")
    assert "was interrupted" in texts(at) and "1/2 epochs" in texts(at)
    assert f"train_result_{writer.id}_loss" in {c.key for c in at.get("plotly_chart")}

    at = click(at, key=f"train_resume_{writer.id}")
    run_until(at, lambda at: not registry.active() and has_result(at))
    at.run()  # the job may have ended after the last redraw: draw the page as it is now
    assert not at.exception, [e.value for e in at.exception]
    run = runs.load_run(writer.id)
    assert run.status == "completed" and run.summary["epochs_done"] == 2
    assert "2/2 epochs" in texts(at) and metrics(at)["Test accuracy"].endswith("%")
    assert not has_button(at, f"train_resume_{writer.id}")


@pytest.mark.slow
def test_a_run_whose_process_died_is_shown_interrupted(
    app_path: Path, registry: JobRegistry, runs_dir: Path, synthetic_data_dir: Path
) -> None:
    """A real death: the CLI trains in another process, killed (SIGKILL) after its first epoch."""
    folders = ["--runs-dir", str(runs_dir), "--data-dir", str(synthetic_data_dir)]
    tiny = ["--depth", "1", "--width", "16", "--batch-size", "4", "--epochs", "500", "--quiet"]
    command = [sys.executable, "-m", "mnist_core", *folders, "train", *tiny]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not any(
            h["kind"] == "epoch" for r in runs.list_runs(runs_dir) for h in runs.load_history(r.id)
        ):
            assert proc.poll() is None and time.monotonic() < deadline, "the CLI run never finished an epoch"
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    (run,) = runs.list_runs(runs_dir)
    assert run.status == "interrupted"

    at = click(open_train(app_path), key=f"train_show_{run.id}")
    assert "was interrupted" in texts(at) and has_button(at, f"train_resume_{run.id}")
    done = report.epochs_done(run, runs.load_history(run.id))
    assert done >= 1 and f"{done}/500 epochs" in texts(at)


def test_a_run_that_cannot_start_shows_the_core_message(
    app_path: Path, registry: JobRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mnist_core.errors import DatasetUnavailable

    def offline(*args: object, **kwargs: object) -> None:
        raise DatasetUnavailable("The mnist dataset is not available: test says so.")

    monkeypatch.setattr("mnist_core.pipeline.load_data", offline)
    at = click(set_tiny(open_train(app_path), epochs=1), START)
    run_until(at, lambda at: bool(at.error))
    message = "The last run could not start: The mnist dataset is not available: test says so."
    assert [e.value for e in at.error] == [message]


@pytest.mark.slow
def test_the_time_estimate_stays_put_while_the_run_trains(app_path: Path, registry: JobRegistry) -> None:
    """It changed while the run trained: the page re-probed the machine the run was keeping busy."""
    at = set_tiny(open_train(app_path), epochs=200, batch=1)
    before = metrics(at)["Per epoch (est.)"]
    at = click(at, START)
    (job,) = registry.jobs()
    run_until(at, lambda at: job.snapshot().step > 0)
    for _ in range(3):
        at.run()
        assert metrics(at)["Per epoch (est.)"] == before
    job.stop()


def test_two_runs_shown_in_turn_read_energy_and_co2_in_the_same_units(app_path: Path, runs_dir: Path) -> None:
    """One run read "Energy 0.42 Wh, CO2 0.16 g", the other "Energy (est.) 0.62 mWh, CO2 (est.) 0.23 mg"."""
    ids = []
    for kwh, estimated in ((0.00042, False), (6.2e-7, True)):
        writer = runs.RunWriter.create(RunConfig(hidden=(16,), epochs=1), runs_dir)
        summary = {"energy_kwh": kwh, "co2_kg": kwh * 0.4, "energy_estimated": estimated}
        writer.finish("completed", summary)
        ids.append(writer.id)
    shown = []
    at = open_train(app_path)
    for run_id in ids:
        at = click(at, key=f"train_show_{run_id}")
        shown.append({k: v for k, v in metrics(at).items() if k.startswith(("Energy", "CO2"))})
    assert shown == [
        {"Energy": "0.42 Wh", "CO2": "0.168 g"},
        {"Energy": "≈ 0.00062 Wh", "CO2": "≈ 0.000248 g"},
    ]


def test_the_cnn_style_box_fits_its_text(app_path: Path) -> None:
    """"Modern (3x3, batch norm, ReLU, max pool)" was cut short in its box; the details are in its help."""
    at = open_train(app_path)
    at.radio(key="train_model").set_value("CNN")
    at.run()
    box = at.selectbox(key="train_cnn_style")
    assert box.options == ["Modern", "LeNet-5"] and max(map(len, box.options)) <= 16
    assert "batch norm" in box.help and "tanh" in box.help


def test_the_quick_default_models_channels_can_be_chosen(app_path: Path) -> None:
    """Home trains the quick default (CNN 8-32 since issue 28): the Train page offers its channels too."""
    from mnist_core.config import quick_default

    at = open_train(app_path)
    at.radio(key="train_model").set_value("CNN")
    at.run()
    assert at.selectbox(key="train_channels").value == "32-64"  # the default stays
    at.selectbox(key="train_channels").set_value("8-32")
    at.run()
    quick = quick_default()
    assert quick.cnn_channels == (8, 32)
    assert f"CNN {'-'.join(map(str, quick.cnn_channels))}" in texts(at) and not at.exception


def _finished_run(runs_dir: Path, accuracy: float, lr: float = 1.0) -> str:
    """A run folder as a finished run leaves it (summary, checkpoint with its history), without training."""
    writer = runs.RunWriter.create(RunConfig(hidden=(16,), lr=lr, batch_size=256, epochs=1), runs_dir)
    point = {"kind": "epoch", "epoch": 1, "step": 10, "loss": 2.31, "train_acc": 0.1}
    writer.save_checkpoint(runs.TrainState(1, 0, {}, {}, None, 1.0, [point]))
    writer.finish("completed", {"epochs_done": 1, "test_accuracy": accuracy, "train_time_s": 1.0})
    return writer.id


def test_a_run_that_did_not_learn_says_so_and_what_to_try(app_path: Path, runs_dir: Path) -> None:
    """Learning rate 1: 10.10%, a confusion matrix all "3", and nothing said why."""
    run_id = _finished_run(runs_dir, 0.101)
    at = AppTest.from_file(str(app_path), default_timeout=60)
    at.switch_page("pages/train.py")
    at.session_state["train_focus"] = run_id
    at.run()
    apptest.no_exception(at)
    said = [w.value for w in at.warning]
    assert any("This network did not learn" in w and "try one 10x smaller" in w for w in said), said


def test_a_run_whose_history_is_broken_still_shows_its_figures(app_path: Path, runs_dir: Path) -> None:
    """Show on a run with a broken history.json showed only the error: not its name, not its accuracy."""
    run_id = _finished_run(runs_dir, 0.95, lr=1e-3)
    (runs_dir / run_id / "history.json").write_text("{ not json")
    at = AppTest.from_file(str(app_path), default_timeout=60)
    at.switch_page("pages/train.py")
    at.session_state["train_focus"] = run_id
    at.run()
    apptest.no_exception(at)
    assert any("The learning curves cannot be drawn" in w.value for w in at.warning)
    assert metrics(at)["Test accuracy"] == "95.00%"
    assert any(run_id in c.value for c in at.caption)
