"""A running job's whole live view streams from the route, with no Streamlit rerun (issue 22).

While a run trains on the Train page, its progress bar, metrics and chart are
drawn by one element that polls ``GET <base>/_live/<job>`` (``ui/live_route.py``):
the bar and metrics advance, and the chart gains points and keeps the user's
zoom on the same DOM node, while the Streamlit websocket carries no message
either way (no fragment rerun, no rerun request). When the run ends the
element asks for one rerun and the result appears without the user doing
anything. The same under ``server.baseUrlPath``, where the route lives under
the base path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from app_server import AppDidNotStart, running_app
from playwright.sync_api import Page, WebSocket
from train_helpers import drag_zoom, start_small_mlp

from tests.support.browser import choose, chromium, go_to, idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EPOCHS = 60  # MLP 784-16-10 at batch 4 on the generated data: 13,500 steps, ~10-30 s here
# The live view's status and its loss panel (live_chart.js marks them; the uPlot instance is on its box).
STATE = """() => {
    const status = document.querySelector(".mnist-live-status");
    const root = document.querySelector(".mnist-live-chart");
    const box = root && root.querySelector(".mnist-live-panel");
    const u = box && box.uplot;
    if (!status || !u || !u.data[0].length) return null;
    const xs = u.data[0];
    const values = [...status.querySelectorAll('[data-testid="stMetricValue"]')].map(e => e.textContent);
    return {statusMark: status.__testMark || null, chartMark: root.__testMark || null,
            updates: Number(status.dataset.updates), text: status.querySelector("p").textContent,
            width: status.querySelector(".mnist-live-fill").style.width, metrics: values,
            redraws: Number(root.dataset.redraws), points: xs.length, last: xs[xs.length - 1],
            min: u.scales.x.min, max: u.scales.x.max};
}"""


class Frames:
    """The Streamlit websocket's messages, both ways (a fragment rerun or a rerun request is one)."""

    def __init__(self, page: Page) -> None:
        self.received = self.sent = 0
        page.on("websocket", self._watch)

    def _watch(self, ws: WebSocket) -> None:
        if "_stcore/stream" not in ws.url:
            return
        ws.on("framereceived", lambda _payload: self._count("received"))
        ws.on("framesent", lambda _payload: self._count("sent"))

    def _count(self, way: str) -> None:
        setattr(self, way, getattr(self, way) + 1)

    def now(self) -> tuple[int, int]:
        return self.received, self.sent


def wait_state(page: Page, condition: str, arg: object = None, timeout: float = 60_000) -> dict:
    check = f"arg => {{ const s = ({STATE})(); return s && ({condition})(s, arg) && s; }}"
    handle = page.wait_for_function(check, arg=arg, timeout=timeout)
    return handle.json_value()


def watch_a_run_to_its_end(page: Page, app_url: str, route: str) -> None:
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/_live/" in r.url else None)
    frames = Frames(page)  # before the page opens its websocket
    page.goto(app_url)
    start_small_mlp(page, 4, EPOCHS)
    assert frames.received > 0, "the websocket is watched"

    first = wait_state(page, "s => s.points >= 4 && s.updates >= 2 && s.metrics.length === 5")
    idle(page)  # the one rerun its first answer asked for (the run's folder got its id) is over
    assert polls and all(u.startswith(route) for u in polls), f"fetched from {route}? {polls[:3]}"
    page.evaluate("""() => { document.querySelector('.mnist-live-status').__testMark = 'status';
                             document.querySelector('.mnist-live-chart').__testMark = 'chart'; }""")
    drag_zoom(page)
    zoomed = wait_state(page, "(s, last) => s.max < last * 0.9", arg=first["last"], timeout=30_000)
    quiet_from = frames.now()

    # Three chart redraws later: the bar and the metrics moved on, the chart grew, and not one message
    # went over Streamlit's websocket (no fragment rerun, no rerun request).
    later = wait_state(
        page,
        "(s, z) => s.redraws >= z.redraws + 3 && s.points > z.points && s.updates >= z.updates + 3"
        " && s.text !== z.text",
        arg=zoomed,
        timeout=60_000,
    )
    assert frames.now() == quiet_from, f"websocket messages while it trained: {quiet_from} -> {frames.now()}"
    assert page.get_by_text("Training now").is_visible(), "the run ended before the checks"
    assert (later["statusMark"], later["chartMark"]) == ("status", "chart"), "a DOM node was replaced"
    assert (later["min"], later["max"]) == pytest.approx((zoomed["min"], zoomed["max"])), "the zoom was lost"
    assert re.match(r"Epoch \d+/60 · step [\d,]+ of [\d,]+ in all · ", later["text"]), later["text"]
    assert later["width"] != "" and later["metrics"][0] != "—"
    assert page.get_by_test_id("stMetric").filter(has_text="Validation accuracy").count() == 1

    # The end: the element asks for one rerun, and the result shows with nobody touching the page.
    page.get_by_role("heading", name=re.compile(r"^Result: ")).wait_for(timeout=180_000)
    page.get_by_text("Training now").wait_for(state="detached")
    assert frames.sent >= quiet_from[1] + 1, "the rerun request went over the websocket"
    assert page.locator('[data-testid="stException"]').count() == 0


