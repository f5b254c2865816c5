"""Helpers of the Train page's browser tests (not a test module)."""

from __future__ import annotations

from playwright.sync_api import Page


def start_training(page: Page, epochs: int) -> None:
    """Type ``epochs`` into the Train page, wait for its estimate, click Start and wait for the run."""
    field = page.get_by_label("Epochs")
    field.fill(str(epochs))
    field.press("Enter")
    page.get_by_text(f"{epochs} epochs (est.)").wait_for()
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Training now").wait_for()
