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


def start_small_mlp(page: Page, batch_size: int, epochs: int) -> None:
    """From any page: MLP 784-16-10 at ``batch_size`` (1, 2, 4 ... 64) for ``epochs``, started on Train."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Train").click()
    page.get_by_role("button", name="Start training").wait_for()
    page.get_by_role("slider", name="Width (units per layer)").focus()
    page.keyboard.press("Home")
    page.get_by_text("MLP 784-16-10 bs64").first.wait_for()
    page.get_by_role("slider", name="Batch size").focus()
    for _ in range((64 // batch_size).bit_length() - 1):  # one step of the slider halves it: 64 -> 1 is 6
        page.keyboard.press("ArrowLeft")
    page.get_by_text(f"MLP 784-16-10 bs{batch_size}").first.wait_for()
    start_training(page, epochs)
