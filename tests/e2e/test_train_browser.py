"""The Train page in a real Chromium: train a tiny model, watch the live chart move, see it completed."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page
from train_helpers import start_training

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TARGET_TRAINING_S = 6  # long enough to watch the chart move, short enough for the suite
# Points of the live loss chart and its last running-loss value (the uPlot instance that
# ui/live_chart_assets/live_chart.js keeps on the panel's box).
CHART_STATE = """() => {
    const box = document.querySelector(".mnist-live-chart .mnist-live-panel");
    const u = box && box.uplot;
    return u && u.data[0].length ? [u.data[0].length, u.data[1][u.data[1].length - 1]] : null;
}"""


def slider(page: Page, label: str) -> Locator:
    return page.get_by_role("slider", name=label)


def epochs_for(page: Page, target_s: float) -> int:
    """Epochs that should train for about ``target_s``, from the page's own estimate per epoch."""
    text = page.get_by_test_id("stMetric").filter(has_text="Per epoch (est.)").inner_text()
    match = re.search(r"([\d.]+) s\s*$", text)
    per_epoch = float(match.group(1)) if match else 0.3
    return min(80, max(10, math.ceil(target_s / max(per_epoch, 1e-3))))


def test_train_a_tiny_model_and_watch_it_learn(page: Page, artifacts_dir: Path) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Train").click()
    page.get_by_role("button", name="Start training").wait_for()

    # MLP 784-16-10 at batch 4: 225 steps per epoch on the generated data.
    slider(page, "Width (units per layer)").focus()
    page.keyboard.press("Home")
    page.get_by_text("MLP 784-16-10 bs64").first.wait_for()
    slider(page, "Batch size").focus()
    for _ in range(4):  # 64 -> 32 -> 16 -> 8 -> 4
        page.keyboard.press("ArrowLeft")
    page.get_by_text("MLP 784-16-10 bs4").first.wait_for()
    epochs = epochs_for(page, TARGET_TRAINING_S)
    # Too many epochs: the field kept the old value without a word, and Start trained it.
    field = page.get_by_role("spinbutton", name="Epochs")
    field.fill("5000")
    field.press("Enter")
    page.get_by_test_id("stAlert").filter(has_text="epochs: 5000 is out of range [1, 1000]").wait_for()
    assert page.get_by_role("button", name="Start training").is_disabled()
    start_training(page, epochs)
    page.locator(".mnist-live-chart").first.wait_for(timeout=60_000)
    before = page.wait_for_function(f"() => {{ const s = ({CHART_STATE})(); return s && s[0] >= 2 && s; }}")
    before = before.json_value()
    progress = page.get_by_test_id("stProgress").first
    progress_before = progress.inner_text()
    grew = f"old => {{ const s = ({CHART_STATE})(); return s && s[0] > old[0] && s; }}"
    after = page.wait_for_function(grew, arg=before, timeout=30_000)
    assert page.get_by_text("Training now").is_visible(), "the chart moved while the run was training"
    assert after.json_value()[0] > before[0]
    page.wait_for_function(  # the progress bar moves too (its redraw may land just before or after)
        "old => { const el = document.querySelector('[data-testid=\"stProgress\"]'); "
        "return el && el.innerText !== old; }",
        arg=progress_before,
        timeout=30_000,
    )
    page.set_viewport_size({"width": 1280, "height": 2200})
    page.screenshot(path=str(artifacts_dir / "train-live.png"))

    page.get_by_role("heading", name=re.compile(r"^Result: ")).wait_for(timeout=120_000)
    page.get_by_text("Training now").wait_for(state="detached")
    assert page.locator('[data-testid="stException"]').count() == 0
    row = page.get_by_test_id("stHorizontalBlock").filter(has_text="MLP 784-16-10 bs4").last
    assert "completed" in row.inner_text()
    assert page.get_by_test_id("stMetric").filter(has_text="Test accuracy").inner_text().strip().endswith("%")
    page.get_by_role("link", name="Draw a digit for this model").wait_for()
    page.screenshot(path=str(artifacts_dir / "train-done.png"))
