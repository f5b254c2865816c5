"""The JSON route a live chart polls (ui/live_route.py) and how app.py serves it (issue 22)."""

from __future__ import annotations

import json
import runpy
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest
from test_live_chart import epoch_end, step

from mnist_core.config import RunConfig
from mnist_core.jobs import Job
from mnist_core.train import ProgressEvent


@pytest.fixture(autouse=True)
def _ui_importable(app_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(app_path.parent))  # as the app finds ui/ beside app.py


class FakeJob:
    """A real :class:`Job` (its snapshot, status and phase), running, whose events the test appends."""

    def __init__(self, job_id: str, events: list[ProgressEvent]) -> None:
        self.job = Job(job_id, RunConfig(epochs=2), None, None)
        self.job._set(state="running", started=time.monotonic())
        for event in events:
            self.job._on_progress(event)
        self.id = job_id

    def add(self, *events: ProgressEvent) -> None:
        for event in events:
            self.job._on_progress(event)

    def end(self) -> None:
        self.job._set(state="completed", finished=time.monotonic())

    def snapshot(self):
        return self.job.snapshot()


def get(path: str, query: str = ""):
    """Call the route's handler as Starlette would for ``GET path?query``: (status, JSON body)."""
    from starlette.requests import Request

    from ui import live_route

    job_id = path.removeprefix(live_route.PREFIX.lstrip("/"))
    scope = {
        "type": "http", "method": "GET", "path": "/" + path, "query_string": query.encode(), "headers": [],
        "path_params": {"job_id": job_id},
    }  # fmt: skip
    response = live_route.live_points(Request(scope))
    assert response.headers["cache-control"] == "no-store"
    return response.status_code, json.loads(response.body)


@pytest.fixture
def route():
    from ui import live_route

    live_route.forget_all()
    yield live_route
    live_route.forget_all()


def test_the_route_answers_only_the_rows_after_those_the_chart_holds(route) -> None:
    job = FakeJob("job-7", [step(i) for i in range(1, 5)])
    route.expose(job)

    status, first = get(route.url("job-7"), "from=0")
    assert status == 200
    assert (first["from"], first["n"], first["active"]) == (0, 4, True)
    assert [len(rows) for rows in first["rows"]] == [4, 4]  # loss and accuracy panels
    assert first["per"] == 8  # steps per epoch, for the hover

    job.add(step(5, loss=0.25), step(6), step(7), step(8), epoch_end(1))
    status, later = get(route.url("job-7"), "from=4")
    assert (status, later["from"], later["n"]) == (200, 4, 9)
    loss_rows = later["rows"][0]
    assert next(r[1] for r in loss_rows if r[1] is not None) == 0.25  # starts at the 5th point, not the 1st
    assert len(loss_rows) == 5  # 4 steps and the validation point, nothing the chart already has

    status, none_new = get(route.url("job-7"), "from=9")
    assert none_new["rows"] == [[], []]

    job.end()
    assert get(route.url("job-7"), "from=9")[1]["active"] is False  # the chart stops asking


def test_a_chart_ahead_of_the_history_gets_it_whole(route) -> None:
    route.expose(FakeJob("job-2", [step(i) for i in range(1, 4)]))
    status, body = get(route.url("job-2"), "from=50")  # e.g. the server restarted under the page
    assert (status, body["from"], body["n"]) == (200, 0, 3)


def test_a_resumed_job_serves_the_saved_history_before_its_own_points(route) -> None:
    saved = [asdict(step(i)) for i in range(1, 4)]
    route.expose(FakeJob("job-3", [step(i) for i in range(3, 6)]), saved)
    body = get(route.url("job-3"), "from=0")[1]
    assert body["n"] == 5  # saved steps 1-2 (3 is the job's own), then 3-5


def test_an_unknown_job_or_a_bad_from_is_refused_in_json(route) -> None:
    status, body = get(route.url("job-404"), "from=0")
    assert status == 404
    assert "job-404" in body["error"] and "Train page" in body["error"]
    route.expose(FakeJob("job-1", []))
    body = get(route.url("job-1"), "from=0")[1]
    assert {k: body[k] for k in ("from", "n", "rows", "active", "per", "page")} == {
        "from": 0,
        "n": 0,
        "rows": [[], []],
        "active": True,
        "per": None,
        "page": None,
    }
    assert body["status"]["text"] == "Starting: loading the data…" and body["status"]["fraction"] == 0
    status, body = get(route.url("job-1"), "from=soon")
    assert status == 400 and "whole number" in body["error"]


