"""What the live views redraw twice a second: only the progress bar and the live chart (issue 22).

Served by ``streamlit run`` (``ui/live_route.py``), nothing reruns while a job
trains: one element, drawn once per page run with no points, fetches the
points and the status and draws the chart, the progress bar and the metrics;
it asks for one rerun when the job ends. Without the
route (AppTest, a page run on its own) a 0.5 s fragment redraws the chart.

Every element a fragment holds is sent again and redrawn by the browser at each
of its reruns (a rerun costs the browser ~15 ms before any element): the Train
page's job panel and the Home page's quick model keep their name and Stop button
out of the 0.5 s fragment, and their metrics and per-layer statistics in a
slower one. Read from the messages the page sends while a job trains: each
element carries the id of the fragment that drew it, and each fragment's
``auto_rerun`` message its interval.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from job_gate import JobGate
from streamlit.testing.v1 import AppTest

from mnist_core.config import RunConfig, quick_default
from mnist_core.jobs import JobRegistry
from tests.support.apptest import Sent, open_app, run_until

FAST_S = 0.5


def fast_and_slow(sent: Sent) -> tuple[list[str], list[str]]:
    """What the 0.5 s fragments draw, and what the slower ones draw."""
    intervals, drawn = sent.by_fragment()
    fast = [w for f, items in drawn.items() if intervals.get(f, 0) and intervals[f] <= FAST_S for w in items]
    slow = [w for f, items in drawn.items() if intervals.get(f, 0) > FAST_S for w in items]
    return fast, slow


def assert_only_bar_and_chart(fast: list[str], chart_key: str) -> None:
    kinds = sorted(w.split(":")[0] for w in fast if w != "add_block")
    assert kinds == ["bidi_component", "progress"], f"the 0.5 s redraw draws {fast}"
    assert fast.count("add_block") <= 1, f"the 0.5 s redraw draws {fast}"  # the fragment's own container
    assert chart_key in next(w for w in fast if w.startswith("bidi_component")), fast


def watch_a_small_run(
    app_path: Path, monkeypatch: pytest.MonkeyPatch, epochs: int | None = None
) -> tuple[AppTest, Sent, JobGate]:
    """Start a width-16 MLP on the Train page; it waits at its first progress event (the page shows it
    training) until the caller releases the gate; the messages of one page run are recorded."""
    gate = JobGate(monkeypatch)
    sent = Sent(monkeypatch)
    at = open_app(app_path, "pages/train.py", check=True)
    at.select_slider(key="train_width").set_value(16)
    if epochs is not None:
        at.number_input(key="train_epochs").set_value(epochs)
    at.run()
    next(b for b in at.button if b.label == "Start training").click()
    at.run()
    gate.wait_held()
    run_until(at, lambda at: any(c.key == "train_live_job-1" for c in at.get("bidi_component")))
    sent.run(at)
    return at, sent, gate


@pytest.mark.slow
def test_the_train_pages_fast_redraw_holds_only_the_progress_bar_and_the_chart(
    app_path: Path, registry: JobRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    at, sent, gate = watch_a_small_run(app_path, monkeypatch, epochs=3)
    gate.release()

    fast, slow = fast_and_slow(sent)
    assert_only_bar_and_chart(fast, "train_live_job-1")
    assert slow.count("metric") == 5, f"the slower fragment draws {slow}"  # loss, accuracies, images/s, rate
    assert not at.exception


def watch_the_quick_model(app_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[AppTest, Sent]:
    """Start the Home page's quick model, held at its first step until one page run has been recorded."""
    gate = JobGate(monkeypatch, quick_default())
    sent = Sent(monkeypatch)
    at = open_app(app_path, check=True)
    next(b for b in at.button if b.label == "Train a quick default model").click()
    at.run()
    gate.wait_held()
    run_until(at, lambda at: any(c.key.startswith("home_quick_") for c in at.get("bidi_component")))
    sent.run(at)
    gate.release()
    return at, sent


