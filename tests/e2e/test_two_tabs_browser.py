"""Journeys in a real Chromium: two tabs editing the same runs; a name like Markdown; a wrong URL.

Issue 21: renaming a run picked in "Runs to compare" left its chip with the old
name, and the next click raised ``TypeError: bad argument type for built-in
operation`` until a reload; a run deleted from another tab was the same bug.
AppTest cannot show it (it re-sends labels from the current options); a
browser sends back the labels it holds, so only a browser test catches it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page

from mnist_core import runs
from tests.support.browser import idle
from tests.support.fakeruns import make_fake_runs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NO_EXCEPTION = '[data-testid="stException"]'
CHIPS = """() => {
    const box = Array.from(document.querySelectorAll('[data-testid="stMultiSelect"]'))
        .find(e => e.innerText.includes('Runs to compare'));
    const tags = box ? Array.from(box.querySelectorAll('[data-tag]')) : [];
    return tags.map(t => t.getAttribute('aria-label')).sort();
}"""
EVIL = "[click](http://evil) :red[x] **b** :fire: $x$ <b>y</b>"


def label(info: runs.RunInfo, name: str | None = None) -> str:
    return f"{name or info.name} · {info.id[-6:]}"


def open_runs(page: Page, server: str) -> None:
    page.goto(f"{server}/runs")
    page.get_by_role("heading", name="Runs", exact=True).first.wait_for()
    page.get_by_test_id("stMultiSelect").filter(has_text="Runs to compare").wait_for()
    idle(page)


def picker(page: Page) -> Locator:
    return page.get_by_test_id("stMultiSelect").filter(has_text="Runs to compare")


def chips(page: Page) -> list[str]:
    """The chips of "Runs to compare", as the browser shows them (sorted)."""
    return page.evaluate(CHIPS)


def wait_for_chips(page: Page, expected: list[str]) -> None:
    same = f"want => JSON.stringify(({CHIPS})()) === JSON.stringify(want)"
    page.wait_for_function(same, arg=sorted(expected))


def pick(page: Page, labels: list[str]) -> None:
    page.get_by_role("button", name="Clear", exact=True).click()
    page.get_by_text("Pick runs above to compare them.").wait_for()
    for text in labels:
        picker(page).locator("input").click()
        page.get_by_role("option", name=text, exact=True).click()
        idle(page)
    page.keyboard.press("Escape")
    wait_for_chips(page, labels)


@pytest.fixture
def four_runs(runs_dir: Path) -> list[runs.RunInfo]:
    make_fake_runs(runs_dir, 4, seed=5, n_test=200)
    infos = [i for i in runs.list_runs(runs_dir) if i.status == "completed"]
    assert len(infos) >= 3
    return infos[:3]


def test_two_tabs_rename_and_delete_runs_the_other_has_picked(
    server: str, blank_page: Page, four_runs: list[runs.RunInfo], runs_dir: Path, artifacts_dir: Path
) -> None:
    a = blank_page
    b = a.context.new_page()  # a second tab: its own Streamlit session on the same server
    b.set_default_timeout(60_000)
    kept, renamed, deleted = four_runs
    try:
        open_runs(a, server)
        pick(a, [label(kept), label(renamed), label(deleted)])
        assert chips(a) == sorted([label(kept), label(renamed), label(deleted)])

        open_runs(b, server)
        pick(b, [label(renamed)])
        b.get_by_text("Rename, tag, annotate, export").click()
        name = b.get_by_label("Name", exact=True)
        name.fill("renamed in tab B")
        b.get_by_role("button", name="Save").click()
        b.get_by_text(f"Saved the name, tags and notes of {renamed.id}.").wait_for()
        wait_for_chips(b, [label(renamed, "renamed in tab B")])  # B's own chip follows, no reload
        pick(b, [label(deleted)])
        b.get_by_text("Delete the selected runs").click()
        b.get_by_role("button", name="Delete 1 run…").click()
        b.get_by_role("button", name="Yes, delete").click()
        b.get_by_text("Deleted 1 run.").wait_for()
        assert not (runs_dir / deleted.id).exists()
        assert runs.load_run(renamed.id, runs_dir).name == "renamed in tab B"
        assert b.locator(NO_EXCEPTION).count() == 0

        # Tab A still shows the three chips; its next click must work and show what is on disk now.
        a.bring_to_front()
        a.get_by_text("Descending", exact=True).first.click()
        idle(a)
        now = sorted([label(kept), label(renamed, "renamed in tab B")])
        wait_for_chips(a, now)
        assert a.locator(NO_EXCEPTION).count() == 0
        assert chips(a) == now
        a.get_by_text("Descending", exact=True).first.click()  # and the click after that
        idle(a)
        assert a.locator(NO_EXCEPTION).count() == 0
        assert chips(a) == now
    except Exception:
        a.screenshot(path=str(artifacts_dir / "two-tabs-a-failed.png"), full_page=True)
        b.screenshot(path=str(artifacts_dir / "two-tabs-b-failed.png"), full_page=True)
        raise


def test_an_unknown_path_says_the_page_does_not_exist(server: str, blank_page: Page) -> None:
    page = blank_page
    for path in ("no-such-page", "oops"):  # the first request this server sees, then once navigation is up
        page.goto(f"{server}/{path}")
        page.get_by_role("heading", name="Page not found", level=1).wait_for()
        alert = page.get_by_test_id("stAlert").inner_text()
        assert f"/{path}" in alert and "does not exist" in alert, alert
        assert page.locator(NO_EXCEPTION).count() == 0
        page.keyboard.press("Escape")  # Streamlit's own dialog ("Running the app's main page") over it
        page.get_by_role("dialog").wait_for(state="hidden")
        page.get_by_role("link", name="Go to Home").click()
        page.get_by_role("heading", name="MNIST Lab").first.wait_for()


def test_a_name_that_looks_like_markdown_is_shown_as_typed(
    server: str, blank_page: Page, runs_dir: Path
) -> None:
    for run_id in make_fake_runs(runs_dir, 2, seed=2, n_test=200, weights=True, max_width=32):  # the best
        runs.update_meta(run_id, runs_dir, name=EVIL)
    page = blank_page
    page.goto(server)
    line = page.get_by_test_id("stMarkdownContainer").filter(has_text="Best run so far")
    line.wait_for()
    assert line.locator("code").inner_text() == EVIL
    assert line.locator("a").count() == 0 and line.locator(".katex").count() == 0
    assert "🔥" not in line.inner_text()
    page.get_by_text(f"Best run so far: {EVIL} (MLP").wait_for()  # text lookups see through code
