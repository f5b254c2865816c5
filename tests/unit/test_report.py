"""Formatting of costs and summaries, and which runs may resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnist_core import report, runs
from mnist_core.config import RunConfig
from mnist_core.costs import CostReport
from mnist_core.estimate import EpochEstimate
from mnist_core.runs import TrainState


@pytest.mark.parametrize(
    ("fn", "value", "text"),
    [
        (report.count, 407_050, "407.1 k"),
        (report.count, 120_725_514, "120.7 M"),
        (report.count, 950, "950"),
        (report.count, None, report.DASH),
        (report.size, 1_628_200, "1.6 MB"),
        (report.size, 512, "512 B"),
        (report.seconds, 0.574, "0.57 s"),
        (report.seconds, 3.14, "3.1 s"),
        (report.seconds, 42.4, "42 s"),
        (report.seconds, 65, "1 min 05 s"),
        (report.seconds, 3720, "1 h 02 min"),
        (report.seconds, float("nan"), report.DASH),
        (report.percent, 0.9621, "96.21%"),
        (lambda v: report.percent(v, digits=1), 0.9684, "96.8%"),
        (report.millis, 0.0503, "0.0503 ms"),
        (report.energy, 0.00042, "0.42 Wh"),
        (report.energy, 6.2e-7, "0.62 mWh"),
        (report.energy, 2.5, "2.5 kWh"),
        (report.mass_co2, 0.00016, "0.16 g"),
        (report.mass_co2, 2.3e-7, "0.23 mg"),
        (report.mass_co2, True, report.DASH),
    ],
)
def test_formatting(fn, value, text) -> None:
    assert fn(value) == text


def test_cost_items_with_and_without_an_estimate() -> None:
    cost = CostReport(parameters=407_050, macs=406_528, flops=813_056, weights_bytes=1_628_200)
    estimate = EpochEstimate(seconds=0.6, steps_per_epoch=844, source="probe", detail="measured")
    items = report.cost_items(cost, estimate, epochs=2)
    assert [(i.label, i.value) for i in items] == [
        ("Parameters", "407.1 k"),
        ("MACs / image", "406.5 k"),
        ("FLOPs / image", "813.1 k"),
        ("Weights (fp32)", "1.6 MB"),
        ("Per epoch (est.)", "0.6 s"),
        ("2 epochs (est.)", "1.2 s"),
    ]
    assert "fvcore" in items[1].help and "2 x MACs" in items[2].help
    assert len(report.cost_items(cost, None, epochs=1)) == 4


def test_summary_items_label_estimated_energy_and_tolerate_missing_figures() -> None:
    summary = {
        "test_accuracy": 0.962, "train_time_s": 13.0, "time_per_epoch_s": 6.5, "parameters": 407_050,
        "macs": 406_528, "flops": 813_056, "weights_bytes": 1_628_200, "checkpoint_bytes": 4_900_000,
        "latency_p50_ms": 0.034, "latency_p95_ms": 0.05, "energy_kwh": 0.0002, "co2_kg": 0.0001,
        "co2_country": "FRA", "energy_estimated": True,
    }  # fmt: skip
    items = {i.label: i.value for i in report.summary_items(summary)}
    assert items["Test accuracy"] == "96.20%" and items["Checkpoint"] == "4.9 MB"
    assert items["Energy"] == "≈ 0.2 Wh" and items["CO2"] == "≈ 0.1 g"  # same labels as measured ones
    empty = report.summary_items({})
    assert {i.value for i in empty} == {report.DASH} and len(empty) == len(items)


def _state(epoch: int) -> TrainState:
    point = {"kind": "epoch", "epoch": epoch, "step": 10 * epoch}
    return TrainState(epoch, 0, {}, {}, None, 1.0, [point] * epoch)


def test_runs_with_a_resumable_status_resume(runs_dir: Path) -> None:
    cfg = RunConfig(hidden=(16,), epochs=3)
    stopped = runs.RunWriter.create(cfg, runs_dir)
    stopped.save_checkpoint(_state(1))
    stopped.finish("stopped", {"epochs_done": 1})
    early = runs.RunWriter.create(cfg, runs_dir)
    early.release()  # died in its first epoch: nothing saved, it resumes from the start
    late = runs.RunWriter.create(cfg, runs_dir)
    late.save_checkpoint(_state(2))
    late.release()  # died after two epochs
    done = runs.RunWriter.create(cfg, runs_dir)
    done.save_checkpoint(_state(3))
    done.finish("completed", {"epochs_done": 3})

    by_id = {r.id: r for r in runs.list_runs(runs_dir)}
    got = {w.id: (by_id[w.id].status, report.can_resume(by_id[w.id])) for w in (stopped, early, late, done)}
    assert got == {
        stopped.id: ("stopped", True),
        early.id: ("interrupted", True),
        late.id: ("interrupted", True),
        done.id: ("completed", False),
    }
    assert report.epochs_done(by_id[late.id], runs.load_history(late.id, runs_dir)) == 2
    assert report.epochs_done(by_id[done.id]) == 3


@pytest.mark.parametrize(
    ("value", "interval", "text"),
    [
        (0.971, (0.968, 0.974), "±0.3"),  # symmetric: one figure
        (0.992, (0.882, 1.0), "-11.0/+0.8"),  # clipped at 100%: never a bound over 100%
    ],
)
def test_a_predicted_accuracy_shows_its_interval_without_passing_100_percent(value, interval, text) -> None:
    assert report.spread(value, interval) == text


@pytest.mark.parametrize(
    ("accuracy", "losses", "said"),
    [
        (0.1010, [2.3, 2.31], "its test accuracy, 10.1%, is what guessing scores"),
        (0.0980, [2.1, float("nan")], "9.8%, is what guessing scores, and its loss became NaN"),
        (0.9520, [0.3, 0.2], None),
        (0.2100, [1.9], None),  # poor, but it learned something
    ],
)
def test_a_run_at_chance_says_it_did_not_learn_and_what_to_try(runs_dir: Path, accuracy, losses, said):
    """A run at learning rate 1 finished at 10.10%, the confusion matrix all "3", and nothing said why."""
    writer = runs.RunWriter.create(RunConfig(hidden=(16,), lr=1.0, batch_size=256, epochs=1), runs_dir)
    writer.finish("completed", {"epochs_done": 1, "test_accuracy": accuracy})
    run = runs.load_run(writer.id, runs_dir)
    history = [{"kind": "step", "loss": loss} for loss in losses]
    message = report.did_not_learn(run, history)
    if said is None:
        assert message is None
    else:
        assert message is not None and said in message
        assert "learning rate of 1 (adam, batch 256)" in message and "10x smaller" in message
