"""Inside views in a real headless Chromium: the Runs page's for two runs, the Draw page's for a drawing."""

from __future__ import annotations

from pathlib import Path

import pytest
from draw_helpers import DIGITS, DrawPage
from playwright.sync_api import Page

from mnist_core import runs
from mnist_core.config import RunConfig
from tests.support.fakeruns import make_fake_runs
from tests.support.saved import untrained_run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Chart titles of every Plotly chart on the page, read from the charts themselves.
TITLES = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
    .map(plot => (((plot.layout || {}).title || {}).text || '').replace(/<[^>]*>/g, ''))"""  # bold tags off
# Weight mosaics that the browser decoded (a broken image has naturalWidth 0).
PICTURES = """() => Array.from(document.querySelectorAll('[data-testid="stImage"] img'))
    .filter(img => img.complete && img.naturalWidth > 0).length"""


@pytest.fixture
def two_runs(runs_dir: Path) -> list[runs.RunInfo]:
    """Two completed generated runs with weights, written before the server lists them."""
    make_fake_runs(runs_dir, 2, seed=3, n_test=200, weights=True, max_width=64)
    infos = runs.list_runs(runs_dir)
    assert [i.status for i in infos] == ["completed", "completed"]
    return infos


def test_inside_shows_both_runs_weights_and_histograms(
    two_runs: list[runs.RunInfo], page: Page, artifacts_dir: Path
) -> None:
    page.get_by_role("heading", name="MNIST Lab").first.wait_for()
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Runs", exact=True).click()
    page.get_by_role("heading", name="Runs").first.wait_for()
    page.get_by_test_id("stButtonGroup").get_by_text("Inside", exact=True).click()  # both runs preselected
    images = page.locator('[data-testid="stImage"] img')
    try:
        images.nth(1).wait_for()
        for k in range(2):  # the browser loads an image only once it is near the view
            images.nth(k).scroll_into_view_if_needed()
        page.wait_for_function(f"() => ({PICTURES})() === 2")
        page.wait_for_function(
            f"() => ({TITLES})().filter(t => t === 'Weights per layer').length === 2"
            f" && ({TITLES})().includes('Dead or saturated units per layer')"
            f" && ({TITLES})().includes('Accuracy of a linear readout of each layer')"
        )
    except Exception:
        print("titles", page.evaluate(TITLES), "pictures", page.evaluate(PICTURES), images.count())
        page.screenshot(path=str(artifacts_dir / "runs-inside-failed.png"), full_page=True)
        raise
    titles = page.evaluate(TITLES)
    assert titles.count("Outputs on 200 test images") == 2, titles
    assert page.locator('[data-testid="stException"]').count() == 0
    page.set_viewport_size({"width": 1400, "height": 1900})
    page.screenshot(path=str(artifacts_dir / "runs-inside.png"))


LAYER_VIEW = "Inside the network: this drawing, layer by layer"
# Pictures decoded inside expanders (the Draw page's other expander holds none).
EXPANDER_PICTURES = """() => Array.from(
    document.querySelectorAll('[data-testid="stExpander"] [data-testid="stImage"] img')
).filter(img => img.complete && img.naturalWidth > 0).length"""


def test_draw_page_layer_view_of_a_drawing(
    runs_dir: Path, page: Page, server: str, artifacts_dir: Path
) -> None:
    """A drawing on the Draw page, then its layer view: each layer's picture, the pushers' weights, charts."""
    untrained_run(runs_dir, RunConfig(hidden=(64, 32)), "two layers")
    draw = DrawPage(page, server)
    draw.open()
    label, _ = draw.draw(DIGITS[7][0])
    page.get_by_text(LAYER_VIEW).click()
    view = page.get_by_test_id("stExpander").filter(has_text=LAYER_VIEW)
    try:
        view.get_by_text("layer 2: linear 64→32, relu").wait_for()
        images = view.locator('[data-testid="stImage"] img')
        images.last.wait_for()
        for k in range(images.count()):  # the browser loads an image only once it is near the view
            images.nth(k).scroll_into_view_if_needed()
        n = images.count()
        assert n >= 3, n  # two layers' pictures and at least one pusher's weights
        page.wait_for_function(f"() => ({EXPANDER_PICTURES})() === {n}")
        page.wait_for_function(f"() => ({TITLES})().includes('How the output layer builds the logits')")
        readout = f"How the probability of {label} grows layer by layer"
        page.wait_for_function(f"() => ({TITLES})().includes('{readout}')")
    except Exception:
        print("titles", page.evaluate(TITLES), "pictures", page.evaluate(EXPANDER_PICTURES))
        page.screenshot(path=str(artifacts_dir / "draw-layers-failed.png"), full_page=True)
        raise
    titles = page.evaluate(TITLES)
    assert f"Units that pushed {label} most" in titles, titles
    assert f"Probability of {label} with a layer's top units off" in titles, titles
    assert page.locator('[data-testid="stException"]').count() == 0
    view.screenshot(path=str(artifacts_dir / "draw-layers.png"))
