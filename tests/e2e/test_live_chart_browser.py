"""The Train page's live chart in a real Chromium: redraws update it in place and keep the user's zoom."""

from __future__ import annotations

import math

import pytest
from playwright.sync_api import Page
from train_helpers import drag_zoom, start_small_mlp

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EPOCHS = 40  # MLP 784-16-10 at batch 4: long enough for several redraws after the zoom
# The loss panel's uPlot instance (ui/live_chart_assets/live_chart.js keeps it on its panel box).
STATE = """() => {
    const root = document.querySelector(".mnist-live-chart");
    const box = root && root.querySelector(".mnist-live-panel");
    const u = box && box.uplot;
    if (!u || !u.data[0].length) return null;
    const xs = u.data[0];
    return {mark: root.__testMark || null, redraws: Number(root.dataset.redraws), points: xs.length,
            received: Number(root.dataset.received), last: xs[xs.length - 1],
            min: u.scales.x.min, max: u.scales.x.max};
}"""


# The y values at which each log panel draws a grid line, once each has drawn its axes.
LOG_TICKS = """() => {
    const logs = Array.from(document.querySelectorAll(".mnist-live-panel"))
        .map(box => box.uplot).filter(u => u && u.scales.y.distr === 3);
    const drawn = logs.map(u => u.axes[1].grid.filter(u, u.axes[1]._splits || [], 1, 0, 0)
        .filter(v => v != null));
    return logs.length >= 2 && drawn.every(t => t.length) && drawn;
}"""


def state(page: Page) -> dict:
    return page.evaluate(STATE)


def wait_state(page: Page, condition: str, arg: object = None, timeout: float = 60_000) -> dict:
    """Wait until ``condition(state, arg)`` holds in the page; return that state."""
    handle = page.wait_for_function(
        f"arg => {{ const s = ({STATE})(); return s && ({condition})(s, arg) && s; }}",
        arg=arg,
        timeout=timeout,
    )
    return handle.json_value()


def start_small_run(page: Page) -> None:
    """Train MLP 784-16-10 at batch 4 from the Train page: many redraws, each with a few new points."""
    start_small_mlp(page, 4, EPOCHS)


def test_live_chart_keeps_its_node_and_the_users_zoom_while_points_are_appended(page: Page) -> None:
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/_live/" in r.url else None)
    start_small_run(page)

    first = wait_state(page, "s => s.points >= 4 && s.last > 0")
    assert any("from=0" in u for u in polls), "the chart fetches its points itself (ui/live_route.py)"
    page.get_by_text("Gradient norm").first.wait_for()  # the per-layer statistics beside the loss
    # Their log axes draw a line a decade: a line at every 2, 3 ... 9 hid the curves behind a comb.
    for lines in page.wait_for_function(LOG_TICKS).json_value():
        mantissas = [round(v / 10 ** math.floor(math.log10(v) + 1e-9), 6) for v in lines]
        decades = mantissas.count(1)
        assert set(mantissas) <= ({1} if decades >= 2 else {1, 2, 5}), lines  # within two decades: 1, 2, 5
    page.evaluate("() => { document.querySelector('.mnist-live-chart').__testMark = 'same node'; }")

    # A user's drag-zoom over the middle of the loss chart; a redraw arrives while the button is held.
    received = "() => Number(document.querySelector('.mnist-live-chart').dataset.received || 0)"
    over = drag_zoom(
        page, 1600, lambda: page.wait_for_function(f"n => ({received})() > n", arg=page.evaluate(received))
    )
    zoomed = wait_state(page, "(s, last) => s.max < last * 0.9", arg=first["last"], timeout=30_000)
    assert zoomed["mark"] == "same node"

    # Three redraws later, with more points: same DOM node, same x range.
    later = wait_state(
        page, "(s, z) => s.redraws >= z.redraws + 3 && s.points > z.points", arg=zoomed, timeout=60_000
    )
    assert page.get_by_text("Training now").is_visible(), "the chart moved while the run trained"
    assert later["mark"] == "same node", "a redraw replaced the chart's DOM node"
    assert (later["min"], later["max"]) == pytest.approx((zoomed["min"], zoomed["max"]))
    assert later["last"] > zoomed["max"], "the new points lie beyond the zoomed range, which stays"

    # A double-click resets the zoom; from then on the x axis follows the data again.
    over.dblclick()
    reset = wait_state(page, "(s, r) => s.redraws >= r + 2", arg=later["redraws"], timeout=60_000)
    assert reset["mark"] == "same node"
    assert reset["max"] == pytest.approx(reset["last"], rel=1e-6)

    # Hovering shows the epoch, the step and the value.
    box = over.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + box["height"] / 2)
    legend = page.locator(".mnist-live-chart .mnist-live-panel").first.locator(".u-legend")
    assert "step" in legend.inner_text() and "epoch" in legend.inner_text()

    # "Pause chart" freezes the view while points keep arriving; unpausing draws them.
    page.get_by_text("Pause chart").first.click()
    paused = wait_state(page, "s => s.redraws >= 0")
    frozen = wait_state(page, "(s, p) => s.received >= p.received + 2", arg=paused, timeout=60_000)
    assert (frozen["redraws"], frozen["points"]) == (paused["redraws"], paused["points"])
    page.get_by_text("Pause chart").first.click()
    wait_state(page, "(s, p) => s.redraws > p.redraws && s.points > p.points", arg=frozen, timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_a_live_chart_opened_again_gets_the_whole_history_then_only_new_points(page: Page) -> None:
    # Its element was sent part of the history before the page was left: the new element asks
    # for the rest (trigger "need") instead of drawing only what came after.
    start_small_run(page)
    before = wait_state(page, "s => s.points >= 6")
    nav = page.get_by_test_id("stSidebarNav")
    nav.get_by_role("link", name="Home").click()
    page.locator(".mnist-live-chart").first.wait_for(state="detached")
    nav.get_by_role("link", name="Train").click()
    again = wait_state(page, "(s, b) => s.points >= b.points", arg=before, timeout=60_000)
    assert again["mark"] is None  # a new element...
    later = wait_state(page, "(s, a) => s.redraws >= a.redraws + 2 && s.points > a.points", arg=again)
    assert later["points"] > before["points"]  # ...with the whole curve, still growing
    assert page.locator('[data-testid="stException"]').count() == 0
