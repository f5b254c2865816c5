"""Comparing runs: rows, filters, sorting, CSV, Pareto fronts, grids, curves, galleries, fake runs."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest

from mnist_core import compare, curves, gallery, runs, seeds
from mnist_core.config import RunConfig
from mnist_core.errors import CorruptRun
from tests.support.fakeruns import corrupt_run, make_fake_runs


def _row(run_id: str, **values):
    base = {
        "id": run_id,
        "name": run_id,
        "status": "completed",
        "tags": [],
        "notes": "",
        "model": "mlp",
        "architecture": "MLP",
        "depth": 1,
        "width": 64,
        "batch_size": 64,
        "epochs": 1,
        "optimizer": "adam",
        "lr": 1e-3,
        "schedule": "none",
    }
    return base | values


# -- rows from real run folders ---------------------------------------------------


def test_rows_of_generated_runs_carry_config_metrics_and_meta(runs_dir):
    ids = make_fake_runs(runs_dir, 5, seed=3, n_test=200)
    good, broken = runs.scan_runs(runs_dir)
    assert not broken and {r.id for r in good} == set(ids)
    rows = compare.table(good)
    assert [r["id"] for r in rows] == [r.id for r in good]  # newest first, as listed
    for row, info in zip(rows, good, strict=True):
        assert set(row) == set(compare.COLUMNS) | {seeds.GROUP_KEY}
        assert row["depth"] == info.config.depth and row["width"] == max(info.config.hidden)
        assert row["batch_size"] == info.config.batch_size and row["status"] == info.status
        if info.status == "failed":
            assert row["test_accuracy"] is None
        else:
            assert 0.8 < row["test_accuracy"] <= 1.0
            assert row["flops"] == 2 * row["macs"] and row["parameters"] > row["macs"] > 0
            assert isinstance(row["parameters"], int)


def test_scan_reports_a_corrupt_run_without_losing_the_others(runs_dir):
    make_fake_runs(runs_dir, 2, seed=1, n_test=200)
    bad = corrupt_run(runs_dir)
    good, broken = runs.scan_runs(runs_dir)
    assert len(good) == 2 and list(broken) == [bad.name]
    assert "not valid JSON" in broken[bad.name]
    assert broken == runs.broken_runs(runs_dir) and [r.id for r in good] == [
        r.id for r in runs.list_runs(runs_dir)
    ]


def test_folder_state_changes_when_a_run_is_written_added_or_removed(runs_dir):
    first, second = make_fake_runs(runs_dir, 2, seed=2, n_test=200)
    before = runs.folder_state(runs_dir)
    assert [name for name, _ in before] == sorted([first, second])
    assert runs.folder_state(runs_dir) == before
    runs.update_meta(first, runs_dir, notes="changed")
    after_edit = runs.folder_state(runs_dir)
    assert after_edit != before and dict(after_edit)[second] == dict(before)[second]
    runs.delete_run(second, runs_dir)
    assert [name for name, _ in runs.folder_state(runs_dir)] == [first]
    assert runs.folder_state(runs_dir / "missing") == ()


def test_damaged_summary_values_make_the_run_broken_not_errors(runs_dir):
    (run_id,) = make_fake_runs(runs_dir, 1, seed=4, n_test=200)
    path = runs_dir / run_id / "summary.json"
    runs.write_json(path, {"test_accuracy": "high", "parameters": True, "flops": float("nan"), "macs": 12})
    listed, broken = runs.scan_runs(runs_dir)  # summary.json breaks the schema (issue 29.1)
    assert compare.table(listed) == [] and "test_accuracy" in broken[run_id]
    assert curves.number("high") is None and curves.number(True) is None  # the table's own guard
    assert curves.number(float("nan")) is None and curves.number(12) == 12


# -- filter, sort, csv ---------------------------------------------------------------


def test_filter_by_text_status_model_and_tags():
    rows = [
        _row("a", name="wide one", tags=["keep"], notes="try me"),
        _row("b", status="failed", model="cnn", architecture="CNN 32-64"),
        _row("c", tags=["sweep", "keep"]),
    ]
    assert [r["id"] for r in compare.filter_rows(rows)] == ["a", "b", "c"]
    assert [r["id"] for r in compare.filter_rows(rows, text="WIDE")] == ["a"]
    assert [r["id"] for r in compare.filter_rows(rows, text="try")] == ["a"]  # notes
    assert [r["id"] for r in compare.filter_rows(rows, text="cnn 32")] == ["b"]
    assert [r["id"] for r in compare.filter_rows(rows, statuses=["completed"])] == ["a", "c"]
    assert [r["id"] for r in compare.filter_rows(rows, models=["cnn"])] == ["b"]
    assert [r["id"] for r in compare.filter_rows(rows, tags=["sweep"])] == ["c"]
    assert [r["id"] for r in compare.filter_rows(rows, tags=["keep"], text="c")] == ["c"]
    assert compare.all_tags(rows) == ["keep", "sweep"]


def test_the_runs_table_filters_sorts_then_groups_in_one_call(runs_dir):
    """The Runs page's table: filter, sort and seed groups were three calls strung together in the page."""
    ids = make_fake_runs(runs_dir, 4, seed=5)
    rows = compare.table(runs.list_runs(runs_dir))
    cfg = runs.load_run(ids[0], runs_dir).config
    twin = {**next(r for r in rows if r["id"] == ids[0]), "id": "twin", "seed": cfg.seed + 1}
    rows = [*rows, twin]
    shown, table = compare.table_view(rows, sort="test_accuracy", descending=True)
    assert shown == compare.sort_rows(rows, "test_accuracy", descending=True) and table == shown
    shown, table = compare.table_view(rows, statuses=["completed"], sort="name", descending=False, group=True)
    assert shown == compare.sort_rows(compare.filter_rows(rows, statuses=["completed"]), "name")
    assert table == seeds.group_rows(shown, compare.METRIC_KEYS)
    assert len(table) == len(shown) - 1  # the twin is merged with the run it copies


