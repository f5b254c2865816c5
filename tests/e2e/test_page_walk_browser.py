"""Every page at 1280 and 390 px, on a checkpoints folder like a user's (issue 21, "Done when").

The folder holds runs of every kind a user ends up with: a small MLP and a
small CNN trained here, a run stopped early, generated runs (one failed), a
broken folder, a grid sweep with one run still to do and a study
reproduction with one row trained. One server serves both widths; a fresh
browser tab visits Home, Train, Runs (each comparison view), Draw (a drawn
digit, All models, My handwriting), Sweeps (both tabs and the saved sweeps)
and an unknown path. In each state the walk records:

- an exception box;
- a table cell, metric or any text that reads exactly "None", "nan", "NaN",
  "<NA>" or "NaT" (a table's cells are read from the grid's accessible
  table: the canvas itself cannot be read; ``test_page_walk.py`` checks
  what the canvas shows for missing values);
- text cut short with an ellipsis;
- two controls (buttons, inputs, sliders, checkboxes, tabs, links, the
  canvas and its toolbar) whose boxes overlap, and a page wider than the
  screen.

Every problem of the walk is reported at once, with a screenshot of the
whole page in each state under ``artifacts/walk/``.
"""

from __future__ import annotations

import base64
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from app_server import ROOT, AppDidNotStart, running_app
from draw_helpers import DIGITS, DrawPage
from playwright.sync_api import Browser, Page
from streamlit.testing.v1 import AppTest

from mnist_core import runs, study, sweeps
from mnist_core.config import RunConfig
from mnist_core.models import build_model
from mnist_core.pipeline import run_training
from mnist_core.runs import RunWriter, write_json, write_torch
from tests.support import fakeruns
from tests.support.browser import chromium
from tests.support.drawing import canvas_png

