"""The Draw page in a real headless Chromium: digits drawn with mouse strokes on the real canvas.

A tiny model trained on the generated dataset reads two digits (one stroke,
then two), one is corrected, the page switches to the new version and reads
the drawing with it (still on the canvas), and Undo deletes the version (the
original reads the same drawing). The quality figures on the
real MNIST are checked in ``test_draw_quality_browser.py``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
from draw_helpers import DIGITS, DrawPage, box_of, overlap, photo, versions_of
from playwright.sync_api import Page
from test_narrow_browser import cut_short

from mnist_core import handwriting, online, runs
from mnist_core.config import RunConfig
from tests.support.synthetic import render_digit

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


# -- generated data, tiny model ----------------------------------------------------------


@pytest.fixture
def tiny_run(runs_dir: Path, synthetic_data_dir: Path) -> runs.RunInfo:
    from mnist_core.pipeline import run_training

    cfg = RunConfig(model="cnn", cnn_channels=(4, 8), hidden=(16,), epochs=3, batch_size=50, lr=3e-3)
    return run_training(cfg, runs_dir=runs_dir, data_root=synthetic_data_dir, name="tiny cnn")


def test_a_reload_keeps_the_model_the_user_picked(
    tiny_run: runs.RunInfo, page: Page, server: str, runs_dir: Path
) -> None:
    """A reload opened the best model again: the URL now names the one shown (?run=)."""
    from tests.support.saved import untrained_run

    other = untrained_run(runs_dir, RunConfig(hidden=(16,)), "an untrained mlp", test_accuracy=0.1)
    draw = DrawPage(page, server)
    draw.open()
    assert tiny_run.name in draw.selected_run()
    page.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name=re.compile("an untrained mlp")).click()
    draw.idle()
    page.wait_for_url(f"**/draw?run={other}")
    page.reload()
    page.get_by_role("heading", name="Draw").first.wait_for()
    draw.canvas.wait_for()
    draw.idle()
    assert "an untrained mlp" in draw.selected_run()
    draw.no_exception()


def test_draw_correct_and_undo(tiny_run: runs.RunInfo, page: Page, server: str, runs_dir: Path,
                               artifacts_dir: Path) -> None:  # fmt: skip
    draw = DrawPage(page, server)
    draw.open()
    assert tiny_run.name in draw.selected_run()
    page.get_by_text("Draw a digit on the canvas").wait_for()
    for digit in (7, 4):  # one stroke, then two strokes
        label, confidence = draw.draw(DIGITS[digit][0])
        assert 0 <= label <= 9 and 0 < confidence <= 1
        seen = page.get_by_text("What the model sees (28x28)")
        seen.first.wait_for()  # drawn just after the metrics, in the same script run
        assert seen.count() == 1
        draw.reset()
    draw.draw(DIGITS[2][0])
    drawn = draw.ink()
    assert drawn > 500, "the stroke is on the canvas"
    predicted = int(draw.metric("Prediction"))
    truth = (predicted + 1) % 10
    draw.teach(truth)
    draw.no_exception()
    [version] = versions_of(runs_dir, tiny_run.id)
    assert version.meta["kind"] == "correction" and version.meta["details"]["label"] == truth
    page.get_by_text(f"{version.name} reading your drawing (1 stroke)").wait_for()  # the new version reads it
    assert version.name in draw.selected_run()
    # The drawing the new version reads is still on the canvas (it was wiped, the prediction kept).
    assert draw.ink() == drawn
    page.screenshot(path=str(artifacts_dir / "draw-corrected.png"), full_page=True)
    page.get_by_role("button", name="Undo this correction").click()
    page.get_by_text("Undone").wait_for()
    assert versions_of(runs_dir, tiny_run.id) == []
    assert tiny_run.name in draw.selected_run()
    page.get_by_text(f"{tiny_run.name} reading your drawing (1 stroke)").wait_for()
    assert draw.ink() == drawn, "after Undo the original reads the same drawing, still on the canvas"
    draw.no_exception()


def test_all_models_and_the_settings_stay_as_set_across_uploads(
    tiny_run: runs.RunInfo, page: Page, server: str, tmp_path: Path
) -> None:
    """Issue 21.5: a new upload clears the old file first; the toggle, absent from that script run,
    came back off in the browser (on the 2nd to 4th upload, as the two runs raced) while the server
    still read it as on. The fine-tuning settings, drawn only beside a prediction, went back to
    their defaults the same way."""
    draw = DrawPage(page, server)
    draw.open()
    draw.upload(photo(tmp_path, 7, 1))
    assert not draw.all_models.is_checked()
    page.get_by_text("All models: read this drawing").click()
    table = page.get_by_role("tabpanel", name="Draw and predict").get_by_test_id("stDataFrame")
    table.wait_for()
    page.get_by_text("Fine-tuning settings").click()
    page.get_by_role("slider", name="At most this many steps").focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    steps = page.get_by_test_id("stSlider").filter(has_text="At most this many steps")
    set_to = str(online.CorrectionSettings().steps + 5)
    page.wait_for_function(
        "want => Array.from(document.querySelectorAll('[data-testid=\"stSliderThumbValue\"]'))"
        ".some(e => e.textContent === want)",
        arg=set_to,
    )
    draw.idle()
    for label, seed in ((3, 2), (2, 3), (5, 4), (0, 5), (8, 6)):
        draw.upload(photo(tmp_path, label, seed))
        assert draw.all_models.is_checked(), f"All models switched itself off at the upload of a {label}"
        table.wait_for()
        assert steps.get_by_test_id("stSliderThumbValue").text_content() == set_to
        draw.no_exception()


@pytest.mark.parametrize(
    "screen", [{"width": 1280, "height": 900}, {"width": 390, "height": 844}], ids=["laptop", "phone"]
)
def test_layout_nothing_overlaps_or_is_cut_and_the_prediction_is_by_the_canvas(
    tiny_run: runs.RunInfo, page: Page, server: str, screen: dict[str, int], artifacts_dir: Path
) -> None:
    """Issue 21.10: the canvas toolbar covered the stroke-width slider; the Delete buttons of My
    handwriting read "D…"; on a phone the prediction was below the fold after every stroke."""
    rng = np.random.default_rng(0)
    for label in (*range(10), 1, 7):
        handwriting.add(render_digit(label, rng).astype(np.float32) / 255.0, label)
    page.set_viewport_size(screen)
    draw = DrawPage(page, server)
    draw.open()
    toolbar = box_of(draw.show_toolbar())
    main = page.get_by_test_id("stMain")
    controls = [
        main.get_by_test_id(kind) for kind in ("stSlider", "stButton", "stButtonGroup", "stSelectbox")
    ]
    for control in controls:
        for shown in (c for c in control.all() if c.is_visible()):  # the other tab's are hidden
            assert not overlap(toolbar, box_of(shown)), f"the canvas toolbar covers {shown}"
    draw.draw(DIGITS[3][0])
    canvas = box_of(draw.canvas)
    value = box_of(
        page.get_by_test_id("stMetric").filter(has_text="Prediction").get_by_test_id("stMetricValue")
    )
    beside = value["x"] >= canvas["x"] + canvas["width"] and value["y"] < canvas["y"] + canvas["height"]
    under = 0 < value["y"] - (canvas["y"] + canvas["height"]) < 60
    assert beside or under, (canvas, value)
    assert value["y"] + value["height"] <= screen["height"], "the prediction is below the fold"
    assert cut_short(page) == []
    name = f"draw-{screen['width']}"
    page.screenshot(path=str(artifacts_dir / f"{name}.png"))
    page.get_by_role("tab", name="My handwriting").click()
    page.get_by_text("Accuracy on my handwriting").wait_for()
    draw.idle()
    delete = main.get_by_role("button", name="Delete")
    assert delete.count() == 12
    boxes = [box_of(delete.nth(i)) for i in range(12)]
    assert not any(overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert cut_short(page) == []
    page.screenshot(path=str(artifacts_dir / f"{name}-my-handwriting.png"), full_page=True)
    draw.no_exception()


def wait_until(condition, what: str, timeout_s: float = 30.0) -> None:
    """Poll ``condition`` (the canvas sits in a shadow root, out of ``wait_for_function``'s reach)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)


def go_to(page: Page, name: str) -> None:
    """The sidebar link to page ``name`` (the laptop layout: the sidebar is open)."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name, exact=True).click()
    page.get_by_role("heading", name=name).first.wait_for()


def test_a_first_hour_on_draw_keeps_the_model_the_drawing_and_one_answer_per_drawing(
    tiny_run: runs.RunInfo, page: Page, server: str, runs_dir: Path, tmp_path: Path
) -> None:
    """The seams a new user met: an answer picked for one drawing taught the next; a double click on
    Teach it saved two versions; Draw -> Runs -> Draw came back to the original model and a blank
    canvas; Draw -> Upload -> Draw erased the drawing."""
    draw = DrawPage(page, server)
    draw.open()
    draw.draw(DIGITS[2][0])
    drawn = draw.ink()
    truth = (int(draw.metric("Prediction")) + 1) % 10
    answers = page.get_by_test_id("stButtonGroup").filter(has_text="The right answer")
    answers.get_by_text(str(truth), exact=True).click()
    page.get_by_role("button", name=f"Teach it: this is {truth}").dblclick()
    page.get_by_text("Saved as a new version").wait_for(timeout=120_000)
    draw.idle()
    [version] = versions_of(runs_dir, tiny_run.id)
    assert len(handwriting.list_samples()) == 1
    teach = page.get_by_role("button", name="Teach it", exact=True)
    assert teach.is_disabled(), "taught: the answer is cleared"
    # Another page and back: the version still reads the same drawing, still on the canvas.
    go_to(page, "Runs")
    go_to(page, "Draw")
    draw.canvas.wait_for()
    page.get_by_text(f"{version.name} reading your drawing (1 stroke)").wait_for()
    assert version.name in draw.selected_run()
    wait_until(lambda: draw.ink() == drawn, "the drawing is drawn again on the new canvas")
    # Upload and back to Draw: the drawing again.
    draw.upload(photo(tmp_path, 7, 1))
    page.get_by_test_id("stButtonGroup").filter(has_text="Input").get_by_text("Draw").click()
    page.get_by_text(f"{version.name} reading your drawing (1 stroke)").wait_for()
    draw.idle()
    # An answer picked for one drawing is not kept for the next.
    answers.get_by_text(str((truth + 1) % 10), exact=True).click()
    page.get_by_role("button", name=f"Teach it: this is {(truth + 1) % 10}").wait_for()
    page.get_by_text("Your drawing from before, drawn again").wait_for()
    page.get_by_role("button", name="Clear", exact=True).click()  # the toolbar's reset goes back to it
    page.get_by_test_id("stMetric").filter(has_text="Prediction").wait_for(state="detached")
    draw.idle()  # until the old canvas, stale beside the new one, is gone
    assert draw.ink() == 0, "Clear: a clean canvas"
    draw.draw(DIGITS[7][0])
    draw.idle()
    assert teach.is_disabled()
    assert versions_of(runs_dir, tiny_run.id) == [version]
    draw.no_exception()