def test_sort_puts_missing_values_last_both_ways():
    rows = [_row("a", test_accuracy=0.9), _row("b", test_accuracy=None), _row("c", test_accuracy=0.95)]
    assert [r["id"] for r in compare.sort_rows(rows, "test_accuracy")] == ["a", "c", "b"]
    assert [r["id"] for r in compare.sort_rows(rows, "test_accuracy", descending=True)] == ["c", "a", "b"]
    assert [r["id"] for r in compare.sort_rows(rows, "name", descending=True)] == ["c", "b", "a"]


def test_csv_has_every_column_and_joins_tags():
    rows = [_row("a", tags=["x", "y"], test_accuracy=0.5, notes='say "hi", then\nleave')]
    text = compare.to_csv(rows)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert list(parsed[0]) == list(compare.COLUMNS)
    assert parsed[0]["tags"] == "x;y" and parsed[0]["test_accuracy"] == "0.5"
    assert parsed[0]["notes"] == 'say "hi", then\nleave' and parsed[0]["macs"] == ""


# -- pareto ------------------------------------------------------------------------------


def test_colour_groups_keep_a_cnns_dense_depth_apart_from_an_mlps_depth():
    """LeNet-5 counts 2 dense layers: coloured by depth it was one of the 2-layer MLPs."""
    rows = [
        _row("a", depth=2), _row("lenet", model="cnn", depth=2), _row("b", depth=1), _row("c", depth=10),
    ]  # fmt: skip
    by_depth = compare.colour_groups(rows, "depth")
    assert list(by_depth.items()) == [
        ("MLP, depth 1", [2]), ("MLP, depth 2", [0]), ("MLP, depth 10", [3]), ("CNN, depth 2", [1]),
    ]  # fmt: skip
    assert compare.colour_groups(rows, "width") == {"MLP, width 64": [0, 2, 3], "CNN, width 64": [1]}
    # Settings that mean the same for both kinds, and runs of one kind, are grouped by value alone.
    assert compare.colour_groups(rows, "batch_size") == {"Batch size 64": [0, 1, 2, 3]}
    assert compare.colour_groups([rows[0], rows[2]], "depth") == {"Depth 1": [1], "Depth 2": [0]}
    assert list(compare.colour_groups([_row("x", optimizer="sgd"), _row("y")], "optimizer")) == [
        "Optimizer adam", "Optimizer sgd",
    ]  # fmt: skip


def test_pareto_front_keeps_only_undominated_points_cheapest_first():
    points = [(10, 0.90), (5, 0.95), (1, 0.80), (5, 0.94), (20, 0.97), (20, 0.96), (None, 0.99), (3, None)]
    assert compare.pareto_front(points) == [2, 1, 4]


def test_pareto_front_keeps_exact_ties_and_handles_nothing():
    assert compare.pareto_front([(1, 0.9), (1, 0.9), (2, 0.8)]) == [0, 1]
    assert compare.pareto_front([]) == []
    assert compare.pareto_front([(math.nan, 0.9), (1.0, math.inf)]) == []


