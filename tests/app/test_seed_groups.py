"""Runs that differ only in seed: one row in the Runs table, one point with an error bar in the charts."""

from __future__ import annotations

import json
import random
import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # ui/ beside app.py, as the app finds it

from mnist_core.config import RunConfig
from mnist_core.runs import RunWriter, write_json
from tests.support.apptest import open_app
from tests.support.fakeruns import fake_history, fake_summary
from ui import hover, runs_charts

ACCS = (0.95, 0.96, 0.97)


def _run(runs_dir: Path, cfg: RunConfig, acc: float) -> str:
    summary = fake_summary(cfg, random.Random(cfg.seed), 200) | {"test_accuracy": acc}
    writer = RunWriter.create(cfg, runs_dir, name=f"seed {cfg.seed}")
    write_json(writer.path / "history.json", fake_history(cfg, random.Random(0), acc, 1.0))
    writer.finish("completed", summary)
    return writer.id


@pytest.fixture
def seed_runs(runs_dir: Path) -> list[str]:
    base = RunConfig(hidden=(32,), epochs=1)
    ids = [_run(runs_dir, base.replace(seed=s), a) for s, a in enumerate(ACCS)]
    return [*ids, _run(runs_dir, RunConfig(hidden=(16,), epochs=1), 0.9)]


def test_the_table_groups_seeds_and_can_list_them_apart(app_path, seed_runs):
    at = open_app(app_path, "pages/runs.py", check=True)
    table = at.dataframe[0].value
    assert len(table) == 2
    group = table[table["n_seeds"] == 3].iloc[0]
    assert group["test_pct"] == pytest.approx(96.0)
    assert group["test_std"] == pytest.approx(statistics.stdev(ACCS) * 100)
    assert group["name"] == "MLP 784-32-10 bs64 (3 seeds)"  # the runs' names differ: the architecture
    at.checkbox(key="runs_group").uncheck()
    at.run()
    assert len(at.dataframe[0].value) == 4


@pytest.mark.parametrize("view", ["Accuracy vs cost", "Bars"])
def test_a_seed_group_is_one_point_with_an_error_bar(app_path, seed_runs, view):
    at = open_app(app_path, "pages/runs.py", check=True)
    at.multiselect(key="runs_selected").set_value(seed_runs)
    at.session_state["runs_view"] = view
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    data = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    points = [t for t in data if t.get("name") != "Pareto front"]
    assert sum(len(t["y"]) for t in points) == 2  # four runs, two configurations
    bars = [v for t in points for v in t.get("error_y", {}).get("array", [])]
    assert pytest.approx(statistics.stdev(ACCS)) in bars
    assert any("1 configuration(s) picked with several seeds" in c.value for c in at.caption)


def test_learning_curves_of_one_configuration_share_a_colour_and_a_legend_entry(app_path, seed_runs):
    at = open_app(app_path, "pages/runs.py", check=True)
    at.multiselect(key="runs_selected").set_value(seed_runs)
    at.session_state["runs_view"] = "Learning curves"
    at.run()
    data = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    legend = [t["name"] for t in data if t.get("showlegend") is not False]
    assert len(legend) == 2 and any(n.endswith("(3 seeds)") for n in legend)
    assert len({t["line"]["color"] for t in data}) == 2


def _row(**values):
    return {"name": "mine", "architecture": "MLP 784-1024-1024-10 bs64", "depth": 2, "width": 1024,
            "batch_size": 64, "epochs": 2, "optimizer": "adam", "lr": 1e-3, "schedule": "none",
            "channels": "", **values}  # fmt: skip


def test_hover_text_names_the_configuration_and_a_groups_spread():
    text = hover.hover_text(_row(test_accuracy=0.9621))
    assert "<b>mine</b>" in text and "depth 2 · width 1024 · batch 64" in text and "96.21%" in text
    cnn = hover.hover_text(_row(channels="32-64", depth=1, width=512))
    assert "conv channels 32-64 · dense 1 x 512" in cnn and "no test accuracy" in cnn
    group = hover.hover_text(_row(test_accuracy=0.96, test_accuracy_std=0.0015, n_seeds=5))
    assert "96.00% ± 0.15 points (mean ± std of 5 seeds)" in group
    assert "<b>&lt;i&gt;x</b>" in hover.hover_text(_row(name="<i>x")) and "±" not in text


def test_error_bars_only_where_a_row_has_a_spread():
    rows = [_row(id="a", test_accuracy=0.9, parameters=10), _row(id="b", test_accuracy=0.95, parameters=20)]
    assert runs_charts.error_bars(rows, "test_accuracy", "error_y") == {}
    rows[1]["test_accuracy_std"] = 0.01
    assert runs_charts.error_bars(rows, "test_accuracy", "error_y")["error_y"]["array"] == [0.0, 0.01]