def test_streamlit_run_finds_the_app_and_its_route_and_the_script_run_draws_only_as_main(
    app_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit import config
    from streamlit.web.server.app_discovery import discover_asgi_app

    from ui import live_route

    found = discover_asgi_app(app_path)
    assert found.is_asgi_app and found.import_string == "app:app"

    monkeypatch.setattr(live_route, "_served", False)
    monkeypatch.setattr(config, "_main_script_path", config._main_script_path)  # st.App sets it once
    module = runpy.run_path(str(app_path), run_name="app")  # what uvicorn's import runs: no page drawn
    paths = [r.path for r in module["app"]._user_routes]
    assert paths == [live_route.PREFIX + "{job_id}"]
    assert live_route.served()


def test_the_route_answers_the_progress_bar_and_the_metrics_as_the_fragments_drew_them(route) -> None:
    from mnist_core import report
    from ui.shared import job_metric_values

    job = FakeJob("job-5", [step(i, loss=0.123456, acc=0.875) for i in range(1, 5)] + [epoch_end(1, 0.9)])
    job.add(step(9, loss=0.5, acc=0.75))
    route.expose(job)
    status = get(route.url("job-5"), "from=0")[1]["status"]
    snap = job.snapshot()
    fraction, text = report.progress_line(snap)
    assert (status["fraction"], status["text"]) == (fraction, text)
    assert text.startswith("Epoch 2/2 · step 9 of 16 in all · ")  # what st.progress showed
    assert status["metrics"] == [list(m) for m in job_metric_values(snap)]
    labels = [m[0] for m in status["metrics"]]
    assert labels == ["Loss", "Train accuracy", "Validation accuracy", "Images / s", "Learning rate"]
    assert status["metrics"][0][1] == "0.5000" and status["metrics"][2][1] == "90.0%"  # last step, last epoch
    assert status["state"] == "running"


def test_the_route_answers_what_else_the_page_shows_of_the_jobs(route) -> None:
    shown = ["one running"]
    route.expose(FakeJob("job-6", [step(1)]), page=lambda: shown[0])
    assert get(route.url("job-6"), "from=0")[1]["page"] == "one running"
    shown[0] = "one running, one queued"  # e.g. another tab queued a run: the element asks for a rerun
    assert get(route.url("job-6"), "from=1")[1]["page"] == "one running, one queued"


def layer_step(i: int) -> ProgressEvent:
    layers = [
        {"name": "layer 1 (784→16)", "grad_norm": 0.5, "update_ratio": 1e-3, "dead_share": 0.25},
        {"name": "output (16→10)", "grad_norm": 0.25, "update_ratio": 2e-3},
    ]
    return replace(step(i), layers=layers)


def test_the_layers_view_answers_its_panels_with_the_first_statistics_then_only_new_rows(route) -> None:
    job = FakeJob("job-8", [step(1)])  # no per-layer statistics yet
    route.expose(job)
    url = route.url("job-8", view="layers")
    assert url == "_live/job-8?view=layers"
    body = get(route.url("job-8"), "from=0&view=layers")[1]
    assert (body["n"], body["rows"], "panels" in body) == (0, [], False)  # nothing to mount yet

    job.add(layer_step(2), step(3), layer_step(4))
    body = get(route.url("job-8"), "from=0&view=layers")[1]
    titles = [p["title"] for p in body["panels"]]
    assert titles == ["Gradient norm", "Update / weight", "Dead ReLU units"]
    assert body["n"] == 4 and [len(r) for r in body["rows"]] == [2, 2, 2]  # the two points with statistics

    job.add(layer_step(5))
    later = get(route.url("job-8"), "from=4&view=layers")[1]
    assert (later["from"], later["n"], "panels" in later) == (4, 5, False)
    assert [len(r) for r in later["rows"]] == [1, 1, 1]

    status, body = get(route.url("job-8"), "from=0&view=pie")
    assert status == 400 and "view must be one of curves, layers" in body["error"]


def test_the_route_lives_under_the_base_url_path_and_pages_hand_out_a_relative_url(
    route, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(route, "_served", False)  # routes() sets it: put back after (the AppTests after this)
    assert route.route_path(None) == route.route_path("") == "/_live/{job_id}"
    assert route.route_path("lab") == route.route_path("/lab/") == "/lab/_live/{job_id}"
    assert route.route_path("a/b") == "/a/b/_live/{job_id}"
    assert route.url("job-3") == "_live/job-3"  # the element resolves it against the app's base URL
    assert [r.path for r in route.routes("lab")] == ["/lab/_live/{job_id}"]


def test_under_a_base_url_path_app_py_mounts_the_route_there(
    app_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit import config

    from ui import live_route

    monkeypatch.setattr(live_route, "_served", False)
    monkeypatch.setattr(config, "_main_script_path", config._main_script_path)
    config.set_option("server.baseUrlPath", "lab")  # as `streamlit run app.py --server.baseUrlPath lab`
    try:
        module = runpy.run_path(str(app_path), run_name="app")
    finally:
        config.set_option("server.baseUrlPath", "")
    assert [r.path for r in module["app"]._user_routes] == ["/lab/_live/{job_id}"]
