"""The JSON route a live chart polls (ui/live_route.py) and how app.py serves it (issue 22)."""

from __future__ import annotations

import json
import runpy
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
from test_live_chart import epoch_end, step

from mnist_core.train import ProgressEvent


@pytest.fixture(autouse=True)
def _ui_importable(app_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(app_path.parent))  # as the app finds ui/ beside app.py


@dataclass
class Snap:
    events: tuple[ProgressEvent, ...]
    active: bool = True


class FakeJob:
    """What the route reads of a job: its id and snapshots."""

    def __init__(self, job_id: str, events: list[ProgressEvent]) -> None:
        self.id, self.events, self.active = job_id, events, True

    def snapshot(self) -> Snap:
        return Snap(tuple(self.events), self.active)


def get(path: str, query: str = ""):
    """Call the route's handler as Starlette would for ``GET path?query``: (status, JSON body)."""
    from starlette.requests import Request

    from ui import live_route

    job_id = path.removeprefix(live_route.PREFIX)
    scope = {
        "type": "http", "method": "GET", "path": path, "query_string": query.encode(), "headers": [],
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

    job.events += [step(5, loss=0.25), step(6), step(7), step(8), epoch_end(1)]
    status, later = get(route.url("job-7"), "from=4")
    assert (status, later["from"], later["n"]) == (200, 4, 9)
    loss_rows = later["rows"][0]
    assert next(r[1] for r in loss_rows if r[1] is not None) == 0.25  # starts at the 5th point, not the 1st
    assert len(loss_rows) == 5  # 4 steps and the validation point, nothing the chart already has

    status, none_new = get(route.url("job-7"), "from=9")
    assert none_new["rows"] == [[], []]

    job.active = False
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
    assert get(route.url("job-1"), "from=0")[1] == {
        "from": 0,
        "n": 0,
        "rows": [[], []],
        "active": True,
        "per": None,
    }
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
