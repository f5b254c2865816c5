"""The Runs page's "Inside" view and the Draw page's layer view through AppTest, on untrained weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from mnist_core import runs
from mnist_core.config import RunConfig
from tests.support.apptest import open_runs_view
from tests.support.drawing import canvas_png, inject
from tests.support.saved import completed_fake_runs, untrained_run

N_TEST = 200  # the generated dataset's test split (tests/conftest.py)


@pytest.fixture
def run_ids(runs_dir: Path) -> list[str]:
    return completed_fake_runs(runs_dir, 4, seed=11, n_test=N_TEST)


def open_inside(app_path: Path, chosen: list[str]) -> AppTest:
    return open_runs_view(app_path, "Inside", chosen, runs_inside_runs=chosen)


def chart_titles(at: AppTest) -> list[str]:
    specs = [json.loads(c.proto.spec)["layout"] for c in at.get("plotly_chart")]
    return [layout["title"]["text"] for layout in specs if "title" in layout]  # Draw page bars: no title


def test_two_runs_side_by_side(app_path, run_ids):
    chosen = run_ids[:2]
    at = open_inside(app_path, chosen)
    assert len(at.image) == 2  # one weight mosaic per run
    assert all("with the largest norm" in image.captions[0] for image in at.image)
    titles = chart_titles(at)
    assert titles.count("Weights per layer") == 2
    assert titles.count(f"Outputs on {N_TEST} test images") == 2
    assert titles[-2:] == ["Dead or saturated units per layer", "Accuracy of a linear readout of each layer"]
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    outputs_title = f"Outputs on {N_TEST} test images"
    shown = [f for f in specs if f["layout"].get("title", {}).get("text") == outputs_title]
    assert len(shown) == 2
    for outputs in shown:
        # One panel per layer, each on its own value axis: on the logits' axis a tanh layer was a spike.
        axes = [t.get("xaxis", "x") for t in outputs["data"]]
        assert len(axes) == len(set(axes)) >= 2, axes
        assert len([a for a in outputs["layout"]["annotations"] if "layer" in a["text"]]) == len(axes)
    units = json.loads(at.get("plotly_chart")[-2].proto.spec)["data"]
    assert len(units) == 2  # one bar trace per run
    depth = {r.id: r.config.depth for r in runs.list_runs()}
    assert sorted(len(t["x"]) for t in units) == sorted(depth[i] for i in chosen)  # ReLU hidden layers
    readouts = json.loads(at.get("plotly_chart")[-1].proto.spec)["data"]  # pixels, each layer, the output
    assert sorted(len(t["y"]) for t in readouts) == sorted(depth[i] + 2 for i in chosen)
    assert all(0 <= y <= 1 for t in readouts for y in t["y"])
    for run_id in chosen:  # fitted once, kept beside the run
        assert (runs.run_path(run_id) / "probes.npz").is_file()


def test_old_runs_say_what_their_history_lacks_and_new_ones_show_their_gradients(app_path, run_ids, runs_dir):
    new = untrained_run(runs_dir, RunConfig(hidden=(16, 8)), "recorded")
    layers = [
        {"name": name, "grad_norm": g, "update_ratio": 1e-3, "dead_share": 0.1, "saturated_share": None}
        for name, g in (("layer 1 (784→16)", 0.01), ("layer 2 (16→8)", 0.1), ("output (8→10)", 1.0))
    ]
    point = {"kind": "step", "epoch": 1, "step": 1, "loss": 2.3, "train_acc": 0.1, "n": 64, "layers": layers}
    runs.write_json(runs.run_path(new, runs_dir) / "history.json", [point, point])
    old = run_ids[0]  # generated before the statistics existed: no "layers" in its points
    at = open_inside(app_path, [old, new])
    assert not at.exception, [e.value for e in at.exception]
    assert any("no per-layer training statistics" in i.value and "train it again" in i.value for i in at.info)
    assert len(at.image) == 2  # both open: the old run's weights are shown all the same
    titles = chart_titles(at)
    assert titles[-2] == "Gradient norm per layer while training (median)"
    assert titles[-1] == "Accuracy of a linear readout of each layer"  # last: fitted where it is drawn
    bars = json.loads(at.get("plotly_chart")[-2].proto.spec)["data"]
    assert len(bars) == 1 and bars[0]["x"] == ["layer 1", "layer 2", "output"]


def test_the_readouts_are_fitted_after_everything_else_is_drawn_and_say_so(app_path, run_ids, monkeypatch):
    import streamlit as st

    import ui.inside_runs as charts
    from mnist_core import probes

    events: list[str] = []

    def recording(name: str, fn):
        def wrapped(*args, **kwargs):
            events.append(name)
            return fn(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(probes, "fit_probes", recording("fit", probes.fit_probes))
    monkeypatch.setattr(charts, "histograms_figure", recording("histograms", charts.histograms_figure))
    monkeypatch.setattr(charts, "units_figure", recording("units", charts.units_figure))
    monkeypatch.setattr(charts, "training_stats_panel", recording("training", charts.training_stats_panel))
    spinners: list[str] = []
    spinner = st.spinner

    def noted(text: str = "", *args, **kwargs):
        spinners.append(text)
        return spinner(text, *args, **kwargs)

    monkeypatch.setattr(st, "spinner", noted)
    at = open_inside(app_path, run_ids[:2])
    assert not at.exception, [e.value for e in at.exception]
    assert events.count("fit") == 2 and {"histograms", "units", "training"} <= set(events)
    drawn = max(i for i, e in enumerate(events) if e != "fit")
    assert events.index("fit") > drawn  # the readouts are drawn last and fitted there
    fitting = [t for t in spinners if "Fitting the readouts" in t]
    assert len(fitting) == 2 and all("first time for this run, ~" in t for t in fitting)
    events.clear()
    again = open_inside(app_path, run_ids[:2])  # kept beside the runs: read back, no fit and no spinner
    assert "fit" not in events and chart_titles(again)[-1] == "Accuracy of a linear readout of each layer"
    assert len([t for t in spinners if "Fitting the readouts" in t]) == 2


def test_without_the_dataset_the_weights_still_show(app_path, run_ids, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path / "no-data"))
    at = open_inside(app_path, run_ids[:1])
    assert any("No activation statistics" in i.value and "weights are shown" in i.value for i in at.info)
    assert any("No readouts per layer" in i.value and "MNIST_DATA_DIR" in i.value for i in at.info)
    assert len(at.image) == 1
    assert chart_titles(at) == ["Weights per layer"]


def test_a_run_without_weights_says_why(app_path, runs_dir):
    writer = runs.RunWriter.create(RunConfig(hidden=(8,)), runs_dir)
    writer.finish("failed", error="RuntimeError: out of memory")
    at = open_inside(app_path, [writer.id])
    assert any("Nothing to show inside" in i.value and "weights.pt is missing" in i.value for i in at.info)


# -- the Draw page's layer view ---------------------------------------------------------------

LAYER_VIEW_KEY = "draw_inside_layers"


def open_draw_with(app_path: Path, run_id: str, layer_view_open: bool) -> AppTest:
    at = AppTest.from_file(str(app_path), default_timeout=60)
    at.switch_page("pages/draw.py")
    at.session_state["draw_run"] = run_id
    at.session_state[LAYER_VIEW_KEY] = layer_view_open
    at = inject(at, canvas_png(7))
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def layer_captions(at: AppTest) -> list[str]:
    return [c for image in at.image for c in image.captions if c.startswith("layer ")]


def test_draw_page_layer_view_of_an_mlp(app_path, runs_dir):
    run_id = untrained_run(runs_dir, RunConfig(hidden=(64, 32)), "two layers")
    at = open_draw_with(app_path, run_id, layer_view_open=True)
    captions = layer_captions(at)
    assert [c.split(":")[0] for c in captions] == ["layer 1", "layer 2"]
    assert "its 64 units" in captions[0] and "its 32 units" in captions[1]
    pushers = [image for image in at.image if any(c.startswith("unit ") for c in image.captions)]
    assert len(pushers) == 1 and 1 <= len(pushers[0].captions) <= 8  # the first layer's top units
    titles = chart_titles(at)
    predicted = at.metric[0].value  # "Prediction"
    assert f"Units that pushed {predicted} most" in titles
    assert f"Probability of {predicted} with a layer's top units off" in titles
    assert "How the output layer builds the logits" in titles
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    traces = next(s["data"] for s in specs if "grows layer by layer" in str(s["layout"].get("title")))
    assert len(traces) == 10 and all(len(t["x"]) == 4 for t in traces)  # pixels, layers 1 and 2, the output
    assert f"How the probability of {predicted} grows layer by layer" in titles
    assert any("a linear readout fitted for it on" in c.value for c in at.caption)


def test_draw_page_layer_view_of_a_cnn_and_closed_costs_nothing(app_path, runs_dir, monkeypatch):
    cfg = RunConfig(model="cnn", cnn_channels=(4, 8), hidden=(16,))
    run_id = untrained_run(runs_dir, cfg, "small cnn")
    at = open_draw_with(app_path, run_id, layer_view_open=True)
    captions = layer_captions(at)
    assert [c.split(":")[0] for c in captions] == ["layer 1", "layer 2", "layer 3"]
    assert "its 4 channels (mean over positions)" in captions[0]
    assert any("Feature maps of the channels" in c for image in at.image for c in image.captions)
    closed = open_draw_with(app_path, run_id, layer_view_open=False)
    assert layer_captions(closed) == []
    assert "How the output layer builds the logits" not in chart_titles(closed)
    assert "Inside the network: this drawing, layer by layer" in [e.label for e in closed.expander]


def test_draw_page_layer_view_says_when_the_memory_answered(app_path, runs_dir):
    import torch

    from mnist_core import memory

    run_id = untrained_run(runs_dir, RunConfig(hidden=(32,)), "remembers")
    state = {"keys": torch.zeros(1, 784), "labels": torch.tensor([3]), "radius": torch.tensor([1e6])}
    torch.save(state, runs.run_path(run_id, runs_dir) / memory.MEMORY_FILE)  # every drawing falls within it
    at = open_draw_with(app_path, run_id, layer_view_open=True)
    assert at.metric[0].value == "3"  # the page's prediction: the memory's
    notes = [w.value for w in at.warning if "remembers this drawing" in w.value]
    assert len(notes) == 1 and "memory of 1 corrected drawings" in notes[0] and "answered 3" in notes[0]
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    build = next(s["data"] for s in specs if "builds the logits" in str(s["layout"].get("title")))
    assert all(t["x"][-1] == "memory" for t in build)


def test_no_dead_or_saturated_unit_is_said_in_words_not_drawn_as_empty_bars(app_path, runs_dir) -> None:
    """LeNet-5's Inside view drew "Dead or saturated units per layer" all at 0: it looked broken."""
    run_id = untrained_run(runs_dir, RunConfig(hidden=(32,), activation="tanh"), "calm tanh")
    at = open_inside(app_path, [run_id])
    assert not at.exception
    assert "Dead or saturated units per layer" not in chart_titles(at)
    assert any("none, in any layer of these runs" in m.value for m in at.markdown)