def test_pareto_front_is_never_dominated_on_random_points():
    rng = np.random.default_rng(0)
    pts = [(float(x), float(y)) for x, y in rng.random((200, 2))]
    front = set(compare.pareto_front(pts))
    for i, (x, y) in enumerate(pts):
        dominated = any(x2 <= x and y2 >= y and (x2, y2) != (x, y) for x2, y2 in pts)
        assert (i in front) == (not dominated)


# -- grids -------------------------------------------------------------------------------


def test_grid_best_is_max_for_accuracy_and_min_for_cost():
    rows = [
        _row("a", depth=1, width=64, test_accuracy=0.9, train_time_s=5.0),
        _row("b", depth=1, width=64, test_accuracy=0.95, train_time_s=9.0),
        _row("c", depth=2, width=128, test_accuracy=0.97, train_time_s=20.0),
        _row("d", depth=2, width=64, test_accuracy=None, train_time_s=1.0),
    ]
    acc = compare.grid(rows, "test_accuracy")
    assert acc.xs == [1, 2] and acc.ys == [64, 128]
    assert acc.z == [[0.95, None], [None, 0.97]]
    assert acc.counts == [[2, 0], [0, 1]] and acc.run_ids[0][0] == ["a", "b"]
    cost = compare.grid(rows, "train_time_s")
    assert cost.z == [[5.0, 1.0], [None, 20.0]]
    assert compare.grid(rows, "train_time_s", agg="mean").z[0][0] == 7.0
    with pytest.raises(ValueError, match="aggregation"):
        compare.grid(rows, "train_time_s", agg="median")


def test_best_per_cell_keeps_one_run_a_cell_so_both_maps_describe_it():
    """The accuracy map showed one run's 95.27% and the time map another run's 1.1 s in the same cell."""
    rows = [
        _row("fast", depth=1, width=64, test_accuracy=0.9409, train_time_s=1.1, batch_size=128),
        _row("slow", depth=1, width=64, test_accuracy=0.9527, train_time_s=30.0, batch_size=1),
        _row("alone", depth=2, width=128, test_accuracy=0.97, train_time_s=2.0, batch_size=128),
        _row("none", depth=2, width=64, test_accuracy=None, train_time_s=1.0, batch_size=128),
    ]
    cells = compare.best_per_cell(rows)
    assert sorted(r["id"] for r in cells) == ["alone", "slow"]
    acc, cost = compare.grid(cells, "test_accuracy"), compare.grid(cells, "train_time_s")
    assert acc.z == [[0.9527, None], [None, 0.97]] and cost.z == [[30.0, None], [None, 2.0]]
    assert cost.run_ids[0][0] == acc.run_ids[0][0] == ["slow"]
    assert compare.varying_settings(rows) == ["batch_size"]
    assert compare.varying_settings(cells[:1]) == []


# -- curves ------------------------------------------------------------------------------


def test_curve_columns_from_a_history():
    history = [
        {
            "kind": "step",
            "epoch": 1,
            "epochs": 2,
            "step": 5,
            "total_steps": 20,
            "samples": 320,
            "elapsed_s": 1.0,
            "loss": 2.0,
            "train_acc": 0.3,
        },
        {
            "kind": "step",
            "epoch": 1,
            "epochs": 2,
            "step": 10,
            "total_steps": 20,
            "samples": 640,
            "elapsed_s": 2.0,
            "loss": 1.0,
            "train_acc": 0.6,
        },
        {
            "kind": "epoch",
            "epoch": 1,
            "epochs": 2,
            "step": 10,
            "total_steps": 20,
            "samples": 640,
            "elapsed_s": 2.5,
            "loss": 1.5,
            "train_acc": 0.45,
            "val_loss": 0.9,
            "val_acc": 0.7,
        },
        "garbage",
        {"kind": "other"},
        {"kind": "step", "step": "x", "loss": None},
    ]
    cols = curves.curve_columns(history)
    assert cols.train["epoch"][:2].tolist() == [0.5, 1.0]
    assert cols.train["samples"][:2].tolist() == [320, 640] and cols.train["loss"][:2].tolist() == [2.0, 1.0]
    assert math.isnan(cols.train["step"][2]) and math.isnan(cols.train["loss"][2])
    assert cols.val["epoch"].tolist() == [1.0] and cols.val["accuracy"].tolist() == [0.7]
    assert cols.val["elapsed_s"].tolist() == [2.5] and not cols.empty
    assert curves.curve_columns([]).empty


