"""The Train and Runs pages' figures: axes a reader can trust, titles nothing covers (issue 21, 8-10)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # ui/ beside app.py, as the app finds it

from mnist_core.curves import Curves, curve_columns
from ui import charts, runs_charts, runs_curves


def _curves(acc: list[float]) -> Curves:
    x = np.arange(1, len(acc) + 1, dtype=np.float64)
    return Curves(
        step_x=x, step_loss=np.ones_like(x), step_acc=np.asarray(acc), epoch_x=x[-1:],
        epoch_loss=np.ones(1), epoch_acc=np.asarray(acc[-1:]), val_loss=np.ones(1),
        val_acc=np.asarray(acc[-1:]),
    )  # fmt: skip


def _title_is_clear(layout: dict) -> None:
    """The legend sits under the plot, at the chart's bottom edge (placed at a share of the plot's height, a
    legend of many rows climbed onto the x axis's title), and the top margin leaves the title a row above
    the modebar's."""
    legend = layout["legend"]
    assert legend.get("orientation") == "h" and legend.get("yanchor") == "bottom", legend
    assert legend.get("yref") == "container" and legend["y"] == 0, legend
    assert layout["margin"]["t"] >= charts.TITLE_MARGIN, layout["margin"]


@pytest.mark.parametrize("acc", [[0.1], [0.97, 0.98, 0.99], [0.5, 1.0]])
def test_live_accuracy_axis_is_zero_to_one_hundred_percent(acc: list[float]) -> None:
    """Plotly's autorange put up to 150% on the axis of one or two points; the axis is fixed at 0-100%."""
    layout = charts.accuracy_figure(_curves(acc))["layout"]
    assert layout["yaxis"]["range"] == [0, 1] and layout["yaxis"]["tickformat"] == ".0%"


def test_learning_curve_legends_sit_under_the_plot() -> None:
    for figure in (charts.loss_figure(_curves([0.5])), charts.accuracy_figure(_curves([0.5]))):
        _title_is_clear(figure["layout"])


def _rows(costs: list[float]) -> list[dict]:
    return [
        {"id": f"r{i}", "name": f"run {i}", "architecture": "MLP", "depth": 1, "width": 16, "batch_size": 64,
         "epochs": 1, "optimizer": "adam", "lr": 1e-3, "schedule": "none", "test_accuracy": 0.9 + i / 1000,
         "parameters": c}
        for i, c in enumerate(costs)
    ]  # fmt: skip


def test_runs_charts_keep_their_titles_clear() -> None:
    rows = _rows([1e4, 1e5])
    _title_is_clear(runs_charts.cost_figure(rows, "parameters", [0, 1]).to_plotly_json()["layout"])
    curves = {"r0": curve_columns([])}
    layout = runs_curves.curves_figure(curves, {"r0": rows[0]}).to_plotly_json()["layout"]
    _title_is_clear(layout)


@pytest.mark.parametrize(
    ("costs", "expected"),
    [
        ([2e3, 5e6], ["1k", "10k", "100k", "1M", "10M"]),  # many decades: one tick per decade
        ([15_000, 90_000], ["10k", "20k", "50k", "100k"]),  # one decade: 1-2-5
        ([0.004, 0.3], ["0.001", "0.01", "0.1", "1"]),
        ([3.0, 3.0], ["2", "5"]),
    ],
)
def test_log_cost_axis_reads_as_round_numbers(costs: list[float], expected: list[str]) -> None:
    """Plotly's own log ticks read "2 3 4 ... 10 2 3 4"; the axis now names its ticks."""
    fig = runs_charts.cost_figure(_rows(costs), "parameters", [0]).to_plotly_json()
    axis = fig["layout"]["xaxis"]
    assert axis["type"] == "log" and axis["tickmode"] == "array"
    assert list(axis["ticktext"]) == expected
    assert len(axis["tickvals"]) == len(expected)


def test_log_axis_ticks_cover_the_data() -> None:
    vals, text = charts.log_ticks([3.0, 7_000.0])
    assert vals[0] <= 3.0 and vals[-1] >= 7_000.0 and text == ["1", "10", "100", "1k", "10k"]


def test_parallel_coordinates_cost_axes_read_as_round_numbers() -> None:
    rows = _rows([12_000.0, 400_000.0])
    fig = runs_charts.parallel_figure(rows, ["depth"], ["parameters", "test_accuracy"]).to_plotly_json()
    params = next(d for d in fig["data"][0]["dimensions"] if d["label"].startswith("Parameters"))
    assert list(params["ticktext"]) == ["20k", "50k", "100k", "200k"]  # was "2e+04", "5e+04"...
    # Slanted labels (level, they ran into each other on a phone), and the colour bar of accuracy in %.
    trace = fig["data"][0]
    assert trace["labelangle"] == -30 and trace["labelside"] == "top"
    assert trace["line"]["colorbar"]["tickformat"] == ".1%"


def test_the_train_and_runs_pages_draw_one_confusion_figure() -> None:
    """Two figures in two scales: Blues with the diagonal on the Train page, Reds on mistakes on Runs."""
    matrix = [[980, 3], [7, 1010]]
    train = charts.confusion_figure(matrix, ["0", "1"])
    runs = runs_charts.confusion_figure(matrix, ["0", "1"], "run <b>a</b>")
    for fig in (train, runs):
        (heat,) = fig.data
        assert heat.colorscale == runs.data[0].colorscale  # one scale
        assert np.asarray(heat.z).tolist() == [[0, 3], [7, 0]]  # the mistakes are coloured
        assert np.asarray(heat.text).tolist() == matrix  # every count is written
    assert "Confusion matrix (test set)" in train.layout.title.text
    assert "run &lt;b&gt;a&lt;/b&gt;" in runs.layout.title.text


def test_learning_curves_grow_with_their_legend_so_many_runs_keep_the_plot() -> None:
    rows = _rows([1e4] * 12)
    one = runs_curves.curves_figure({"r0": curve_columns([])}, {"r0": rows[0]}).layout.height
    twelve = runs_curves.curves_figure({f"r{i}": curve_columns([]) for i in range(12)},
                                       {f"r{i}": rows[i] for i in range(12)}).layout.height  # fmt: skip
    assert twelve - one == 11 * runs_curves.LEGEND_ROW_PX


def test_learning_curves_can_take_a_log_x_axis() -> None:
    """A batch-256 run (211 steps) was a sliver at x = 0 beside a batch-1 run (50,000 steps)."""
    rows = _rows([1e4])
    curves = {"r0": curve_columns([])}
    linear = runs_curves.curves_figure(curves, {"r0": rows[0]}, "step").to_plotly_json()["layout"]
    log = runs_curves.curves_figure(curves, {"r0": rows[0]}, "step", log_x=True).to_plotly_json()["layout"]
    assert linear["xaxis"]["type"] == linear["xaxis2"]["type"] == "linear"
    assert log["xaxis"]["type"] == log["xaxis2"]["type"] == "log"


def test_cost_chart_colours_a_cnn_apart_from_the_mlps_of_its_dense_depth() -> None:
    rows = _rows([1e4, 2e4, 3e4])
    rows[2] |= {"model": "cnn", "architecture": "LeNet-5"}
    fig = runs_charts.cost_figure(rows, "parameters", [0], color_by="depth").to_plotly_json()
    named = {t["name"]: len(t["x"]) for t in fig["data"] if t["name"] != "Pareto front"}
    assert named == {"MLP, depth 1": 2, "CNN, depth 1": 1}
