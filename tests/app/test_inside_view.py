"""The Runs page's "Inside" view through AppTest, on generated runs with (untrained) weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from mnist_core import runs
from mnist_core.fakeruns import make_fake_runs

PAGE = "pages/runs.py"
N_TEST = 200  # the generated dataset's test split (tests/conftest.py)


@pytest.fixture
def run_ids(runs_dir: Path) -> list[str]:
    ids = make_fake_runs(runs_dir, 4, seed=11, n_test=N_TEST, weights=True, max_width=64)
    return [r.id for r in runs.list_runs(runs_dir) if r.id in ids and r.status == "completed"]


def open_inside(app_path: Path, chosen: list[str]) -> AppTest:
    at = AppTest.from_file(str(app_path), default_timeout=60)
    at.switch_page(PAGE)
    at.session_state["runs_selected"] = chosen
    at.session_state["runs_view"] = "Inside"
    at.session_state["runs_inside_runs"] = chosen
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_two_runs_side_by_side(app_path, run_ids):
    chosen = run_ids[:2]
    at = open_inside(app_path, chosen)
    assert len(at.image) == 2  # one weight mosaic per run
    assert all("with the largest norm" in image.captions[0] for image in at.image)
    titles = chart_titles(at)
    assert titles.count("Weights per layer") == 2
    assert titles.count(f"Outputs on {N_TEST} test images") == 2
    assert titles[-1] == "Dead or saturated units per layer"
    units = json.loads(at.get("plotly_chart")[-1].proto.spec)["data"]
    assert len(units) == 2  # one bar trace per run
    depth = {r.id: r.config.depth for r in runs.list_runs()}
    assert sorted(len(t["x"]) for t in units) == sorted(depth[i] for i in chosen)  # ReLU hidden layers


def test_without_the_dataset_the_weights_still_show(app_path, run_ids, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path / "no-data"))
    at = open_inside(app_path, run_ids[:1])
    assert any("No activation statistics" in i.value and "weights are shown" in i.value for i in at.info)
    assert len(at.image) == 1
    assert chart_titles(at) == ["Weights per layer"]


def test_a_run_without_weights_says_why(app_path, runs_dir):
    from mnist_core.config import RunConfig

    writer = runs.RunWriter.create(RunConfig(hidden=(8,)), runs_dir)
    writer.finish("failed", error="RuntimeError: out of memory")
    at = open_inside(app_path, [writer.id])
    assert any("Nothing to show inside" in i.value and "weights.pt is missing" in i.value for i in at.info)
