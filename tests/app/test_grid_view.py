"""The Runs page's "Depth x width" view through AppTest: one run a cell, and what else the runs differ in."""

from __future__ import annotations

import json
from pathlib import Path

from mnist_core import compare, runs
from tests.support.apptest import no_exception, open_runs_view, page_text
from tests.support.saved import completed_fake_runs, variant_of

N_TEST = 200  # the generated dataset's test split (tests/conftest.py)


def cell_values(at) -> list[list[float | None]]:
    """Each heatmap's z (accuracy map first, then the cost map)."""
    return [json.loads(c.proto.spec)["data"][0]["z"] for c in at.get("plotly_chart")]


def test_best_shows_one_run_a_cell_in_both_maps_and_says_what_else_differs(app_path: Path, runs_dir: Path):
    ids = completed_fake_runs(runs_dir, 8, seed=5, n_test=N_TEST)
    mlp = next(i for i in ids if runs.load_run(i, runs_dir).config.model == "mlp")
    ids.append(slower_and_better_twin(runs_dir, mlp))
    rows = [compare.run_row(r) for r in runs.list_runs(runs_dir) if r.id in ids]
    mlps = [r for r in rows if r["model"] == "mlp"]
    at = open_runs_view(app_path, "Depth x width", ids, runs_grid_cost="train_time_s", runs_group=False)
    no_exception(at)
    accuracy, cost = cell_values(at)[:2]
    best = {(r["depth"], r["width"]): r for r in compare.best_per_cell(mlps)}
    xs, ys = sorted({d for d, _ in best}), sorted({w for _, w in best})
    for j, width in enumerate(ys):
        for i, depth in enumerate(xs):
            run = best.get((depth, width))
            if run is None:
                continue
            assert accuracy[j][i] is not None and abs(accuracy[j][i] - run["test_accuracy"]) < 1e-9
            assert cost[j][i] is not None and abs(cost[j][i] - run["train_time_s"]) < 1e-9, "the same run"
    assert "Not depth and width alone" in page_text(at) and "batch size" in page_text(at)
    # The accuracy map's colour bar reads in percent, as its cells do (it read 0.968-0.978); the cost's not.
    bars = [json.loads(c.proto.spec)["data"][0]["colorbar"] for c in at.get("plotly_chart")[:2]]
    assert bars[0].get("tickformat") == ".1%" and "tickformat" not in bars[1]


def slower_and_better_twin(runs_dir: Path, run_id: str) -> str:
    """A copy of ``run_id`` (same depth and width) at batch 1: more accurate, 30x slower. Its id."""
    info = runs.load_run(run_id, runs_dir)
    summary = {"test_accuracy": min(1.0, info.summary["test_accuracy"] + 0.05),
               "train_time_s": 30 * info.summary["train_time_s"]}  # fmt: skip
    name = f"{info.name} bs1"
    return variant_of(runs_dir, run_id, "bs1", name=name, config={"batch_size": 1}, summary=summary)
