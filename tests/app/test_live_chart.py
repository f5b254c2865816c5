"""The live chart element (ui/live_chart.py) in AppTest: keyed, with the columns it was given."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from job_gate import JobGate
from streamlit.testing.v1 import AppTest

from mnist_core.jobs import JobRegistry


def _script() -> None:
    import math

    from ui.live_chart import LineSeries, Panel, live_chart

    nan = math.nan
    live_chart(
        "demo_live",
        [
            Panel(
                "Loss",
                [
                    LineSeries("train (running)", [0.25, 0.5, 1.0], [2.0, 1.5, nan], "#1f77b4"),
                    LineSeries("validation", [1.0], [1.2], "#ff7f0e", markers=True),
                ],
                y_label="cross-entropy",
            ),
            Panel("Accuracy", [LineSeries("train", [0.5], [0.9], "#1f77b4")], y_range=(0, 1), percent=True),
        ],
    )


@pytest.fixture(autouse=True)
def _ui_importable(app_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(app_path.parent))  # as the app finds ui/ beside app.py


def _chart(at: AppTest):
    found = at.get("bidi_component")
    assert len(found) == 1, [e.type for e in at.main]
    return found[0].proto


def test_live_chart_renders_its_columns_aligned_on_one_x() -> None:
    at = AppTest.from_function(_script, default_timeout=30)
    at.run()
    assert not at.exception
    proto = _chart(at)
    assert proto.component_name == "mnist_lab.live_chart"
    assert "uPlot" in proto.js_content and "export default" in proto.js_content  # vendored, no CDN
    assert "cdn" not in proto.js_content.lower()
    data = json.loads(proto.json)
    loss, acc = data["panels"]
    assert loss["x"] == [0.25, 0.5, 1.0]
    assert loss["series"][0]["y"] == [2.0, 1.5, None]  # NaN travels as null (JSON has no NaN)
    assert loss["series"][1]["y"] == [None, None, 1.2]
    assert acc["y_range"] == [0, 1] and acc["percent"] is True
    assert not any(isinstance(v, float) and math.isnan(v) for v in loss["x"])


def test_live_chart_identity_is_its_key() -> None:
    at = AppTest.from_function(_script, default_timeout=30)
    at.run()
    first = _chart(at).id
    at.run()
    assert _chart(at).id == first


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
    loss, accuracy = json.loads(chart.proto.json)["panels"]
    assert loss["title"] == "Loss" and len(loss["x"]) >= 1
    assert accuracy["y_range"] == [0, 1]
    for job in registry.jobs():
        job.stop()
