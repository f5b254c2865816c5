"""A deep link opened first on a freshly started server still gets the app's shell."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

pytestmark = pytest.mark.e2e


def test_a_deep_link_on_a_fresh_server_opens_that_page_inside_the_app(server: str, blank_page: Page) -> None:
    page = blank_page
    page.goto(f"{server}/sweeps?run=nothing-here")  # the first request this server sees
    page.get_by_role("heading", name="Sweeps").first.wait_for()
    nav = page.get_by_test_id("stSidebarNav")
    nav.get_by_role("link", name="Home", exact=True).wait_for()
    links = [t.split()[-1] for t in nav.get_by_role("link").all_inner_texts()]  # icon name, then title
    assert links == ["Home", "Train", "Runs", "Draw", "Sweeps"], links  # app.py's titles, not file names
    assert page.url.endswith("/sweeps?run=nothing-here"), page.url
    assert page.locator('[data-testid="stException"]').count() == 0