WIDTHS = {"laptop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
VIEWS = ("Learning curves", "Accuracy vs cost", "Parallel coordinates", "Depth x width", "Bars", "Confusion",
         "Mistakes")  # fmt: skip
SHOTS = ROOT / "artifacts" / "walk"
APP = ROOT / "app.py"
N_TEST = 200  # the generated test split (tests/conftest.py)

# Controls a user clicks or types into, across open shadow roots (the canvas lives in one).
CONTROLS = ", ".join([
    "button", "input:not([type=hidden])", "textarea", "select", "a[href]", "[role=slider]",
    "[role=checkbox]", "[role=switch]", "[role=tab]", "[role=combobox]", "[role=radio]",
    "canvas.upper-canvas", ".dc-toolbar-card",
])  # fmt: skip

# Pairs of visible controls whose boxes share more than a pixel each way (one inside the other aside).
OVERLAPS = """([selector]) => {
    const found = [];
    const walk = root => {
        for (const el of root.querySelectorAll(selector)) found.push(el);
        for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
    };
    walk(document.querySelector('[data-testid="stMain"]'));
    const inGrid = el => el.closest && el.closest('[data-testid="stDataFrame"]');
    const clipped = el => {  // the part of its box that scrolling or clipping ancestors leave visible
        const b = el.getBoundingClientRect();
        const r = {left: b.left, right: b.right, top: b.top, bottom: b.bottom};
        for (let node = el.parentNode; node; node = node.parentNode || node.host) {
            if (!(node instanceof Element)) continue;
            const style = getComputedStyle(node), c = node.getBoundingClientRect();
            if (style.overflowX !== 'visible') {
                r.left = Math.max(r.left, c.left); r.right = Math.min(r.right, c.right);
            }
            if (style.overflowY !== 'visible') {
                r.top = Math.max(r.top, c.top); r.bottom = Math.min(r.bottom, c.bottom);
            }
        }
        return r;
    };
    const shown = found.filter(el => !inGrid(el)
        && el.checkVisibility({opacityProperty: true, visibilityProperty: true}))
        .map(el => ({el, r: clipped(el)}))
        .filter(({r}) => r.right - r.left >= 2 && r.bottom - r.top >= 2);
    const name = el => `${el.tagName.toLowerCase()}[${(el.getAttribute('aria-label') || el.innerText
        || el.getAttribute('placeholder') || el.className || '').toString().slice(0, 40).trim()}]`;
    const holds = (a, b) => a.contains(b) || (a.shadowRoot && a.shadowRoot.contains(b));
    const out = [];
    for (let i = 0; i < shown.length; i++) for (let j = i + 1; j < shown.length; j++) {
        const a = shown[i], b = shown[j];
        if (holds(a.el, b.el) || holds(b.el, a.el)) continue;
        if (a.el.closest('label') && a.el.closest('label') === b.el.closest('label')) continue;
        const dx = Math.min(a.r.right, b.r.right) - Math.max(a.r.left, b.r.left);
        const dy = Math.min(a.r.bottom, b.r.bottom) - Math.max(a.r.top, b.r.top);
        if (dx > 1 && dy > 1) out.push(`${name(a.el)} overlaps ${name(b.el)}`);
    }
    return out;
}"""

# Text that reads as a missing value: any text node, a metric's value, a table cell.
MISSING = """() => {
    const bad = /^(None|nan|NaN|<NA>|NaT|null|undefined)$/;
    const loose = /(^|[\\s(:=])(None|nan|NaN|<NA>|NaT)([\\s%).,]|$)/;
    const main = document.querySelector('[data-testid="stMain"]');
    const out = [];
    const texts = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
    for (let n = texts.nextNode(); n; n = texts.nextNode())
        if (bad.test(n.nodeValue.trim()))
            out.push(`text "${n.nodeValue.trim()}" in ${n.parentElement.tagName}`);
    for (const el of main.querySelectorAll('[data-testid="stMetricValue"], [data-testid="stMetricDelta"]'))
        if (loose.test(el.innerText)) out.push(`metric "${el.innerText}"`);
    for (const cell of main.querySelectorAll('[data-testid="stDataFrame"] td, [data-testid="stTable"] td'))
        if (bad.test(cell.innerText.trim()) || loose.test(cell.innerText))
            out.push(`table cell "${cell.innerText}" (${cell.id})`);
    return out;
}"""

# Text cut short with an ellipsis: wider than its box (as test_narrow_browser.py; the grid's cells scroll).
# Also text that its box clips without an ellipsis: a selectbox's value wider than its box, an element
# with a text of its own, wider than its box, in a box that hides what overflows.
CUT_SHORT = """els => els.filter(e => {
    if (e.getAttribute('role') === 'combobox' && e.value && e.scrollWidth > e.clientWidth + 1) return true;
    if (!e.innerText || e.closest('[data-testid="stDataFrame"], .js-plotly-plot')) return false;
    if (!e.checkVisibility()) return false;
    if (e.scrollWidth <= e.clientWidth + 1) return false;
    const style = getComputedStyle(e);
    if (style.textOverflow === 'ellipsis') return true;
    const ownText = [...e.childNodes].some(n => n.nodeType === Node.TEXT_NODE && n.nodeValue.trim());
    return ownText && ['hidden', 'clip'].includes(style.overflowX);
}).map(e => (e.innerText || e.value).slice(0, 60))"""

WIDER_THAN_SCREEN = """() => {
    const m = document.querySelector('[data-testid="stMain"]');
    return m.scrollWidth > m.clientWidth + 1 ? [`${m.scrollWidth} px wide`] : [];
}"""

# No script run going on (the status widget, showing "Stop", is there while one runs), for 0.5 s in
# a row: a page that reruns itself (a redirect, a fragment's st.rerun) hides the widget in between.
IDLE = """() => {
    const now = performance.now();
    if (document.querySelector('[data-testid="stStatusWidget"]')) {
        window.walkIdleSince = undefined;
        return false;
    }
    if (window.walkIdleSince === undefined) window.walkIdleSince = now;
    return now - window.walkIdleSince > 500;
}"""

# Every chart drawn, every table painted, nothing moving (the walk must not look at a half-drawn page).
DRAWN = """() => {
    const shown = sel => [...document.querySelectorAll(sel)].filter(e => e.checkVisibility());
    return shown('[data-testid="stPlotlyChart"]').every(c => c.querySelector('.main-svg'))
        && shown('[data-testid="stDataFrame"]').every(d => d.querySelector('canvas'))
        && shown('[data-testid="stSkeleton"]').length === 0
        // no box on its way somewhere (the canvas toolbar slides and fades in and out on hover)
        && !document.getAnimations().some(a => a instanceof CSSTransition && a.playState === 'running');
}"""


# -- the checkpoints folder ----------------------------------------------------------------


def fake_run(runs_dir: Path, cfg: RunConfig, rng: random.Random, *, tags: tuple[str, ...] = (),
             failed: bool = False, weights: bool = False) -> str:  # fmt: skip
    """A generated completed (or failed) run, written through the real run layout."""
    summary = fakeruns.fake_summary(cfg, rng, N_TEST)
    writer = RunWriter.create(cfg, runs_dir, tags=tags)
    history = fakeruns.fake_history(cfg, rng, summary["test_accuracy"], summary["time_per_epoch_s"])
    write_json(writer.path / "history.json", history)
    if weights:
        write_torch(writer.path / "weights.pt", build_model(cfg).state_dict())
    if failed:
        writer.finish("failed", error="RuntimeError: out of memory")
    else:
        writer.finish("completed", summary)
    return writer.id


def populate(runs_dir: Path, data_dir: Path) -> None:
    """Runs of every kind, a grid sweep with one run to go, a study with one row trained."""
    run_training(RunConfig(hidden=(16,), epochs=1, batch_size=100), runs_dir=runs_dir, data_root=data_dir,
                 name="tiny mlp")  # fmt: skip
    cnn = RunConfig(model="cnn", cnn_channels=(4, 8), hidden=(16,), epochs=1, batch_size=100)
    run_training(cnn, runs_dir=runs_dir, data_root=data_dir, name="tiny cnn")
    checks = iter(range(1_000_000))
    run_training(RunConfig(hidden=(32, 32), epochs=2, batch_size=50), runs_dir=runs_dir, data_root=data_dir,
                 name="stopped early", should_stop=lambda: next(checks) > 3)  # fmt: skip
    fakeruns.corrupt_run(runs_dir)
    rng = random.Random(0)
    fake_run(runs_dir, RunConfig(hidden=(64,), epochs=1), rng, failed=True)
    grid = [RunConfig(hidden=(w,) * d, epochs=1, batch_size=64) for d in (1, 2) for w in (32, 64)]
    grid_sweep = sweeps.create(grid, "Depth x width", runs_dir)
    for cfg in grid[:3]:
        fake_run(runs_dir, cfg, rng, tags=(grid_sweep.tag,), weights=True)
    configs = study.configs(batch_one=False)
    extra = {"experiments": list(study.EXPERIMENTS), "batch_one": False}
    the_study = sweeps.create(configs, "Reproduce the study", runs_dir, axes={}, kind="study", extra=extra)
    fake_run(runs_dir, next(c for c in configs if c.model == "mlp"), rng, tags=(the_study.tag,))


@pytest.fixture(scope="module")
def walk_runs(tmp_path_factory: pytest.TempPathFactory, synthetic_data_dir: Path) -> Path:
    """The populated checkpoints folder, shared by the walk and its AppTest companion."""
    runs_dir = tmp_path_factory.mktemp("walk") / "checkpoints"
    runs_dir.mkdir()
    populate(runs_dir, synthetic_data_dir)
    return runs_dir


@pytest.fixture(scope="module")
def walk_server(walk_runs: Path, synthetic_data_dir: Path) -> Iterator[str]:
    """One server for both widths, on the populated folder (its caches warm up once)."""
    try:
        SHOTS.mkdir(parents=True, exist_ok=True)
        log = SHOTS / "streamlit.log"  # kept beside the screenshots, for a failed walk
        log.unlink(missing_ok=True)
        with running_app(walk_runs, synthetic_data_dir, log) as (url, _):
            yield url
    except AppDidNotStart as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


# -- the walk --------------------------------------------------------------------------------


class Walk:
    """A tab at one width; :meth:`check` records what is wrong in the current state and shoots it."""

    def __init__(self, page: Page, url: str, width: str) -> None:
        self.page, self.url, self.width = page, url, width
        self.problems: list[str] = []
        self.seen: list[str] = []

    def idle(self) -> None:
        """Until no script run is going on, for half a second in a row, and everything is drawn."""
        self.page.evaluate("() => { window.walkIdleSince = undefined; }")
        self.page.wait_for_function(IDLE)
        self.page.wait_for_function(DRAWN)

    def open(self, path: str, heading: str) -> None:
        self.page.goto(f"{self.url}/{path}")
        self.page.get_by_role("heading", name=heading).first.wait_for()
        self.idle()

    def check(self, state: str) -> None:
        """Record what is wrong, with the viewport as tall as the page (the main area scrolls and clips)."""
        self.idle()
        page, where = self.page, f"{self.width} {state}"
        self.seen.append(state)
        size = page.viewport_size
        assert size is not None
        # From the top, as a page opens: scrolled past the canvas, its toolbar stays in view, over the canvas.
        page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollTo(0, 0)")
        page.wait_for_function(DRAWN)
        height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
        page.set_viewport_size(
            {"width": size["width"], "height": max(size["height"], min(int(height), 8000))}
        )
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        try:
            for exc in page.locator('[data-testid="stException"]').all():
                self.problems.append(f"{where}: exception {exc.inner_text()[:300]!r}")
            for text in page.evaluate(MISSING):
                self.problems.append(f"{where}: {text}")
            for text in page.locator('[data-testid="stMain"] *').evaluate_all(CUT_SHORT):
                self.problems.append(f"{where}: cut short {text!r}")
            for pair in page.evaluate(OVERLAPS, [CONTROLS]):
                self.problems.append(f"{where}: {pair}")
            for text in page.evaluate(WIDER_THAN_SCREEN):
                self.problems.append(f"{where}: the page is wider than the screen ({text})")
            page.screenshot(path=SHOTS / f"{self.width}-{len(self.seen):02d}-{state}.png")
        finally:
            page.set_viewport_size(size)


def walk(page: Page, url: str, width: str) -> Walk:
    w = Walk(page, url, width)
    w.open("", "MNIST Lab")
    w.check("home")

    w.open("train", "Train")
    page.get_by_test_id("stMetric").filter(has_text="Parameters").wait_for()  # the cost preview
    w.check("train")
    page.get_by_text("CNN", exact=True).first.click()  # the CNN's settings (style, channels)
    w.check("train-cnn")

    w.open("runs", "Runs")
    page.get_by_role("button", name="Download the table (CSV)").wait_for()
    page.get_by_role("button", name="Select the 8 shown").click()  # every kind of run in every view
    w.idle()
    group = page.get_by_test_id("stButtonGroup").filter(has_text=VIEWS[0])
    group.get_by_text(VIEWS[-1], exact=True).wait_for()
    views = group.locator("button")
    names = [b.inner_text().strip() for b in views.all()]  # every view the page offers, new ones too
    assert set(VIEWS) <= set(names), names
    for view in names:
        views.get_by_text(view, exact=True).click()
        w.check(f"runs-{re.sub(r'[^a-z]+', '-', view.lower()).strip('-')}")

    draw = DrawPage(page, url)
    w.open("draw", "Draw")
    draw.canvas.wait_for()
    draw.draw(DIGITS[3][0])
    draw.show_toolbar()  # the floating toolbar, shown on hover, must cover no control
    w.check("draw-prediction")
    tables = page.get_by_test_id("stDataFrame").count()
    draw.all_models.check(force=True)
    page.wait_for_function(
        f"() => document.querySelectorAll('[data-testid=\"stDataFrame\"]').length > {tables}"
    )
    # The toggle sits far below: the page scrolled there, and the toolbar of the canvas, scrolled past,
    # stays in view over it until the pointer comes back. Back at the top, hovering it, as a user would.
    page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollTo(0, 0)")
    draw.show_toolbar()
    w.check("draw-all-models")
    page.get_by_role("tab", name="My handwriting").click()
    w.check("draw-my-handwriting")

    w.open("sweeps", "Sweeps")
    page.get_by_text("rows trained)").wait_for()
    page.get_by_text("Charts of the sweep").wait_for()  # the saved sweeps, under the tabs
    w.check("sweeps-study")
    page.get_by_role("tab", name="Grid sweep").click()
    page.get_by_text("Depths (hidden layers)").wait_for()
    w.check("sweeps-grid")

    w.open("no-such-page", "Page not found")
    w.check("unknown-url")
    return w


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("width", list(WIDTHS))
def test_every_page_at_laptop_and_phone_width(width: str, walk_server: str, browser: Browser) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob(f"{width}-*.png"):
        old.unlink()
    context = browser.new_context(viewport=WIDTHS[width])
    try:
        page = context.new_page()
        page.set_default_timeout(120_000)
        try:
            w = walk(page, walk_server, width)
        except Exception:
            page.screenshot(path=SHOTS / f"{width}-failed.png")  # where the walk stopped
            raise
    finally:
        context.close()
    assert len(w.seen) >= 16
    assert w.problems == [], "\n".join(w.problems)


# -- what the grids' canvas shows: through AppTest ------------------------------------------------

BAD_CELLS = {"None", "nan", "NaN", "<NA>", "NaT", "null"}


def shown_columns(table: Any) -> list[str]:
    """The columns a table shows: its column order if set, less the hidden ones."""
    frame = table.value
    order = list(table.proto.column_order) or [str(c) for c in frame.columns]
    config = json.loads(table.proto.columns or "{}")
    hidden = {name.removeprefix("col:name:") for name, c in config.items() if c.get("hidden")}
    return [c for c in order if c in frame.columns and c not in hidden]


def table_problems(at: AppTest, state: str) -> list[str]:
    """Each table that would show "None" (a missing value without a placeholder) or holds such text."""
    problems = [f"{state}: exception {e.value}" for e in at.exception]
    for i, table in enumerate(at.dataframe):
        frame = table.value
        placeholder = table.proto.placeholder if table.proto.HasField("placeholder") else None
        for column in shown_columns(table):
            values = frame[column]
            if values.isna().any() and (placeholder is None or placeholder in BAD_CELLS):
                problems.append(
                    f"{state}: table {i}, column {column!r} shows {placeholder!r} for a missing value"
                )
            words = {str(v) for v in values.dropna() if isinstance(v, str)}
            if words & BAD_CELLS:
                problems.append(f"{state}: table {i}, column {column!r} holds {sorted(words & BAD_CELLS)}")
    for metric in at.metric:
        if str(metric.value).strip() in BAD_CELLS:
            problems.append(f"{state}: metric {metric.label!r} reads {metric.value!r}")
    return problems


@pytest.mark.slow
def test_no_table_or_metric_of_any_page_shows_none(walk_runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk reads the grids' cells as copied (a missing value is blank there); this, what they draw."""
    monkeypatch.setenv("MNIST_LAB_CHECKPOINTS", str(walk_runs))
    st.cache_resource.clear()
    st.cache_data.clear()
    problems: list[str] = []
    seen: list[str] = []

    def visit(at: AppTest, state: str) -> AppTest:
        at.run()
        seen.append(f"{state}: {len(at.dataframe)} tables")
        problems.extend(table_problems(at, state))
        return at

    try:
        for page in ("pages/home.py", "pages/train.py", "pages/sweeps.py"):
            at = AppTest.from_file(str(APP), default_timeout=120)
            at.switch_page(page)
            visit(at, page)
        at = AppTest.from_file(str(APP), default_timeout=120)
        at.switch_page("pages/runs.py")
        at.session_state["runs_selected"] = [r.id for r in runs.list_runs(walk_runs)]
        monkeypatch.syspath_prepend(str(ROOT))  # as the app finds ui/ beside app.py
        from ui.runs_charts import VIEWS as all_views

        for view in all_views:
            at.session_state["runs_view"] = view
            visit(at, f"runs {view}")
        at = AppTest.from_file(str(APP), default_timeout=120)
        at.switch_page("pages/draw.py")
        at.run()
        url = "data:image/png;base64," + base64.b64encode(canvas_png(3)).decode()
        at.session_state["draw_canvas_0"] = {"drawing": {"raw": {"objects": [{}]}, "data": url}}
        at.session_state["draw_compare"] = True
        visit(at, "draw all models")
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()
    assert any(s.startswith("draw all models") and not s.endswith(" 0 tables") for s in seen), seen
    assert sum(int(s.rsplit(" ", 2)[1]) for s in seen) >= 10, seen  # the walk saw the tables it checks
    assert problems == [], "\n".join(problems)
