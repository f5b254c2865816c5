"""The Runs page in a real headless Chromium: pick two runs, see both learning curves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page

from mnist_core import runs
from tests.support.browser import idle
from tests.support.fakeruns import make_fake_runs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Names of the traces of every Plotly chart on the page, read from the charts themselves.
TRACE_NAMES = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
    .map(plot => (plot.data || []).map(trace => trace.name))"""


@pytest.fixture
def two_runs(runs_dir: Path) -> list[runs.RunInfo]:
    """Two completed generated runs, written before the server lists them."""
    make_fake_runs(runs_dir, 2, seed=3, n_test=200)
    infos = runs.list_runs(runs_dir)
    assert [i.status for i in infos] == ["completed", "completed"]
    return infos


def _wait_for_curves(page: Page, expected: list[str]) -> None:
    """Until the learning-curve chart has a trace named after every expected run."""
    page.wait_for_function(
        f"""() => {{
            const plots = ({TRACE_NAMES})();
            const want = {json.dumps(expected)};
            return plots.length >= 1 && want.every(name => plots[0].includes(name));
        }}"""
    )


def test_select_two_runs_and_see_both_curves(
    two_runs: list[runs.RunInfo], page: Page, artifacts_dir: Path
) -> None:
    # Until the landing page's script has run, the sidebar may still list the raw pages/ files.
    page.get_by_role("heading", name="MNIST Lab").first.wait_for()
    idle(page)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Runs", exact=True).click()
    page.get_by_role("heading", name="Runs").first.wait_for()
    # Start from no selection (a first visit preselects the newest runs), then pick both by hand.
    page.get_by_role("button", name="Clear", exact=True).click()
    page.get_by_text("Pick runs above to compare them.").wait_for()
    picker = page.get_by_test_id("stMultiSelect").filter(has_text="Runs to compare")
    for info in two_runs:
        picker.locator("input").click()
        page.get_by_role("option", name=f"{info.name} · {info.id[-6:]}").click()
        idle(page)
    page.keyboard.press("Escape")
    expected = sorted(info.name for info in two_runs)
    try:
        _wait_for_curves(page, expected)
    except Exception:
        page.screenshot(path=str(artifacts_dir / "runs-two-curves-failed.png"), full_page=True)
        raise
    names = page.evaluate(TRACE_NAMES)[0]  # loss and accuracy, training and validation, of each run
    assert sorted(names) == sorted(expected * 4)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.set_viewport_size({"width": 1400, "height": 1900})  # the app scrolls inside; show the charts too
    page.locator(".js-plotly-plot").first.wait_for()
    page.screenshot(path=str(artifacts_dir / "runs-two-curves.png"))


def _section(page: Page, title: str):
    """The Runs page's expander whose summary starts with ``title``."""
    return page.get_by_test_id("stExpander").filter(has=page.locator("summary", has_text=title))


def _is_open(section) -> bool:
    return section.locator("details").get_attribute("open") is not None


def test_rename_delete_and_import_answer_in_their_section_which_stays_open(
    two_runs: list[runs.RunInfo], page: Page, runs_dir: Path, tmp_path: Path
) -> None:
    """The messages of rename, delete and import were drawn at the top of the page, out of sight, and
    the expander the user had just used closed under them."""
    from mnist_core import archive

    elsewhere = tmp_path / "elsewhere"
    [other] = make_fake_runs(elsewhere, 1, seed=5, n_test=200, weights=True)
    exported = tmp_path / "run.zip"
    exported.write_bytes(archive.export_run(other, elsewhere))
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Runs", exact=True).click()
    page.get_by_role("heading", name="Runs").first.wait_for()
    idle(page)

    edit = _section(page, "Rename, tag, annotate, export")
    edit.locator("summary").click()
    name = edit.get_by_label("Name")
    name.fill("renamed by hand")
    edit.get_by_role("button", name="Save").click()
    edit.get_by_text("Saved the name, tags and notes of").wait_for()
    idle(page)
    assert _is_open(edit), "the section the user just used stays open"
    assert [i.name for i in runs.list_runs(runs_dir)].count("renamed by hand") == 1

    imported = _section(page, "Import a run (.zip)")
    imported.locator("summary").click()
    imported.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(exported))
    imported.get_by_role("button", name="Import", exact=True).click()
    imported.get_by_text("Imported").wait_for()
    idle(page)
    assert _is_open(imported) and _is_open(edit)
    assert len(runs.list_runs(runs_dir)) == 3

    delete = _section(page, "Delete the selected runs")
    delete.locator("summary").click()
    delete.get_by_role("button", name="Delete 2 runs…").click()
    delete.get_by_role("button", name="Yes, delete").click()
    delete.get_by_text("Deleted 2 runs.").wait_for()
    idle(page)
    assert _is_open(delete), "the selection changed (no run now); the section stays open all the same"
    assert len(runs.list_runs(runs_dir)) == 1
    assert page.locator('[data-testid="stException"]').count() == 0
