"""The app in a real headless Chromium: it starts, renders, and shows no exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.support.browser import idle

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
README_SCREENSHOT = ROOT / "docs" / "screenshot.png"


def _wait_idle(page: Page) -> None:
    """Until the landing page's script run is over (the quick-model button drawn, nothing stale)."""
    page.get_by_role("button", name="Train a quick default model").wait_for()
    idle(page)


def test_landing_page_renders(page: Page) -> None:
    page.get_by_role("heading", name="MNIST Lab").first.wait_for()
    _wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("0 saved runs").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "landing.png"), full_page=True)
    if not README_SCREENSHOT.exists():
        README_SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(README_SCREENSHOT), full_page=True)
    # The sidebar navigation reaches the other pages.
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Draw").click()
    page.get_by_role("heading", name="Draw").first.wait_for()
    page.get_by_text("No saved model yet").wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0


@pytest.mark.slow
def test_quick_model_trains_in_the_browser(page: Page) -> None:
    _wait_idle(page)
    page.get_by_role("button", name="Train a quick default model").click()
    page.get_by_text("Finished: test accuracy").wait_for(timeout=120_000)
    page.get_by_role("link", name="Draw a digit and see what it predicts").wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("1 saved run").count() >= 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "quick-model-done.png"), full_page=True)


def test_no_page_asks_the_internet_for_anything(server: str, blank_page: Page) -> None:
    """The app works offline: the favicon was a Material icon, fetched from fonts.gstatic.com on every
    page load (ERR_NAME_NOT_RESOLVED offline, 23 times in a first hour)."""
    asked: list[str] = []
    blank_page.on("request", lambda request: asked.append(request.url))
    blank_page.goto(server)
    _wait_idle(blank_page)
    for name in ("Train", "Runs", "Draw", "Sweeps", "Home"):
        blank_page.get_by_test_id("stSidebarNav").get_by_role("link", name=name, exact=True).click()
        blank_page.get_by_role("heading", name="MNIST Lab" if name == "Home" else name).first.wait_for()
    _wait_idle(blank_page)
    local = server.rstrip("/")
    assert [u for u in asked if not u.startswith((local, "data:", "blob:"))] == []
    icon = blank_page.locator("link[rel~='icon']").first.get_attribute("href")
    assert icon is not None and (icon.startswith(local) or not icon.startswith("http")), icon
