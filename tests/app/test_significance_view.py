"""The Runs page's "Is the difference real?" view through AppTest, on generated runs (issue 24)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from mnist_core import calibration, runs, significance
from mnist_core.runs import write_json
from tests.support.apptest import open_runs_view
from tests.support.fakeruns import make_fake_runs
from tests.support.saved import completed_fake_runs, variant_of

PAGE = "pages/runs.py"
VIEW = "Is the difference real?"
N_TEST = 200  # the generated dataset's test split (tests/conftest.py)


@pytest.fixture
def run_ids(runs_dir: Path) -> list[str]:
    return completed_fake_runs(runs_dir, 5, seed=11, n_test=N_TEST)


def open_view(app_path: Path, chosen: list[str]) -> AppTest:
    return open_runs_view(app_path, VIEW, chosen)


def titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_verdicts_and_a_reliability_diagram_per_run(app_path, run_ids):
    chosen = run_ids[:3]
    at = open_view(app_path, chosen)
    table = at.dataframe[-1].value
    assert len(table) == 3 and table["Verdict"].iloc[0] == "best"
    assert set(table["Verdict"][1:]) <= {"real", "within noise"}
    expected = significance.compare_runs(chosen)
    # Two significant digits, written one way ("2.1e-06", "0.34"): the grid's own format mixed styles.
    assert sorted(table["p (Holm)"][1:]) == sorted(f"{t.p_adjusted:.2g}" for t in expected.tests)
    lines = [m.value for m in at.markdown if "better than" in m.value or "score the same" in m.value]
    assert len(lines) == 2
    assert len(titles(at)) == 3 and all("ECE" in t for t in titles(at))


def test_older_runs_are_measured_and_shown(app_path, run_ids, runs_dir):
    chosen = run_ids[:2]
    for run_id in chosen:
        summary = runs.load_run(run_id, runs_dir).summary
        path = runs.run_path(run_id, runs_dir) / "summary.json"
        write_json(path, {k: v for k, v in summary.items() if k not in calibration.FIELDS})
    at = open_view(app_path, chosen)
    assert len(titles(at)) == 2
    assert all("test_correct_bits" in runs.load_run(i, runs_dir).summary for i in chosen)


def test_one_run_asks_for_another(app_path, run_ids):
    at = open_view(app_path, run_ids[:1])
    assert any("at least two runs" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_runs_on_different_test_sets_are_refused_with_a_reason(app_path, run_ids, runs_dir):
    other = make_fake_runs(runs_dir, 3, seed=5, n_test=150)
    other = [i for i in other if runs.load_run(i, runs_dir).status == "completed"][:1]
    at = AppTest.from_file(str(app_path), default_timeout=60)
    at.switch_page(PAGE)
    at.session_state["runs_selected"] = [run_ids[0], *other]
    at.session_state["runs_view"] = VIEW
    at.run()
    assert not at.exception
    assert any("different sizes" in e.value for e in at.error)


def _seed_of(runs_dir: Path, run_id: str, seed: int, accuracy: float) -> str:
    """A copy of ``run_id`` as another seed of its configuration, with its own test accuracy."""
    name = f"{runs.load_run(run_id, runs_dir).name} s{seed}"
    return variant_of(runs_dir, run_id, f"s{seed}", name=name, config={"seed": seed},
                      summary={"test_accuracy": accuracy})  # fmt: skip


def test_seeds_of_one_configuration_are_tested_across_seeds_and_not_called_a_better_setting(
    app_path, run_ids, runs_dir
):
    """Two seeds of one configuration were reported as one being "real"ly better than the other."""
    a, b = run_ids[:2]
    acc_a = runs.load_run(a, runs_dir).summary["test_accuracy"]
    acc_b = runs.load_run(b, runs_dir).summary["test_accuracy"]
    chosen = [a, _seed_of(runs_dir, a, 101, acc_a + 0.001), b, _seed_of(runs_dir, b, 101, acc_b - 0.001)]
    at = open_view(app_path, chosen)
    assert not at.exception, [e.value for e in at.exception]
    said = [m.value for m in at.markdown]
    assert any("Across seeds" in m for m in said), said
    across = [m for m in said if "2 and 2" in m and ("real across seeds" in m or "within seed noise" in m)]
    assert len(across) == 1, said
    if acc_a != acc_b:
        assert any("two seeds of one configuration" in m for m in said)
    columns = list(at.dataframe[-1].value.columns)
    assert columns.index("Verdict") < columns.index("Accuracy (%)")
