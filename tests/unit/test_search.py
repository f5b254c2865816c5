"""Budgeted search (issue 26): the budget filter, the early-stopped runs as done points, and a search on a
local Ray Tune from the CLI (slow; needs ray)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnist_core import search, sweeps
from mnist_core.cli import main
from mnist_core.config import RunConfig
from mnist_core.errors import ConfigError
from mnist_core.runs import RunInfo, list_runs, load_history, load_run

BASE = RunConfig(epochs=3, batch_size=256)


def grid(**axes) -> list[RunConfig]:
    return sweeps.grid_configs(BASE, sweeps.GridSpec(**axes))


def test_the_budget_keeps_the_configurations_estimated_under_it() -> None:
    configs = grid(width=(16, 64, 256), batch_size=(64, 256))
    per_epoch = {c: c.hidden[0] / c.batch_size for c in configs}  # a made-up estimate
    kept, over = search.within_budget(configs, 0.5, per_epoch.__getitem__)
    assert kept == [c for c in configs if per_epoch[c] <= 0.5]
    assert over == [(c, per_epoch[c]) for c in configs if per_epoch[c] > 0.5] and len(over) == 3
    for bad in (0, -1.0, float("nan"), True):
        with pytest.raises(ConfigError, match="budget"):
            search.within_budget(configs, bad, per_epoch.__getitem__)


def test_a_search_is_a_sweep_of_kind_search_and_refuses_an_empty_budget(runs_dir: Path) -> None:
    configs = grid(width=(16, 64), lr=(1e-3, 1e-2))
    found, over = search.plan(configs, "asha", 0.5, runs_dir, seconds_per_epoch=lambda c: c.hidden[0] / 100)
    assert found.kind == "search" and list(found.configs) == [c for c in configs if c.hidden == (16,)]
    assert [c for c, _ in over] == [c for c in configs if c.hidden == (64,)]
    assert sweeps.load(found.id, runs_dir).extra["budget_s_per_epoch"] == 0.5
    names = {sweeps.point_name(found, c) for c in found.configs}
    assert len(names) == 2 and any("lr 0.01" in n for n in names)  # points apart by lr only: names apart
    with pytest.raises(ConfigError, match="no configuration fits the budget"):
        search.plan(configs, "asha", 0.01, runs_dir, seconds_per_epoch=lambda c: 1.0)


def test_a_trial_stopped_early_is_a_done_point_not_a_run_to_resume(runs_dir: Path) -> None:
    configs = grid(width=(16, 64))
    found = search.create(configs, "asha", None, runs_dir)

    def run(cfg: RunConfig, tags: list[str], status: str) -> RunInfo:
        return RunInfo(id=f"r{cfg.hidden[0]}", path=runs_dir, config=cfg, meta={"tags": tags}, summary={},
                       status=status, created="2026-12-05T00:00:00", updated="", name="x")

    early = run(configs[0], [found.tag, sweeps.EARLY_TAG], "stopped")
    stopped = run(configs[1], [found.tag], "stopped")
    assert [p.state for p in sweeps.points(found, [early, stopped])] == ["done", "resumable"]


@pytest.mark.slow
def test_the_cli_runs_a_budgeted_search_on_ray_tune(runs_dir: Path, synthetic_data_dir: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ray.tune", reason="needs ray[tune]: pip install -r requirements-ray.txt")
    code = main(["--runs-dir", str(runs_dir), "--data-dir", str(synthetic_data_dir), "sweep",
                 "--widths", "16", "64", "--lrs", "0.001", "0.01", "--batch-sizes", "256", "--epochs", "3",
                 "--name", "asha", "--search", "asha", "--budget", "1000"])
    out = capsys.readouterr().out
    assert code == 0, out
    (found,) = sweeps.list_sweeps(runs_dir)
    runs = list_runs(runs_dir)
    assert found.kind == "search" and len(found.configs) == 4
    assert sorted(r.name for r in runs) == sorted(sweeps.point_name(found, c) for c in found.configs)
    assert all(p.state == "done" for p in sweeps.points(found, runs))
    trained = 0
    for run in runs:
        epochs = [h for h in load_history(run.id, runs_dir) if h["kind"] == "epoch"]
        trained += epochs[-1]["samples"]
        early = sweeps.EARLY_TAG in run.meta["tags"]
        assert run.status == ("stopped" if early else "completed"), run.name
        assert (len(epochs) < 3) is early and "test_accuracy" in load_run(run.id, runs_dir).summary
    assert f"{trained:,} images trained" in out  # the summary counts what the runs hold
    assert "of the full grid's 10,800" in out  # 4 configurations x 3 epochs x 900 images
