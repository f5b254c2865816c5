"""A new user's first hour as one journey in a real Chromium, across pages (issue 21).

Train a tiny run on the Train page -> pick it in the Runs page's "Runs to
compare" -> rename it while it is picked -> draw with it (the picker shows the
new name) -> Teach it -> Undo -> All models -> upload a photo. Each step
checks what the user sees, and that no page shows an exception. Features
tested one at a time missed the bugs between them: the rename crash of "Runs
to compare" (21.2), the canvas wiped under a stale prediction after Teach it
(21.4), All models switching itself off at the next upload (21.5).

On the generated dataset; again on the real MNIST when ``MNIST_DATA_DIR`` is set.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from app_server import CHROMIUM, CHROMIUM_ARGS, AppDidNotStart, running_app
from draw_helpers import DIGITS, DrawPage, photo
from playwright.sync_api import Page, sync_playwright
from train_helpers import start_training

from mnist_core import runs
from tests.support.browser import go_to as sidebar
from tests.support.browser import idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NO_EXCEPTION = '[data-testid="stException"]'
FIRST_NAME, NEW_NAME = "journey mlp", "my digits model"


def no_exception(page: Page, step: str) -> None:
    errors = page.locator(NO_EXCEPTION)
    assert errors.count() == 0, f"{step}: {errors.first.inner_text()[:500]}"


def chips(page: Page) -> list[str]:
    """The chips of "Runs to compare" as the browser shows them."""
    box = page.get_by_test_id("stMultiSelect").filter(has_text="Runs to compare")
    return sorted(box.locator("[data-tag]").evaluate_all("els => els.map(e => e.getAttribute('aria-label'))"))


def wait_for_chips(page: Page, expected: list[str]) -> None:
    page.wait_for_function(
        """want => JSON.stringify(Array.from(document.querySelectorAll('[data-testid="stMultiSelect"]'))
            .filter(e => e.innerText.includes('Runs to compare'))
            .flatMap(e => Array.from(e.querySelectorAll('[data-tag]')).map(t => t.getAttribute('aria-label')))
            .sort()) === JSON.stringify(want)""",
        arg=sorted(expected),
    )


def journey(page: Page, server: str, runs_dir: Path, files: Path, artifacts: Path) -> None:
    page.goto(server)
    page.get_by_role("heading", name="MNIST Lab").first.wait_for()
    idle(page)

    # 1. Train: a tiny MLP (784-16-10), two epochs, named.
    sidebar(page, "Train")
    page.get_by_role("slider", name="Width (units per layer)").focus()
    page.keyboard.press("Home")
    page.get_by_text("MLP 784-16-10").first.wait_for()
    page.get_by_label("Run name (optional)").fill(FIRST_NAME)
    page.get_by_label("Run name (optional)").press("Enter")
    idle(page)
    start_training(page, 2)
    page.get_by_role("heading", name=re.compile(r"^Result: ")).wait_for(timeout=300_000)
    page.get_by_text("Training now").wait_for(state="detached")
    no_exception(page, "train")
    [run] = runs.list_runs(runs_dir)
    assert run.name == FIRST_NAME and run.status == "completed"
    label = f"{FIRST_NAME} · {run.id[-6:]}"

    # 2. Runs: pick it in "Runs to compare" (start from no selection, then choose it).
    sidebar(page, "Runs")
    page.get_by_role("button", name="Clear", exact=True).click()
    page.get_by_text("Pick runs above to compare them.").wait_for()
    page.get_by_test_id("stMultiSelect").filter(has_text="Runs to compare").locator("input").click()
    page.get_by_role("option", name=label, exact=True).click()
    idle(page)
    page.keyboard.press("Escape")
    wait_for_chips(page, [label])
    no_exception(page, "compare")

    # 3. Rename it while it is picked: the chip follows, and the next clicks still work.
    page.get_by_text("Rename, tag, annotate, export").click()
    page.get_by_label("Name", exact=True).fill(NEW_NAME)
    page.get_by_role("button", name="Save").click()
    page.get_by_text(f"Saved the name, tags and notes of {run.id}.").wait_for()
    idle(page)
    renamed = f"{NEW_NAME} · {run.id[-6:]}"
    wait_for_chips(page, [renamed])
    for _ in range(2):  # the click after a rename raised a TypeError from st.multiselect (issue 21.2)
        page.get_by_text("Descending", exact=True).first.click()  # the table's sort order
        idle(page)
        no_exception(page, "a click after the rename")
    assert chips(page) == [renamed]
    assert runs.load_run(run.id, runs_dir).name == NEW_NAME

    # 4. Draw with the renamed run: the picker shows its new name; a drawn 7 is read.
    draw = DrawPage(page, server)
    sidebar(page, "Draw")
    draw.canvas.wait_for()
    assert NEW_NAME in draw.selected_run()
    predicted, _ = draw.draw(DIGITS[7][0])
    page.get_by_text(f"{NEW_NAME} reading your drawing (1 stroke)").wait_for()
    ink = draw.ink()
    assert ink > 500
    no_exception(page, "draw")

    # 5. Teach it: a new version reads the same drawing, still on the canvas (issue 21.4).
    truth = (predicted + 1) % 10
    draw.teach(truth)
    [version] = [r for r in runs.list_runs(runs_dir) if r.meta.get("parent") == run.id]
    assert version.name.startswith(NEW_NAME)
    page.get_by_text(f"{version.name} reading your drawing (1 stroke)").wait_for()
    assert version.name in draw.selected_run()
    assert draw.ink() == ink
    no_exception(page, "teach")

    # 6. Undo: the version is gone, the renamed run reads the same drawing again.
    page.get_by_role("button", name="Undo this correction").click()
    page.get_by_text("Undone").wait_for()
    page.get_by_text(f"{NEW_NAME} reading your drawing (1 stroke)").wait_for()
    assert NEW_NAME in draw.selected_run()
    assert [r.id for r in runs.list_runs(runs_dir)] == [run.id]
    assert draw.ink() == ink
    no_exception(page, "undo")

    # 7. All models: a table of the one run's reading (the grid is drawn on a canvas: no text to read).
    page.get_by_text("All models: read this drawing").click()
    table = page.get_by_role("tabpanel", name="Draw and predict").get_by_test_id("stDataFrame")
    table.wait_for()
    page.get_by_text("The one saved run reads").wait_for()
    assert draw.all_models.is_checked()
    no_exception(page, "all models")

    # 8. Upload two photos: each is read, and All models stays on (issue 21.5).
    for digit, seed in ((3, 1), (5, 2)):
        draw.upload(photo(files, digit, seed))
        assert draw.all_models.is_checked(), f"All models switched itself off at the upload of a {digit}"
        table.wait_for()
        page.get_by_text("The one saved run reads").wait_for()
        no_exception(page, f"upload of a {digit}")
    page.screenshot(path=str(artifacts / "journey-end.png"))


def test_train_compare_rename_draw_teach_undo_all_models_upload(
    page: Page, server: str, runs_dir: Path, tmp_path: Path, artifacts_dir: Path
) -> None:
    try:
        journey(page, server, runs_dir, tmp_path, artifacts_dir)
    except Exception:
        page.screenshot(path=str(artifacts_dir / "journey-failed.png"), full_page=True)
        raise


@pytest.fixture
def real_page(runs_dir: Path, real_data_dir: Path, tmp_path: Path) -> Iterator[tuple[Page, str]]:
    """A browser tab and the app on the real MNIST (``MNIST_DATA_DIR``), on an empty checkpoints folder."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver")
    with ExitStack() as stack:
        try:
            url, _ = stack.enter_context(running_app(runs_dir, real_data_dir, tmp_path / "streamlit.log"))
        except AppDidNotStart as exc:
            pytest.fail(str(exc))
        p = stack.enter_context(sync_playwright())
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
        page.set_default_timeout(60_000)
        yield page, url


@pytest.mark.realdata
def test_the_same_journey_on_the_real_mnist(
    real_page: tuple[Page, str], runs_dir: Path, tmp_path: Path, artifacts_dir: Path
) -> None:
    page, url = real_page
    try:
        journey(page, url, runs_dir, tmp_path, artifacts_dir)
    except Exception:
        page.screenshot(path=str(artifacts_dir / "journey-real-failed.png"), full_page=True)
        raise
