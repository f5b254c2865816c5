"""A 1024-px laptop screen with the sidebar open: nothing a user needs is cut off.

``st.columns`` share the width equally whatever they hold. At this width the
Draw page's 280-px canvas was clipped by its column (its right third and its
toolbar hidden); rows of metrics cut their labels and values short ("40…");
buttons, checkboxes and filters in narrow columns cut their labels. The
canvas now sits in a row that wraps, at its own width; metrics go in
``ui.shared.metric_row``, which wraps too; buttons sit in rows that wrap.
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

# Text the page cuts short with an ellipsis: wider than its box (the table's cells aside: they scroll).
CUT_SHORT = """els => els.filter(e => getComputedStyle(e).textOverflow === 'ellipsis' && e.innerText
                         && e.scrollWidth > e.clientWidth + 1).map(e => e.innerText.slice(0, 60))"""

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


def cut_short(page: Page) -> list[str]:
    return page.locator('[data-testid="stMain"] *').evaluate_all(CUT_SHORT)


@pytest.fixture
def tiny_run(runs_dir: Path, synthetic_data_dir: Path) -> runs.RunInfo:
    from mnist_core.pipeline import run_training

    cfg = RunConfig(hidden=(16,), epochs=1, batch_size=100)
    return run_training(cfg, runs_dir=runs_dir, data_root=synthetic_data_dir, name="tiny mlp")


def test_the_train_and_runs_pages_cut_nothing_short(tiny_run: runs.RunInfo, page: Page, server: str) -> None:
    page.set_viewport_size(LAPTOP)
    page.goto(f"{server}/train")
    page.get_by_role("button", name="Start training").wait_for()
    page.get_by_test_id("stMetric").filter(has_text="Parameters").wait_for()  # the cost preview
    page.get_by_role("button", name="Show").wait_for()  # the recent runs
    assert page.get_by_test_id("stMetric").count() >= 6
    assert cut_short(page) == []
    page.goto(f"{server}/runs")
    page.get_by_role("button", name="Select the 1 shown").wait_for()
    page.get_by_role("button", name="Download the table (CSV)").wait_for()
    assert cut_short(page) == []


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
    assert cut_short(page) == []
    draw.no_exception()


def test_a_phone_finds_the_quick_model_on_the_first_screen(blank_page: Page, server: str) -> None:
    """On a 390-px phone the button a first visit needs was 1.2 screens down, under the study."""
    phone = {"width": 390, "height": 844}
    blank_page.set_viewport_size(phone)
    blank_page.goto(server)
    button = blank_page.get_by_role("button", name="Train a quick default model")
    button.wait_for()
    box = button.bounding_box()
    assert box is not None and box["y"] + box["height"] <= phone["height"], box
    assert cut_short(blank_page) == []


def test_on_a_phone_a_bad_setting_is_named_right_under_its_field(blank_page: Page, server: str) -> None:
    """5000 epochs: the message was under all three stacked columns, a screen below the field."""
    phone = {"width": 390, "height": 844}
    blank_page.set_viewport_size(phone)
    blank_page.goto(f"{server}/train")
    field = blank_page.get_by_role("spinbutton", name="Epochs")
    field.fill("5000")
    field.press("Enter")
    message = blank_page.get_by_test_id("stAlert").filter(has_text="epochs: 5000 is out of range [1, 1000]")
    message.wait_for()
    below = blank_page.get_by_text("Learning rate (log scale)")
    field_box, message_box, next_box = field.bounding_box(), message.bounding_box(), below.bounding_box()
    assert field_box and message_box and next_box
    # Between the field and the next control, and near enough to be on the screen with the field.
    assert field_box["y"] < message_box["y"] < next_box["y"], (field_box, message_box, next_box)
    assert message_box["y"] + message_box["height"] - field_box["y"] < phone["height"] / 2
    assert blank_page.get_by_role("button", name="Start training").is_disabled()
    blank_page.get_by_text("Start is off until the setting named in red is changed.").wait_for()
    assert cut_short(blank_page) == []
