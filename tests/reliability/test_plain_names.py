"""A run's name is shown as typed on every page, never read as Markdown (issue 29, item 8).

Names come from users and from imported zips. Streamlit renders messages,
captions, subheaders and button labels as Markdown, so a name such as
``[click](http://evil) :red[x] **b**`` became a link, red text and bold
in the Runs page's "Imported ..." message. Each test puts such a name where a
page shows it and parses every Markdown source that holds it: the name must
sit whole inside a code span, with no link anywhere.
"""

from __future__ import annotations

import pytest
from app_helpers import canvas_png, inject, no_exception, open_page
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from mnist_core import archive, runs
from tests.support.fakeruns import make_fake_runs

EVIL = "[click](http://evil) :red[x] **b** :fire: $x$ <b>y</b>"
MARKDOWN_KINDS = ("markdown", "caption", "info", "success", "warning", "error", "subheader", "title")
PARSER = MarkdownIt("commonmark")


def markdown_sources(at: AppTest) -> list[str]:
    """Every text on the page that Streamlit renders as Markdown, labels included."""
    sources = [str(el.value) for kind in MARKDOWN_KINDS for el in at.get(kind)]
    sources += [b.label for b in at.button] + [e.label for e in at.expander]
    return sources


def code_spans_and_text(source: str) -> tuple[list[str], list[str], bool]:
    """The code spans, the plain text pieces, and whether there is a link, as CommonMark parses it."""
    spans: list[str] = []
    text: list[str] = []
    link = False
    for block in PARSER.parse(source):
        for token in block.children or []:
            if token.type == "code_inline":
                spans.append(token.content)
            elif token.type in {"text", "html_inline"}:
                text.append(token.content)
            link = link or token.type == "link_open"
    return spans, text, link


def assert_plain(at: AppTest, name: str = EVIL, expected: int = 1) -> None:
    holding = [s for s in markdown_sources(at) if "evil" in s]
    assert len(holding) >= expected, markdown_sources(at)
    for source in holding:
        spans, text, link = code_spans_and_text(source)
        assert not link, source
        assert name in spans, source
        assert not any("evil" in t or ":red[" in t for t in text), source


@pytest.mark.parametrize("name", [EVIL, "`tick` and ``two``", "`", " spaced ", "line\nbreak", "plain name"])
def test_literal_is_a_code_span_holding_the_name(app_path, name):
    from ui.shared import literal

    spans, text, link = code_spans_and_text(f"Saved {literal(name)}.")
    assert spans == [" ".join(name.splitlines())] and not link
    assert "".join(text) == "Saved ."


def _evil_run(runs_dir) -> str:
    run_id = make_fake_runs(runs_dir, 1, seed=3, n_test=200, weights=True, max_width=32)[0]
    runs.update_meta(run_id, runs_dir, name=EVIL)
    return run_id


def test_runs_page_import_and_delete_show_the_name_as_typed(app_path, runs_dir):
    data = archive.export_run(_evil_run(runs_dir), runs_dir)
    for child in runs_dir.iterdir():
        runs.delete_run(child.name, runs_dir)
    at = open_page(app_path, "pages/runs.py")
    at.get("file_uploader")[0].set_value(("run.zip", data, "application/zip"))
    at.run()
    at.button(key="runs_import").click()
    at.run()
    no_exception(at)
    assert any("Imported" in s.value for s in at.success), [e.value for e in at.error]
    assert_plain(at)
    at.button(key="runs_delete").click()  # the imported run is selected: the newest completed
    at.run()
    no_exception(at)
    assert any("cannot be undone" in w.value for w in at.warning)
    assert_plain(at)


@pytest.mark.parametrize("view", ["Accuracy vs cost", "Mistakes", "Confusion"])
def test_runs_page_views_show_the_name_as_typed(app_path, runs_dir, view):
    run_id = _evil_run(runs_dir)
    runs.RunWriter.create(runs.load_run(run_id, runs_dir).config, runs_dir).finish("failed", error="x")
    failed = next(i.id for i in runs.list_runs(runs_dir) if i.status == "failed")
    runs.update_meta(failed, runs_dir, name=EVIL)
    at = open_page(app_path, "pages/runs.py")
    at.multiselect(key="runs_selected").set_value([run_id, failed])
    at.session_state["runs_view"] = view
    at.run()
    no_exception(at)
    assert_plain(at)


def test_home_and_train_pages_show_the_name_as_typed(app_path, runs_dir):
    _evil_run(runs_dir)
    at = open_page(app_path)
    no_exception(at)
    assert_plain(at)
    at = open_page(app_path, "pages/train.py")
    no_exception(at)
    assert_plain(at)
    next(b for b in at.button if b.label == "Show").click()
    at.run()
    no_exception(at)
    assert_plain(at, expected=2)


def test_draw_page_shows_the_name_as_typed(app_path, runs_dir):
    _evil_run(runs_dir)
    at = open_page(app_path, "pages/draw.py")
    at = inject(at, canvas_png(3))
    no_exception(at)
    assert_plain(at)


HTML_NAME = '<a href="http://evil">x</a> <span style="color:red">y</span>'


def test_chart_labels_show_a_name_as_typed(app_path, tmp_path):
    """Plotly reads ``<a href>``, ``<b>`` and ``<span style>`` in trace names, hovers and ticks."""
    from mnist_core import compare
    from ui import runs_charts

    make_fake_runs(tmp_path, 1)
    row = {**compare.table(runs.list_runs(tmp_path))[0], "name": HTML_NAME}
    figures = [
        runs_charts.bars_figure([row], "test_accuracy"),
        runs_charts.cost_figure([row], "train_time_s", front=[0]),
        runs_charts.confusion_figure([[1, 0], [0, 1]], ["0", "1"], f"Confusion: {HTML_NAME}"),
    ]
    for fig in figures:
        shown = str(fig.to_dict())  # to_json() would escape "<" itself
        assert "<a href" not in shown and "<span" not in shown, shown[:400]
        assert "&lt;a href" in shown
