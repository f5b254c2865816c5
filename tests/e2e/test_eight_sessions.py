"""Eight browser sessions at once against one server: one trains, the others draw, predict and correct.

One Chromium, eight contexts (eight separate Streamlit sessions, as eight
users): session 0 trains a small MLP on the Train page (stopped at the end,
which saves it); sessions 1-7 draw
digits on the Draw page and get predictions while it trains; sessions 1 and 2
correct the same model at the same moment (both Teach clicks sent before
either answer). Afterwards: both versions exist, complete, with the right
lineage and loadable weights (none torn, none lost), every page is free of
exceptions, and the server logged no traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from draw_helpers import DIGITS, DrawPage, versions_of
from playwright.sync_api import Browser, Page
from train_helpers import start_small_mlp

from mnist_core import runs
from mnist_core.config import MAX_EPOCHS, RunConfig
from tests.support.browser import chromium

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SESSIONS = 8
# MLP 784-16-10 at batch 1 on 1000 images: trains through all the drawing, then is stopped. 500 epochs
# (about 150 s since batch 1 got faster) could end before the drawing did on a loaded machine.
TRAIN_EPOCHS = MAX_EPOCHS


@pytest.fixture
def base_run(runs_dir: Path, synthetic_data_dir: Path) -> runs.RunInfo:
    from mnist_core.pipeline import run_training

    cfg = RunConfig(model="cnn", cnn_channels=(4, 8), hidden=(16,), epochs=2, batch_size=50, lr=3e-3)
    return run_training(cfg, runs_dir=runs_dir, data_root=synthetic_data_dir, name="shared cnn")


@pytest.fixture
def app(base_run: runs.RunInfo, server: str) -> str:
    """The server, started after the base run exists."""
    return server


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def _new_page(browser: Browser) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 1200}).new_page()
    page.set_default_timeout(120_000)
    return page


def _open_train_and_start(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name="MNIST Lab").first.wait_for()
    start_small_mlp(page, 1, TRAIN_EPOCHS)


def _pick_label(draw: DrawPage, label: int) -> None:
    answers = draw.page.get_by_test_id("stButtonGroup").filter(has_text="The right answer")
    answers.get_by_text(str(label), exact=True).click()
    draw.page.get_by_role("button", name=f"Teach it: this is {label}").wait_for()
    draw.idle()


def _no_exception(page: Page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.url


def test_eight_sessions_train_draw_and_correct_the_same_model_at_once(
    app: str, base_run: runs.RunInfo, browser: Browser, runs_dir: Path, tmp_path: Path
) -> None:
    pages = [_new_page(browser) for _ in range(SESSIONS)]
    trainer, drawers = pages[0], [DrawPage(p, app) for p in pages[1:]]
    _open_train_and_start(trainer, app)
    for draw in drawers:
        draw.open()
        assert base_run.name in draw.selected_run()

    # Everyone draws while the run trains; each gets a prediction of its own drawing.
    for i, draw in enumerate(drawers):
        digit = (i + 2) % 10
        label, confidence = draw.draw(DIGITS[digit][i % 2])
        assert 0 <= label <= 9 and 0 < confidence <= 1
    assert trainer.get_by_text("Training now").is_visible(), "the run trained through the drawing"

    # Two users correct the same model at the same moment.
    first, second = drawers[0], drawers[1]
    truths = [(int(d.metric("Prediction")) + 1) % 10 for d in (first, second)]
    for draw, truth in zip((first, second), truths, strict=True):
        _pick_label(draw, truth)
    pairs = zip((first, second), truths, strict=True)
    buttons = [d.page.get_by_role("button", name=f"Teach it: this is {t}") for d, t in pairs]
    for button in buttons:  # both clicks go out before either answer comes back
        button.click(no_wait_after=True)
    for draw in (first, second):
        draw.page.get_by_text("Saved as a new version").wait_for(timeout=180_000)
        draw.idle()

    versions = versions_of(runs_dir, base_run.id)
    assert len(versions) == 2, [v.id for v in versions]
    assert len({v.id for v in versions}) == 2
    assert sorted(v.meta["details"]["label"] for v in versions) == sorted(truths)
    for version in versions:
        assert version.status == "completed" and version.meta["kind"] == "correction"
        assert [r.id for r in runs.lineage(version.id, runs_dir)] == [base_run.id, version.id]
        runs.load_model(version.id, runs_dir)  # weights.pt whole and matching (weights_only=True)
        assert not [p for p in version.path.iterdir() if p.name.endswith(".tmp")]
    assert runs.load_run(base_run.id, runs_dir).updated == base_run.updated, "the parent was never touched"
    for draw in (first, second):  # each page switched to a version (their names may be equal: both "v2")
        assert any(v.name in draw.selected_run() for v in versions)

    # Everyone can still draw; the run trained all along and stops on request; nothing broke anywhere.
    for i, draw in enumerate(drawers[2:]):
        draw.reset()
        draw.draw(DIGITS[(i + 5) % 10][0])
    assert trainer.get_by_text("Training now").is_visible()
    trainer.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop").click()
    trainer.get_by_role("heading", name=re.compile(r"^Result: ")).wait_for(timeout=120_000)
    trained = [r for r in runs.list_runs(runs_dir) if r.config.hidden == (16,) and r.config.model == "mlp"]
    assert [r.status for r in trained] == ["stopped"]
    assert runs.load_train_state(trained[0].id, runs_dir).elapsed_s > 0
    assert "test_accuracy" in trained[0].summary
    for page in pages:
        _no_exception(page)
    log = (tmp_path / "streamlit.log").read_text()
    assert "Traceback" not in log, log[-3000:]
