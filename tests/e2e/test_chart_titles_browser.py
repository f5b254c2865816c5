"""Chart titles that nothing covers, on a laptop and on a phone (issue 21, item 10).

The legends sat above the plot, beside the title, and Plotly's toolbar (the
modebar, shown on hover at the top right) sat on the title's row: on a
narrow screen both covered it. Titles now have a row of their own under the
modebar and legends go under the plot. Measured here in Chromium: the boxes
of every chart's title, legend and modebar on the Train and Runs pages.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page

from mnist_core import runs
from mnist_core.config import RunConfig

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Per chart: the rectangles of its titles (main and subplot titles), legend and modebar.
BOXES = """() => [...document.querySelectorAll('.js-plotly-plot')].map(plot => {
    const rect = el => { const r = el.getBoundingClientRect();
                         return [r.left, r.top, r.right, r.bottom]; };
    const all = sel => [...plot.querySelectorAll(sel)].filter(e => e.getBoundingClientRect().width > 0);
    return {
        titles: all('.gtitle, .g-gtitle text, .annotation-text').map(rect),
        texts: all('.gtitle, .g-gtitle text, .annotation-text').map(e => e.textContent),
        covers: all('.legend, .modebar-container .modebar').map(rect),
    };
})"""


def overlaps(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def covered_titles(page: Page) -> list[str]:
    """Titles whose box meets a legend's or the modebar's, with the chart they belong to."""
    bad = []
    for chart in page.evaluate(BOXES):
        for title, text in zip(chart["titles"], chart["texts"], strict=True):
            if any(overlaps(title, cover) for cover in chart["covers"]):
                bad.append(text)
    return bad


@pytest.fixture
def tiny_run(runs_dir: Path, synthetic_data_dir: Path) -> runs.RunInfo:
    from mnist_core.pipeline import run_training

    cfg = RunConfig(hidden=(16,), epochs=2, batch_size=100)
    return run_training(cfg, runs_dir=runs_dir, data_root=synthetic_data_dir, name="tiny mlp")


@pytest.mark.parametrize("width", [1280, 390])
def test_no_legend_or_toolbar_covers_a_chart_title(
    tiny_run: runs.RunInfo, page: Page, server: str, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(f"{server}/train")
    page.get_by_role("button", name="Show").first.click()
    page.locator(".js-plotly-plot .gtitle").first.wait_for()
    page.get_by_text("Confusion matrix (test set)").wait_for()
    page.locator(".js-plotly-plot").first.hover()  # the modebar shows on hover
    assert page.evaluate(BOXES), "no chart on the Train page"
    assert covered_titles(page) == []

    page.goto(f"{server}/runs")
    page.get_by_role("button", name="Download the table (CSV)").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    page.locator(".js-plotly-plot").first.hover()
    assert covered_titles(page) == []
    page.get_by_text("Accuracy vs cost", exact=True).first.click()
    page.get_by_text("up and to the left is better").wait_for()
    page.locator(".js-plotly-plot").first.hover()
    assert covered_titles(page) == []