@pytest.mark.slow
def test_the_quick_models_fast_redraw_holds_only_the_progress_bar_and_the_chart(
    app_path: Path, registry: JobRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    at, sent = watch_the_quick_model(app_path, monkeypatch)

    fast, slow = fast_and_slow(sent)
    assert_only_bar_and_chart(fast, "home_quick_")
    assert slow.count("metric") == 4, f"the slower fragment draws {slow}"
    assert not at.exception


def chart_data(sent: Sent, key: str) -> list[dict]:
    """The data of each ``key`` chart the latest run sent, with the fragment that drew it ('' for none)."""
    out = []
    for m in sent.msgs:
        if m.HasField("delta") and m.delta.WhichOneof("type") == "new_element":
            el = m.delta.new_element
            if el.WhichOneof("type") == "bidi_component" and key in el.bidi_component.id:
                out.append({**json.loads(el.bidi_component.json), "fragment": m.delta.fragment_id})
    return out


def assert_polled(sent: Sent, chart_key: str, metrics: int) -> dict:
    """No fragment at all: one element, drawn by the page run, shows the bar, the metrics and the chart."""
    intervals, _ = sent.by_fragment()
    assert not intervals, f"fragments rerun while the job trains: {intervals}"
    charts = chart_data(sent, chart_key)
    assert len(charts) == 1 and charts[0]["fragment"] == "", "the chart is drawn once, by the page run"
    data = charts[0]
    assert data["poll"] == f"_live/{data['run']}" and "rows" not in data, "its points come from the route"
    assert data["status"] is True and data["ask"] is True, "it draws the bar and metrics, asks for the rerun"
    assert [p["title"] for p in data["spec"]["panels"]] == ["Loss", "Accuracy"]
    elements = [m.delta.new_element for m in sent.msgs if m.HasField("delta")
                and m.delta.WhichOneof("type") == "new_element"]  # fmt: skip
    kinds = [e.WhichOneof("type") for e in elements]
    labels = {e.metric.label for e in elements if e.WhichOneof("type") == "metric"}
    assert "progress" not in kinds and not labels & {"Loss", "Images / s"}, "no st.progress, st.metric too"
    assert data["compact"] is (metrics == 4)
    return data


@pytest.fixture
def served(app_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The pages as ``streamlit run`` serves them: with the live charts' route."""
    monkeypatch.syspath_prepend(str(app_path.parent))
    from ui import live_route

    monkeypatch.setattr(live_route, "_served", True)
    yield live_route
    live_route.forget_all()


@pytest.mark.slow
def test_served_the_train_pages_chart_is_drawn_once_and_polls_nothing_reruns_twice_a_second(
    app_path: Path, registry: JobRegistry, served, monkeypatch: pytest.MonkeyPatch
) -> None:
    at, sent, gate = watch_a_small_run(app_path, monkeypatch)
    assert served.points_since("job-1", 0) is not None, "the page let the route serve its job"
    gate.release()

    data = assert_polled(sent, "train_live_job-1", metrics=5)
    assert data["page"] == repr([("job-1", "running", data["page"].split("'")[5], False)])
    layers = chart_data(sent, "train_layers_job-1")
    assert len(layers) == 1 and layers[0]["poll"] == "_live/job-1?view=layers" and layers[0]["spec"] is None
    assert layers[0]["ask"] is False and "per layer" in layers[0]["caption"]
    assert not at.exception


@pytest.mark.slow
def test_served_the_quick_models_chart_is_drawn_once_and_polls(
    app_path: Path, registry: JobRegistry, served, monkeypatch: pytest.MonkeyPatch
) -> None:
    at, sent = watch_the_quick_model(app_path, monkeypatch)

    assert_polled(sent, "home_quick_", metrics=4)
    assert not at.exception


@pytest.mark.slow
def test_served_a_running_sweeps_chart_polls_the_route_and_its_fragments_rerun_seldom(
    app_path: Path, runs_dir: Path, registry: JobRegistry, served, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mnist_core import sweeps

    point = RunConfig(hidden=(16,), batch_size=4, epochs=30)
    gate = JobGate(monkeypatch, point)  # its run trains until the test is done with the page
    sweeps.launch([point], "served grid", registry, runs_dir=runs_dir)
    gate.wait_held()
    sent = Sent(monkeypatch)
    at = open_app(app_path, "pages/sweeps.py", check=True)
    sent.run(at)
    gate.release()

    intervals, _ = sent.by_fragment()
    assert intervals and min(intervals.values()) >= 10.0, f"the sweep's fragments rerun every {intervals} s"
    (data,) = chart_data(sent, "sweeps_live_job-1")
    assert data["poll"] == "_live/job-1" and "rows" not in data, "its points come from the route"
    assert data["status"] is False and data["ask"] is True  # the row shows the sweep's progress itself
    assert served.points_since("job-1", 0) is not None
    assert not at.exception
