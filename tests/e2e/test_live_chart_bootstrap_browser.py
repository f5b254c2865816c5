"""The elements of one page run may be rendered in any order: each gets the chart's code (CI failure).

The chart's code (uPlot + ``live_chart.js``) comes once per browser session,
with the first element a page run draws (``ui.live_chart.LIB_KEY``). The Train
page draws two: the loss and accuracy, then the per-layer statistics. When the
browser rendered the second before the first, the second found no code, asked
Python for it and was never drawn: "Gradient norm" never appeared (2 runs of 3
of tests/e2e/test_live_chart_browser.py). The element's own JS
(``bootstrap.js``, as ``ui.live_chart.bootstrap`` serves it) runs here in a
blank Chromium page, called as Streamlit calls it.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Browser, Page

from mnist_core.train import ProgressEvent
from tests.support.browser import chromium
from ui.live_chart import bootstrap, learning_curve_view, library, payload

pytestmark = [pytest.mark.e2e]

# Streamlit calls the element's default export with its parent node, its data and a trigger setter.
PAGE = """<html><head><style>{css}</style></head><body><div id="a"></div><div id="b"></div>
<script type="module">
const boot = (await import("data:text/javascript," + encodeURIComponent({js}))).default;
window.asked = [];
window.cleanups = {{}};
window.draw = (id, data) => {{
  const parentElement = document.getElementById(id);
  const setTriggerValue = (name, value) => window.asked.push({{id, name, value}});
  window.cleanups[id] = boot({{parentElement, data, setTriggerValue}});
}};
window.ready = true;
</script></body></html>"""

# A timer set after the element's (1 s) with a longer delay fires after it (timers run in order of
# their deadlines): from then on, whatever the element would ask, it has asked.
PAST_THE_WAIT = "() => new Promise((done) => setTimeout(done, 1100))"
CHARTS = "id => document.querySelectorAll('#' + id + ' .mnist-live-chart').length"


def data(with_code: bool) -> dict:
    events = [
        ProgressEvent(
            kind="step", epoch=1, epochs=1, step=10 * (i + 1), total_steps=100, samples=640 * (i + 1),
            loss=1.0 / (i + 1), train_acc=0.8, lr=1e-3, elapsed_s=0.5 * (i + 1), samples_per_s=1280.0,
            eta_s=1.0,
        )
        for i in range(3)
    ]
    sent, _ = payload(None, "run-1", learning_curve_view(), tuple(events))
    if with_code:
        sent["lib"], sent["css"] = library()
    return sent


def open_page(browser: Browser) -> Page:
    _, css = library()
    page = browser.new_page()
    page.set_content(PAGE.format(css=css, js=json.dumps(bootstrap())))
    page.wait_for_function("() => window.ready === true")
    return page


def test_an_element_rendered_before_the_one_bringing_the_code_is_drawn_when_it_comes() -> None:
    with chromium() as browser:
        page = open_page(browser)
        page.evaluate("d => window.draw('b', d)", data(with_code=False))  # the layers element first
        assert page.evaluate(CHARTS, "b") == 0  # no code yet: nothing drawn...
        page.evaluate("d => window.draw('a', d)", data(with_code=True))  # ...until the first one comes
        assert page.evaluate(CHARTS, "a") == 1
        assert page.evaluate(CHARTS, "b") == 1, "the element that waited for the code was never drawn"
        # Nothing asked Python for the code it did get (no needless rerun), even after the wait.
        page.evaluate(PAST_THE_WAIT)
        assert page.evaluate("() => window.asked") == []


def test_an_element_that_no_code_comes_for_asks_python_for_it_once_and_a_removed_one_does_not() -> None:
    with chromium() as browser:
        page = open_page(browser)  # a new tab of an old session: Python thinks the browser has the code
        page.evaluate("d => window.draw('a', d)", data(with_code=False))
        page.evaluate("d => window.draw('b', d)", data(with_code=False))
        page.evaluate("() => window.cleanups.b()")  # b left the page before any code came
        page.evaluate(PAST_THE_WAIT)
        assert page.evaluate("() => window.asked") == [
            {"id": "a", "name": "need", "value": {"lib": True, "run": "run-1"}}
        ]
        page.evaluate("d => window.draw('a', d)", data(with_code=True))  # the rerun brings it
        assert page.evaluate(CHARTS, "a") == 1 and page.evaluate(CHARTS, "b") == 0
