"""Journeys on the Sweeps page in a real Chromium: stop and resume a grid sweep across page
switches; the study's table filling in while it runs.

Issue 21: a stopped sweep read "paused" on the page and "done" in ``sweep
--list``; after Stop the page jumped from the Grid sweep tab back to the first
tab; the study's table stayed at "0 of N rows trained" while the study ran
(only its progress panel redrew). AppTest reruns the whole script on every
``run()``, so it cannot see a part of the page that a fragment does not redraw,
nor a tab the browser shows; these tests can.

Every wait is on a condition the page shows (never a sleep), and no assertion
depends on how far a run got when Stop was clicked: runs finished by then
must be untouched, whatever else happened.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from mnist_core import sweeps
from mnist_core.cli import main
from mnist_core.runs import list_runs
from tests.support.browser import choose, go_to, idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NO_EXCEPTION = '[data-testid="stException"]'
WAIT_MS = 240_000  # a condition the page must reach; generous for a loaded 2-core machine
NAME = "Depth x width"  # the grid's default name (a name typed just before Start could miss it)


def grid_tab(page: Page) -> Locator:
    return page.get_by_role("tab", name="Grid sweep")


def row_says(page: Page, name: str, pattern: str) -> None:
    expect(page.get_by_text(re.compile(rf"{name} · {pattern}")).first).to_be_visible(timeout=WAIT_MS)


def cli_status(runs_dir: Path, sweep_id: str, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["--runs-dir", str(runs_dir), "sweep", "--list"]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith(sweep_id)]
    return line


def test_stop_and_resume_a_grid_sweep_across_page_switches(
    page: Page, runs_dir: Path, artifacts_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page.get_by_role("heading", name="MNIST Lab").first.wait_for()
    idle(page)
    go_to(page, "Sweeps")
    grid_tab(page).click()
    idle(page)
    expect(grid_tab(page)).to_have_attribute("aria-selected", "true")
    # Four tiny runs, in this order: width 16 at batch 64 (quick: 750 steps) and 4 (16x the
    # steps), then width 32 likewise; 50 epochs (the most the page offers) of 900 generated images.
    epochs = page.get_by_label("Epochs per run")
    epochs.fill("50")
    epochs.press("Enter")
    idle(page)
    choose(page, "Depths (hidden layers)", ["1"])  # each choice reruns the page with the epochs too
    choose(page, "Widths (units per layer)", ["16", "32"])
    choose(page, "Batch sizes", ["64", "4"])
    expect(epochs).to_have_value("50")
    page.get_by_role("button", name="Start the sweep (4 runs)").click()
    page.get_by_text("Queued 4 runs of").wait_for()
    try:
        row_says(page, NAME, r"\d/4 runs done · running")
        (sweep,) = sweeps.list_sweeps(runs_dir)
        assert [(c.hidden, c.batch_size, c.epochs) for c in sweep.configs] == [
            ((16,), 64, 50), ((16,), 4, 50), ((32,), 64, 50), ((32,), 4, 50)]

        # Away to another page and back: the sweep still shows, running, and the tab is kept.
        go_to(page, "Runs")
        go_to(page, "Sweeps")
        expect(grid_tab(page)).to_have_attribute("aria-selected", "true")
        row_says(page, NAME, r"[1-3]/4 runs done · running")  # at least one run finished

        page.get_by_role("button", name="Stop", exact=True).click()
        page.get_by_text(re.compile(rf"Stopping {NAME} \(\d runs\)")).wait_for()
        row_says(page, NAME, r"[1-3]/4 runs done · stopped")
        expect(grid_tab(page)).to_have_attribute("aria-selected", "true")  # not back to the first tab
        assert page.locator(NO_EXCEPTION).count() == 0

        # The CLI says the same as the page.
        shown = page.get_by_text(re.compile(rf"{NAME} · \d/4 runs done · stopped")).first.inner_text()
        done_then = int(re.search(r"(\d)/4 runs done", shown).group(1))
        line = cli_status(runs_dir, sweep.id, capsys)
        assert f"{done_then}/4 runs done" in line and "stopped" in line, line
        points = sweeps.points(sweep, list_runs(runs_dir))
        before = {p.run.id: p.run.updated for p in points if p.state == "done"}
        assert len(before) == done_then

        page.get_by_role("button", name="Resume", exact=True).click()
        page.get_by_text(re.compile(rf"Resumed {NAME}: \d runs queued, finished runs kept\.")).wait_for()
        go_to(page, "Runs")  # away again while it runs
        go_to(page, "Sweeps")
        row_says(page, NAME, r"4/4 runs done · done")
        assert "4/4 runs done" in (line := cli_status(runs_dir, sweep.id, capsys)) and " done " in line, line
    except Exception:
        page.screenshot(path=str(artifacts_dir / "sweeps-journey-failed.png"), full_page=True)
        raise
    final = sweeps.points(sweep, list_runs(runs_dir))
    assert [p.state for p in final] == ["done"] * 4
    for run_id, updated in before.items():  # finished before the stop: not trained again
        assert next(p.run for p in final if p.run.id == run_id).updated == updated
    tagged = [r for r in list_runs(runs_dir) if sweep.tag in r.meta.get("tags", [])]
    assert len(tagged) == 4  # one run per point: a stopped one was resumed, not started afresh
    assert page.locator(NO_EXCEPTION).count() == 0


def test_the_study_table_fills_in_while_the_study_runs(
    page: Page, runs_dir: Path, artifacts_dir: Path
) -> None:
    page.get_by_role("heading", name="MNIST Lab").first.wait_for()
    idle(page)
    go_to(page, "Sweeps")
    # Width (4 quick rows) then Batch size, whose batch-size-1 rows keep the study running a while.
    choose(page, "Experiments", ["Width", "Batch size"])
    page.get_by_role("button", name=re.compile(r"Reproduce the study \(11 runs\)")).click()
    page.get_by_text("Queued 11 runs of the study").wait_for()
    try:
        # Without a click or a reload: rows are counted as they finish, while the study still runs.
        page.wait_for_function(
            """() => {
                const text = document.body.innerText;
                const m = text.match(/\\((\\d+) of 12 rows trained\\)/);
                const running = /Reproduce the study · \\d+\\/11 runs done · running/;
                return m && Number(m[1]) >= 1 && running.test(text);
            }""",
            timeout=WAIT_MS,
        )
        assert page.locator(NO_EXCEPTION).count() == 0
        # Nothing more can be queued beside it: its runs would be trained twice.
        page.get_by_text("The study is training: its progress is below").wait_for()
        page.wait_for_function("""() => {
            const study = [...document.querySelectorAll('button')]
                .filter(b => /^(Reproduce the study|Train) /.test(b.innerText.trim()));
            return study.length > 0 && study.every(b => b.disabled);
        }""")
        page.get_by_role("button", name="Stop", exact=True).click()
        row_says(page, "Reproduce the study", r"\d+/11 runs done · stopped")
        # Stopped: the study offers to resume it (its runs are not started afresh in a new sweep).
        page.get_by_role("button", name=re.compile(r"^Resume the stopped study \(\d+ runs? left\)$")).click()
        resumed = re.compile(r"Resumed Reproduce the study: \d+ runs queued, finished runs kept\.")
        page.get_by_text(resumed).wait_for()
        row_says(page, "Reproduce the study", r"\d+/11 runs done · running")
        page.get_by_role("button", name="Stop", exact=True).click()
        row_says(page, "Reproduce the study", r"\d+/11 runs done · stopped")
        assert len(sweeps.list_sweeps(runs_dir)) == 1
    except Exception:
        page.screenshot(path=str(artifacts_dir / "sweeps-study-live-failed.png"), full_page=True)
        raise


def test_a_sweep_started_on_the_command_line_shows_on_the_open_page_and_is_followed(
    page: Page, runs_dir: Path, artifacts_dir: Path
) -> None:
    """The page is open and idle; a sweep and its running run appear on disk, written by another
    process (this test, as `python -m mnist_core sweep` would): no reload, no click."""
    from mnist_core.config import RunConfig
    from mnist_core.runs import RunWriter

    page.get_by_role("heading", name="MNIST Lab").first.wait_for()
    idle(page)
    go_to(page, "Sweeps")
    page.get_by_text("No sweep yet.").wait_for()
    cfg = RunConfig(hidden=(16,), epochs=1)
    sweep = sweeps.create([cfg], "from the shell", runs_dir)
    writer = RunWriter.create(cfg, runs_dir, tags=(sweep.tag,))  # locked by this process: "running"
    try:
        row_says(page, "from the shell", r"0/1 runs done · running")
        expect(page.get_by_text("training in another process")).to_be_visible()
        writer.finish("stopped")
        row_says(page, "from the shell", r"0/1 runs done · stopped")
        expect(page.get_by_role("button", name="Resume", exact=True)).to_be_visible()
    except Exception:
        page.screenshot(path=str(artifacts_dir / "sweeps-from-the-shell-failed.png"), full_page=True)
        raise
    finally:
        writer.release()
    assert page.locator(NO_EXCEPTION).count() == 0