def test_curve_columns_thin_long_histories():
    history = [
        {"kind": "step", "step": i, "epochs": 1, "total_steps": 10_000, "loss": 1.0} for i in range(10_000)
    ]
    cols = curves.curve_columns(history, max_points=100)
    assert len(cols.train["step"]) == 100 and cols.train["step"][-1] == 9999


# -- confusion, misclassified, disagreement -------------------------------------------


def test_confusion_accepts_only_a_10x10_grid_of_counts():
    good = [[1] * 10 for _ in range(10)]
    assert compare.confusion({"confusion": good}) == good
    assert compare.confusion({}) is None
    assert compare.confusion({"confusion": [[1] * 9] * 10}) is None
    assert compare.confusion({"confusion": [[1.5] * 10] * 10}) is None
    assert compare.confusion({"confusion": [[-1] * 10] * 10}) is None


def test_misclassified_and_disagreement():
    summary = {"misclassified": [7, 3, 3, "x", -1, True, 10_000, 5]}
    assert compare.misclassified(summary) == [3, 5, 7, 10_000]
    assert compare.misclassified(summary, n_test=10) == [3, 5, 7]
    assert compare.misclassified({"misclassified": "nope"}) == []
    assert compare.disagreement([1, 2, 3], [2, 3, 4, 5]) == ([1], [4, 5])


# -- gallery ---------------------------------------------------------------------------------


def test_gallery_digits_and_predictions(runs_dir, synthetic_data_dir):
    (run_id,) = make_fake_runs(runs_dir, 1, seed=5, n_test=200, weights=True, max_width=32)
    assert gallery.test_size("mnist") == 200
    images, labels = gallery.test_digits("mnist", [0, 5, 199])
    assert images.shape == (3, 28, 28) and images.dtype == np.uint8 and labels.shape == (3,)
    assert images.max() > 100 and images.min() == 0
    preds = gallery.predictions(run_id, [0, 5, 199], runs_dir)
    assert preds.shape == (3,) and ((preds >= 0) & (preds < 10)).all()
    with pytest.raises(IndexError):
        gallery.test_digits("mnist", [200])
    (bare,) = make_fake_runs(runs_dir, 1, seed=6, n_test=200)  # no weights.pt
    with pytest.raises(CorruptRun, match=r"weights\.pt is missing"):
        gallery.predictions(bare, [0], runs_dir)


def test_fake_runs_are_real_runs(runs_dir):
    ids = make_fake_runs(runs_dir, 3, seed=7, n_test=100, weights=True, max_width=32)
    for run_id in ids:
        info = runs.load_run(run_id, runs_dir)
        assert isinstance(info.config, RunConfig) and max(info.config.hidden) <= 32
        model, _ = runs.load_model(run_id, runs_dir)
        assert sum(p.numel() for p in model.parameters()) == info.summary.get(
            "parameters", sum(p.numel() for p in model.parameters())
        )
        assert all(0 <= i < 100 for i in info.summary.get("misclassified", []))
    assert make_fake_runs(runs_dir / "again", 3, seed=7, n_test=100) != ids  # fresh ids, same numbers


def _info(cfg: RunConfig) -> runs.RunInfo:
    from pathlib import Path

    return runs.RunInfo(
        id="r", path=Path("r"), status="completed", config=cfg, name="r", created="", updated="", summary={}
    )


def test_a_cnns_row_reports_its_conv_channels_and_the_batch_norm_it_has():
    """The CSV said batch_norm=False for a CNN whose style has batch norm; its width was its dense layer."""
    modern = compare.run_row(_info(RunConfig(model="cnn", cnn_style="modern", cnn_channels=(32, 64))))
    lenet = compare.run_row(_info(RunConfig(model="cnn", cnn_style="lenet", cnn_channels=(6, 16))))
    mlp = compare.run_row(_info(RunConfig(hidden=(64,), batch_norm=True)))
    assert (modern["batch_norm"], lenet["batch_norm"], mlp["batch_norm"]) == (True, False, True)
    assert (modern["channels"], lenet["channels"], mlp["channels"]) == ("32-64", "6-16", "")
    assert compare.label("channels") == "Conv channels"
    parsed = list(csv.DictReader(io.StringIO(compare.to_csv([modern, lenet]))))
    assert [(r["batch_norm"], r["channels"]) for r in parsed] == [("True", "32-64"), ("False", "6-16")]
