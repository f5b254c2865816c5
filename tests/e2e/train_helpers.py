"""Helpers of the Train page's browser tests (not a test module)."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Locator, Page


def start_training(page: Page, epochs: int) -> None:
    """Type ``epochs`` into the Train page, wait for its estimate, click Start and wait for the run."""
    field = page.get_by_role("spinbutton", name="Epochs")
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


def drag_zoom(page: Page, height: int = 1800, while_held: Callable[[], object] | None = None) -> Locator:
    """A user's drag over the middle of the first live chart's loss panel (20% to 50% of its width).

    The viewport grows to ``height`` so the whole live view is on screen and
    nothing moves it. ``while_held`` runs halfway, with the button down (a
    user's drag lasts longer than a redraw: wait for one there). Returns the
    panel's overlay, where uPlot takes the mouse.
    """
    page.set_viewport_size({"width": 1280, "height": height})
    over = page.locator(".mnist-live-chart .mnist-live-panel").first.locator(".u-over")
    over.scroll_into_view_if_needed()
    box = over.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 0.2 * box["width"], y)
    page.mouse.down()
    page.mouse.move(box["x"] + 0.35 * box["width"], y, steps=3)
    if while_held is not None:
        while_held()
    page.mouse.move(box["x"] + 0.5 * box["width"], y, steps=3)
    page.mouse.up()
    return over
