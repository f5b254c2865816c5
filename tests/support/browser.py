"""Driving the app in headless Chromium (Playwright): launch it, wait for a script run, go to a page."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.app_server import CHROMIUM, CHROMIUM_ARGS

# True once no script run is going on: the status widget is gone, or no longer says "Running", and no
# element is left stale. A short run never shows the widget, and the elements it has not drawn again
# (a canvas under its old key, beside the new one) stay on the page, stale, until it ends.
IDLE = (
    "() => (!document.querySelector('[data-testid=\"stStatusWidget\"]')"
    " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running'))"
    " && !document.querySelector('[data-stale=\"true\"]')"
)


@contextmanager
def chromium() -> Iterator[Browser]:
    """The system's Chromium with the flags verified here (STACK.md); skips the test when it is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def idle(page: Page) -> None:
    """Until the script run that the last action started has finished."""
    page.wait_for_function(IDLE)


def go_to(page: Page, title: str) -> None:
    """Click the page's sidebar link; wait for its heading and for the script run to end."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    page.get_by_role("heading", name=title, exact=True).first.wait_for()
    idle(page)


def choose(page: Page, label: str, values: list[str]) -> None:
    """Replace the choice of the multiselect labelled ``label`` by ``values``, picked in this order."""
    box = page.get_by_test_id("stMultiSelect").filter(has_text=label)
    field = box.locator("input")
    field.click()
    while box.locator("[data-tag]").count():  # Backspace removes the last chip
        field.press("Backspace")
        idle(page)
    for value in values:
        field.click()
        page.get_by_role("option", name=value, exact=True).click()
        idle(page)
    page.keyboard.press("Escape")
