"""The scaling fit on the Runs page's accuracy-vs-cost chart and on the Train page's cost preview."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from mnist_core.config import RunConfig
from mnist_core.runs import RunWriter
from tests.support.apptest import open_app
from tests.support.fakeruns import fake_summary, parameter_count

WIDTHS = (16, 32, 64, 128, 256, 512)


def _accuracy(params: int) -> float:
    return 1 - (30 * params**-0.5 + 0.02)  # a known law: err = 30 N^-0.5 + 2%


def _runs(runs_dir: Path, widths=WIDTHS) -> list[str]:
    ids = []
    for w in widths:
        cfg = RunConfig(hidden=(w,), epochs=1)
        n = parameter_count(cfg)
        summary = fake_summary(cfg, random.Random(w), 200) | {"test_accuracy": _accuracy(n), "parameters": n}
        writer = RunWriter.create(cfg, runs_dir)
        writer.finish("completed", summary)
        ids.append(writer.id)
    return ids


def test_accuracy_against_parameters_draws_the_fit_and_its_band(app_path, runs_dir):
    ids = _runs(runs_dir)
    at = open_app(app_path, "pages/runs.py", check=True)
    at.multiselect(key="runs_selected").set_value(ids)
    at.session_state["runs_view"] = "Accuracy vs cost"
    at.session_state["runs_cost"] = "parameters"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    data = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    names = [t.get("name") for t in data]
    assert f"MLP fit (mnist, {len(WIDTHS)} runs)" in names and "95% interval" in names
    assert any("error = " in c.value and "N^-0.50" in c.value for c in at.caption)


def test_too_few_runs_say_so_under_the_chart(app_path, runs_dir):
    ids = _runs(runs_dir, WIDTHS[:3])
    at = open_app(app_path, "pages/runs.py", check=True)
    at.multiselect(key="runs_selected").set_value(ids)
    at.session_state["runs_view"] = "Accuracy vs cost"
    at.session_state["runs_cost"] = "parameters"
    at.run()
    assert any("Not enough runs to predict: 3 completed MLP runs" in c.value for c in at.caption)


@pytest.mark.parametrize("n_runs", [len(WIDTHS), 4])
def test_the_train_preview_predicts_the_accuracy_or_says_it_cannot(app_path, runs_dir, n_runs):
    _runs(runs_dir, WIDTHS[:n_runs])
    at = open_app(app_path, "pages/train.py", check=True)
    metric = next(m for m in at.metric if m.label == "Predicted accuracy")
    if n_runs < 5:
        assert metric.value == "too few runs"  # short enough for a phone
        assert metric.help.startswith("Not enough runs to predict: 4 completed MLP runs on mnist")
        return
    expected = _accuracy(parameter_count(RunConfig()))  # the page's default: MLP 784-512-10
    assert metric.value.startswith(f"{expected:.1%} ±") and len(metric.value) <= 12
    assert "95% interval" in metric.help and "inside the range of those runs" in metric.help
