"""A 1024-px laptop screen with the sidebar open: nothing a user needs is cut off.

``st.columns`` share the width equally whatever they hold. At this width the
Draw page's 280-px canvas was clipped by its column (its right third and its
toolbar hidden), and rows of metrics cut their labels and values short
("40…"). The canvas now sits in a row that wraps, at its own width, and
metrics go in ``ui.shared.metric_row``, which wraps too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from draw_helpers import DIGITS, DrawPage
from playwright.sync_api import Page

from mnist_core import runs
from mnist_core.config import RunConfig

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LAPTOP = {"width": 1024, "height": 900}

# Elements inside a metric whose text is wider than their box: cut short with an ellipsis.
CUT_SHORT = """els => els.filter(e => e.scrollWidth > e.clientWidth + 1)
                         .map(e => e.closest('[data-testid="stMetric"]').innerText.replace(/\\n/g, ' '))"""

# The part of an element's box that its clipping ancestors leave visible (shadow roots crossed).
VISIBLE_WIDTH = """el => {
    const box = el.getBoundingClientRect();
    let left = box.left, right = box.right;
    for (let node = el.parentNode; node; node = node.parentNode || node.host) {
        if (!(node instanceof Element)) continue;
        const style = getComputedStyle(node);
        if (style.overflowX !== 'visible') {
            const clip = node.getBoundingClientRect();
            left = Math.max(left, clip.left);
            right = Math.min(right, clip.right);
        }
    }
    return {width: box.width, visible: Math.max(0, right - left)};
}"""


def cut_short_metrics(page: Page) -> list[str]:
    return page.locator('[data-testid="stMetric"] *').evaluate_all(CUT_SHORT)


@pytest.fixture
def tiny_run(runs_dir: Path, synthetic_data_dir: Path) -> runs.RunInfo:
    from mnist_core.pipeline import run_training

    cfg = RunConfig(hidden=(16,), epochs=1, batch_size=100)
    return run_training(cfg, runs_dir=runs_dir, data_root=synthetic_data_dir, name="tiny mlp")


def test_the_train_pages_cost_preview_is_not_cut_short(page: Page, server: str) -> None:
    page.set_viewport_size(LAPTOP)
    page.goto(f"{server}/train")
    page.get_by_role("button", name="Start training").wait_for()
    page.get_by_test_id("stMetric").filter(has_text="Parameters").wait_for()
    assert page.get_by_test_id("stMetric").count() >= 6
    assert cut_short_metrics(page) == []


def test_the_whole_canvas_and_the_prediction_show(tiny_run: runs.RunInfo, page: Page, server: str) -> None:
    page.set_viewport_size(LAPTOP)
    draw = DrawPage(page, server)
    draw.open()
    canvas = draw.canvas.evaluate(VISIBLE_WIDTH)
    assert canvas["width"] == 280 and canvas["visible"] == pytest.approx(280, abs=1), canvas
    reset = page.get_by_label("Reset canvas & history").first.evaluate(VISIBLE_WIDTH)
    assert reset["visible"] > 0, "the canvas toolbar is hidden"
    label, _ = draw.draw(DIGITS[3][0])
    assert 0 <= label <= 9
    assert cut_short_metrics(page) == []
    draw.no_exception()
