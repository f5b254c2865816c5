"""The live chart element (ui/live_chart.py): what each redraw sends, and the element in AppTest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from job_gate import JobGate
from streamlit.testing.v1 import AppTest

from mnist_core.jobs import JobRegistry
from mnist_core.train import ProgressEvent


@pytest.fixture(autouse=True)
def _ui_importable(app_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(app_path.parent))  # as the app finds ui/ beside app.py


def step(i: int, loss: float = 1.0, acc: float = 0.5, epochs: int = 2, per_epoch: int = 8) -> ProgressEvent:
    return ProgressEvent(
        kind="step",
        epoch=1 + (i - 1) // per_epoch,
        epochs=epochs,
        step=i,
        total_steps=epochs * per_epoch,
        samples=64 * i,
        loss=loss,
        train_acc=acc,
        lr=1e-3,
        elapsed_s=0.1 * i,
        samples_per_s=1.0,
        eta_s=1.0,
    )


def epoch_end(e: int, val_acc: float = 0.9, epochs: int = 2, per_epoch: int = 8) -> ProgressEvent:
    return ProgressEvent(
        kind="epoch",
        epoch=e,
        epochs=epochs,
        step=e * per_epoch,
        total_steps=epochs * per_epoch,
        samples=64 * e * per_epoch,
        loss=0.5,
        train_acc=0.8,
        lr=1e-3,
        elapsed_s=1.0,
        samples_per_s=1.0,
        eta_s=0.0,
        val_loss=0.4,
        val_acc=val_acc,
    )


# -- what a redraw sends -------------------------------------------------------------------------


def test_a_redraw_sends_only_the_points_that_are_new_since_the_last_one() -> None:
    from ui.live_chart import learning_curve_view, payload

    view = learning_curve_view(8.0)
    points = [step(i, loss=2.0 / i) for i in (2, 4)]
    first, sent = payload(None, "job1", view, points)
    assert first["from"] == 0 and "spec" in first and len(first["rows"][0]) == 2

    points += [step(6, loss=0.3), step(8, loss=0.25), epoch_end(1)]
    second, sent = payload(sent, "job1", view, points)
    assert "spec" not in second and "lib" not in second  # no panels, no code: only points
    assert second["from"] == 2 and second["n"] == 5
    loss_rows, acc_rows = second["rows"]
    assert loss_rows == [[0.75, 0.3, None], [1.0, 0.25, None], [1.0, None, 0.4]]  # x in epochs
    assert acc_rows[-1] == [1.0, None, 0.9]

    third, sent = payload(sent, "job1", view, points)  # nothing new: nothing sent
    assert third["rows"] == [[], []] and third["from"] == third["n"] == 5
    # The 0.5 s redraw of a long run stays small: its JSON holds the new rows, not the history.
    long = [step(i) for i in range(1, 5001)]
    _, sent = payload(None, "job2", view, long)
    redraw, _ = payload(sent, "job2", view, [*long, step(5001), step(5002)])
    assert len(json.dumps(redraw)) < 200


def test_a_new_run_or_a_changed_history_is_sent_whole() -> None:
    from ui.live_chart import learning_curve_view, payload

    view = learning_curve_view()
    points = [step(i) for i in (1, 2, 3)]
    _, sent = payload(None, "job1", view, points)
    other, _ = payload(sent, "job2", view, [step(1)])
    assert other["from"] == 0 and "spec" in other  # a new run starts afresh
    changed, _ = payload(sent, "job1", view, [step(1), step(2), step(3, loss=9.0), step(4)])
    assert changed["from"] == 0 and len(changed["rows"][0]) == 4
    shorter, _ = payload(sent, "job1", view, points[:2])
    assert shorter["from"] == 0


def test_a_long_history_sent_whole_is_thinned_but_keeps_every_validation_point() -> None:
    from ui.live_chart import MAX_ROWS, learning_curve_view, payload

    per_epoch = 5000
    points = [step(i, epochs=4, per_epoch=per_epoch) for i in range(1, 3 * per_epoch + 1)]
    points += [epoch_end(e, epochs=4, per_epoch=per_epoch) for e in (1, 2, 3)]
    data, sent = payload(None, "job1", learning_curve_view(), points)
    loss_rows = data["rows"][0]
    assert len(loss_rows) <= MAX_ROWS + 3
    assert sum(r[2] is not None for r in loss_rows) == 3  # all three validation points
    assert sent.n == len(points)


def test_the_accuracy_panel_never_goes_past_100_percent_and_hover_knows_the_step() -> None:
    from ui.live_chart import learning_curve_view, steps_per_epoch

    loss, acc = learning_curve_view(steps_per_epoch([step(1, per_epoch=938)])).panels
    assert acc.as_dict()["y_range"] == [0.0, 1.0] and acc.percent
    assert loss.steps_per_x == acc.steps_per_x == 938.0


def test_layer_statistics_one_line_per_layer_and_old_points_without_them() -> None:
    from dataclasses import replace

    from ui.live_chart import payload
    from ui.live_layers import layer_stats_view

    layers = [
        {
            "name": "layer 1 (784→32)",
            "grad_norm": 0.5,
            "update_ratio": 1e-3,
            "dead_share": 0.25,
            "saturated_share": None,
        },
        {
            "name": "output (32→10)",
            "grad_norm": 0.0,
            "update_ratio": None,
            "dead_share": None,
            "saturated_share": None,
        },
    ]
    view = layer_stats_view(layers, per=8.0)
    grad, ratio, units = view.panels
    assert ratio.title == "Update / weight" and ratio.log
    assert [s.name for s in grad.series] == ["layer 1 (784→32)", "output (32→10)"] and grad.log
    assert [s.name for s in units.series] == ["layer 1 (784→32)"] and units.title == "Dead ReLU units"
    assert units.y_range == (0, 1) and units.percent
    old = step(2).to_dict()  # a run recorded before the statistics existed: no "layers"
    points = [old, replace(step(4), layers=layers)]
    data, _ = payload(None, "job1", view, points)
    grad_rows, ratio_rows, unit_rows = data["rows"]
    assert grad_rows == [[0.5, 0.5, None]]  # a zero gradient has no place on a log axis
    assert ratio_rows == [[0.5, 0.001, None]] and unit_rows == [[0.5, 0.25]]


# -- the element in AppTest ----------------------------------------------------------------------


def _script() -> None:
    import streamlit as st

    from mnist_core.train import ProgressEvent
    from ui.live_chart import live_learning_curves

    n = st.session_state.setdefault("n", 0) + 2
    st.session_state["n"] = n
    points = [
        ProgressEvent(
            kind="step",
            epoch=1,
            epochs=1,
            step=i,
            total_steps=100,
            samples=i,
            loss=1.0 / i,
            train_acc=0.5,
            lr=1e-3,
            elapsed_s=0.1,
            samples_per_s=1.0,
            eta_s=1.0,
        )
        for i in range(1, n + 1)
    ]
    live_learning_curves("demo_live", "run1", points)


def _chart(at: AppTest):
    found = at.get("bidi_component")
    assert len(found) == 1, [e.type for e in at.main]
    return found[0].proto


def test_the_element_gets_its_code_once_then_only_new_points_under_the_same_identity() -> None:
    at = AppTest.from_function(_script, default_timeout=30)
    at.run()
    assert not at.exception
    proto = _chart(at)
    assert proto.component_name == "mnist_lab.live_chart"
    assert len(proto.js_content) < 1500 and "export default" in proto.js_content
    data = json.loads(proto.json)
    assert "uPlot" in data["lib"] and "mnistLiveChart" in data["lib"]  # vendored, no CDN
    assert "cdn" not in data["lib"].lower()
    assert data["from"] == 0 and len(data["rows"][0]) == 2
    first_id = proto.id

    at.run()
    proto = _chart(at)
    assert proto.id == first_id
    data = json.loads(proto.json)
    assert "lib" not in data and "spec" not in data
    assert data["from"] == 2 and [r[0] for r in data["rows"][0]] == [0.03, 0.04]
    assert len(proto.json) < 300


@pytest.mark.slow
def test_home_quick_model_shows_its_live_chart_while_it_trains(
    app_path: Path, runs_dir: Path, registry: JobRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_pages import QUICK_BUTTON, click, open_app, run_until

    gate = JobGate(monkeypatch)  # the run waits at its first progress event: it cannot end unseen
    at = click(open_app(app_path), QUICK_BUTTON)
    gate.wait_held()
    try:
        run_until(at, lambda at: any(c.key.startswith("home_quick_") for c in at.get("bidi_component")))
    finally:
        gate.release()
    (chart,) = [c for c in at.get("bidi_component") if c.key.startswith("home_quick_")]
    data = json.loads(chart.proto.json)
    loss, accuracy = data["spec"]["panels"]
    assert loss["title"] == "Loss" and len(data["rows"][0]) >= 1
    assert accuracy["y_range"] == [0, 1]
    for job in registry.jobs():
        job.stop()
