"""codecarbon's slow first start, done in the background at a job's start (issue 28)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mnist_core import energy, pipeline
from mnist_core.config import RunConfig
from mnist_core.energy import EnergyMeter


def test_warm_up_runs_once_per_process_and_a_meter_after_it_measures_with_codecarbon() -> None:
    first = energy.warm_up()
    assert energy.warm_up() is first  # one thread per process, however many jobs start
    first.join(timeout=120)
    assert not first.is_alive()
    with EnergyMeter(country="FRA") as meter:
        pass
    assert meter.report is not None and meter.report.method.startswith("codecarbon ")


def test_a_meter_waits_for_a_warm_up_under_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """A meter started while the warm-up runs starts its tracker only once the warm-up is done."""
    energy.warm_up().join(timeout=120)  # codecarbon ready: without the wait a meter would finish at once
    with EnergyMeter(country="FRA"):
        pass
    release = threading.Event()
    warming = threading.Thread(target=release.wait, daemon=True)
    warming.start()
    monkeypatch.setattr(energy, "_warming", warming)
    reports: list[energy.EnergyReport | None] = []

    def measure() -> None:
        with EnergyMeter(country="FRA") as meter:
            pass
        reports.append(meter.report)

    worker = threading.Thread(target=measure, daemon=True)
    worker.start()
    worker.join(timeout=0.5)
    assert worker.is_alive() and not reports  # waiting on the warm-up, not measuring beside it
    release.set()
    worker.join(timeout=120)
    assert len(reports) == 1 and reports[0] is not None and reports[0].method.startswith("codecarbon ")


def test_run_training_starts_the_warm_up_before_it_loads_the_data(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, synthetic_data_dir: Path
) -> None:
    order: list[str] = []
    real_load = pipeline.load_data
    monkeypatch.setattr(pipeline, "warm_up", lambda: order.append("warm_up"))

    def load(*args: object, **kwargs: object) -> object:
        order.append("load_data")
        return real_load(*args, **kwargs)

    monkeypatch.setattr(pipeline, "load_data", load)
    info = pipeline.run_training(
        RunConfig(hidden=(16,), batch_size=50, epochs=1), runs_dir=tmp_path, data_root=synthetic_data_dir
    )
    assert order == ["warm_up", "load_data"]
    assert info.summary["energy_kwh"] >= 0 and "energy_method" in info.summary  # energy still recorded