def test_the_live_view_streams_without_reruns_and_the_result_appears_at_the_end(
    server: str, blank_page: Page
) -> None:
    watch_a_run_to_its_end(blank_page, server, f"{server}/_live/job-")


@pytest.fixture
def lab_app(tmp_path: Path, runs_dir: Path, synthetic_data_dir: Path) -> Iterator[tuple[str, Page]]:
    """The app served under ``--server.baseUrlPath lab``: its URL, and a tab that has not opened it yet."""
    with ExitStack() as stack:
        try:
            options = ("--server.baseUrlPath", "lab")
            app = running_app(runs_dir, synthetic_data_dir, tmp_path / "lab.log", *options)
            url, _ = stack.enter_context(app)
        except AppDidNotStart as exc:
            pytest.fail(str(exc))
        browser = stack.enter_context(chromium())
        page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
        page.set_default_timeout(60_000)
        yield url, page


def test_under_a_base_url_path_the_live_view_fetches_from_the_route_there(lab_app: tuple[str, Page]) -> None:
    url, page = lab_app
    watch_a_run_to_its_end(page, f"{url}/lab/", f"{url}/lab/_live/job-")


ASKED = "() => (window.__mnistLiveAsks || []).filter(a => a.why === 'ended').map(a => a.run)"
POLLED = "() => performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('/_live/'))"


def test_a_sweeps_running_run_streams_and_its_end_brings_the_next_runs_chart(page: Page) -> None:
    """The Sweeps page: its running run's chart polls the route; when that run ends the element asks
    for a rerun of the rows, which then show the next run's chart, polling too."""
    page.get_by_role("heading", name="MNIST Lab").first.wait_for()
    idle(page)
    go_to(page, "Sweeps")
    page.get_by_role("tab", name="Grid sweep").click()
    idle(page)
    epochs = page.get_by_label("Epochs per run")
    epochs.fill("20")  # MLP 784-16-10 and 784-16-16-10 at batch 4: 5,000 steps each, seconds
    epochs.press("Enter")
    idle(page)
    choose(page, "Widths (units per layer)", ["16"])
    choose(page, "Batch sizes", ["4"])
    page.get_by_role("button", name="Start the sweep (2 runs)").click()
    page.get_by_text("Queued 2 runs of").wait_for()

    page.wait_for_function(f"() => ({ASKED})().length > 0", timeout=240_000)
    ended = page.evaluate(ASKED)[0]
    assert any(f"/_live/{ended}?" in u for u in page.evaluate(POLLED)), "the first run's chart polled"
    # The rows rerun: the next run's chart polls the route in its turn.
    page.wait_for_function(
        f"run => ({POLLED})().some(n => !n.includes(run))", arg=f"/_live/{ended}?", timeout=60_000
    )
    assert page.locator('[data-testid="stException"]').count() == 0
