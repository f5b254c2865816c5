"""A live chart whose first redraw holds ONE point still follows the data afterwards (issue 22).

Found walking the Home page under load: when the first answer the quick
model's chart got had a single point, uPlot padded the x range around it
([0, 0.0143]); its setScale hook, which runs after the redraw, took that range
for a user's zoom, so the chart kept it and stayed empty while the run went on.
The chart's own code (uPlot + ``live_chart.js``, as the element evaluates it)
runs here in a blank Chromium page, fed as the app feeds it.
"""

from __future__ import annotations

import pytest

from mnist_core.train import ProgressEvent
from tests.support.browser import chromium
from ui.live_chart import learning_curve_view, library, payload

pytestmark = [pytest.mark.e2e]

# Feed one redraw (data as ui.live_chart.payload makes it), let uPlot's queued drawing run, then read
# the loss panel: its points, x scale and whether the chart thinks the user zoomed.
FEED = """async (data) => {
    const parent = document.getElementById("chart");
    window.mnistLiveChart.render({parentElement: parent, data, setTriggerValue: () => {}});
    await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    const u = parent.querySelector(".mnist-live-panel").uplot;
    const xs = u.data[0];
    return {points: xs.length, first: xs[0], last: xs[xs.length - 1],
            min: u.scales.x.min, max: u.scales.x.max, zoomed: !!u._mnistZoomed};
}"""


def points(n: int) -> list[ProgressEvent]:
    """``n`` progress points of a one-epoch run of 100 steps, its loss falling."""
    return [
        ProgressEvent(
            kind="step", epoch=1, epochs=1, step=5 * (i + 1), total_steps=100, samples=320 * (i + 1),
            loss=2.0 / (i + 1), train_acc=0.5 + i / (2 * n), lr=1e-3, elapsed_s=0.1 * (i + 1),
            samples_per_s=3200.0, eta_s=1.0,
        )
        for i in range(n)
    ]


def test_a_chart_that_starts_with_one_point_follows_the_points_that_come_after() -> None:
    code, css = library()
    view = learning_curve_view()
    history = points(12)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        page.set_content(f'<html><head><style>{css}</style></head><body><div id="chart"></div></body></html>')
        page.add_script_tag(content=code + "\nwindow.mnistLiveChart = mnistLiveChart;")
        first, sent = payload(None, "run-1", view, tuple(history[:1]))
        one = page.evaluate(FEED, first)
        assert one["points"] == 1
        for n in (4, 8, 12):  # three redraws, each with only the new points
            data, sent = payload(sent, "run-1", view, tuple(history[:n]))
            assert "spec" not in data and data["from"] == max(1, n - 4)
            now = page.evaluate(FEED, data)
        assert now["points"] == 12 and not now["zoomed"], now
        # Not zoomed: the x axis spans the data the run has sent, from its first point to its last.
        assert now["min"] == pytest.approx(now["first"]) and now["max"] == pytest.approx(now["last"]), now
