"""The Runs page through AppTest, on a checkpoints folder of generated runs (one of them corrupt)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import torch
from browser_state import Browser
from streamlit.testing.v1 import AppTest

from mnist_core import archive, runs
from mnist_core.errors import RunNotFound
from tests.support.fakeruns import corrupt_run, make_fake_runs
from tests.support.saved import zip_of
from ui.runs_charts import VIEWS  # every view of the page's menu

PAGE = "pages/runs.py"
N_TEST = 200  # the generated dataset's test split (tests/conftest.py)


@pytest.fixture
def run_ids(runs_dir: Path) -> list[str]:
    """Five generated runs with small weights, and a corrupt folder beside them."""
    ids = make_fake_runs(runs_dir, 5, seed=11, n_test=N_TEST, weights=True, max_width=64)
    corrupt_run(runs_dir)
    return ids


def open_page(app_path: Path) -> AppTest:
    at = AppTest.from_file(str(app_path), default_timeout=30)
    at.switch_page(PAGE)
    return at.run()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def traces(at: AppTest, index: int = 0) -> list[dict]:
    return json.loads(at.get("plotly_chart")[index].proto.spec)["data"]


def names(at: AppTest) -> dict[str, str]:
    return {info.id: info.name for info in runs.list_runs()}


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_lists_every_run_and_shows_the_corrupt_one_as_broken(app_path, run_ids, runs_dir):
    at = ok(open_page(app_path))
    assert [t.value for t in at.title] == ["Runs"]
    table = at.dataframe[0].value
    assert sorted(table["id"]) == sorted(run_ids) and len(table) == 5
    assert {"test_accuracy", "train_time_s", "parameters", "flops", "co2_g", "tags", "notes"} <= set(table)
    broken = [e for e in at.expander if "broken" in e.label]
    assert broken and broken[0].label == "1 broken run folder (not listed)"
    assert "20260101-000000-mlp-broken-000000" in broken[0].markdown[0].value
    assert "not valid JSON" in broken[0].markdown[0].value
    assert "Download the table (CSV)" in [d.label for d in at.get("download_button")]
    # The newest completed runs are picked on a first visit, so charts show at once.
    assert at.multiselect(key="runs_selected").value and len(at.get("plotly_chart")) == 1


def test_selecting_two_runs_overlays_both_curves(app_path, run_ids):
    at = ok(open_page(app_path))
    pick = run_ids[:2]
    at.multiselect(key="runs_selected").set_value(pick)
    ok(at.run())
    expected = {names(at)[i] for i in pick}
    assert len(at.get("plotly_chart")) == 1  # loss and accuracy panels, one legend
    data = traces(at)
    assert {t["name"] for t in data} == expected
    assert len(data) == 8  # training and validation, loss and accuracy, per run
    assert sorted(t["name"] for t in data if t.get("showlegend") is not False) == sorted(expected)
    at.selectbox(key="runs_curve_x").set_value("elapsed_s")
    ok(at.run())
    assert "wall time" in json.dumps(json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["xaxis"])


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_renders_for_the_selection(app_path, run_ids, view):
    at = open_page(app_path)
    at.multiselect(key="runs_selected").set_value(run_ids)
    at.session_state["runs_view"] = view
    ok(at.run())
    assert not at.error, [e.value for e in at.error]
    if view == "Mistakes":
        assert at.get("image"), "the gallery shows the digits"
        at.selectbox(key="runs_gal_b").set_value(run_ids[1])
        ok(at.run())
        assert sum("gets wrong" in m.value for m in at.markdown) == 2
    else:
        assert at.get("plotly_chart")
    if view == "Accuracy vs cost":
        data = traces(at)
        assert data[-1]["name"] == "Pareto front" and "depth" in data[0]["hovertext"][0]


def test_filter_narrows_the_table_and_select_all_shown_picks_them(app_path, run_ids, runs_dir):
    runs.update_meta(run_ids[0], runs_dir, tags=["needle"])
    at = open_page(app_path)
    at.text_input(key="runs_search").set_value("needle")
    ok(at.run())
    assert list(at.dataframe[0].value["id"]) == [run_ids[0]]
    button(at, "Select the 1 shown").click()
    ok(at.run())
    assert at.multiselect(key="runs_selected").value == [run_ids[0]]
    button(at, "Clear").click()
    ok(at.run())
    assert at.multiselect(key="runs_selected").value == []
    assert "Pick runs above to compare them." in [i.value for i in at.info]


def test_rename_tag_and_annotate(app_path, run_ids, runs_dir):
    at = open_page(app_path)
    run_id = at.selectbox(key="runs_focus").value
    at.text_input(key=f"runs_name_{run_id}").set_value("my best run")
    at.multiselect(key=f"runs_tags_{run_id}").set_value(["keep", "brand-new"])
    at.text_area(key=f"runs_notes_{run_id}").set_value("wider helped")
    button(at, "Save").click()
    ok(at.run())
    assert any("Saved" in s.value for s in at.success)
    info = runs.load_run(run_id, runs_dir)
    assert info.name == "my best run" and info.meta["tags"] == ["brand-new", "keep"]
    assert info.meta["notes"] == "wider helped"
    row = at.dataframe[0].value.set_index("id").loc[run_id]
    assert row["name"] == "my best run" and row["notes"] == "wider helped"


def test_a_core_refusal_is_shown_as_an_error(app_path, run_ids, runs_dir):
    at = open_page(app_path)
    run_id = at.selectbox(key="runs_focus").value
    at.text_input(key=f"runs_name_{run_id}").set_value("   ")
    button(at, "Save").click()
    ok(at.run())
    assert [e.value for e in at.error] == ["A run name must be 1 to 200 characters."]


def test_delete_asks_for_confirmation(app_path, run_ids, runs_dir):
    at = open_page(app_path)
    victim = run_ids[0]
    at.multiselect(key="runs_selected").set_value([victim])
    ok(at.run())
    at.button(key="runs_delete").click()
    ok(at.run())
    assert (runs_dir / victim).is_dir()
    assert any("cannot be undone" in w.value for w in at.warning)
    at.button(key="runs_delete_no").click()
    ok(at.run())
    assert (runs_dir / victim).is_dir() and not any("cannot be undone" in w.value for w in at.warning)
    at.button(key="runs_delete").click()
    ok(at.run())
    at.button(key="runs_delete_yes").click()
    ok(at.run())
    assert not (runs_dir / victim).exists() and len(runs.list_runs(runs_dir)) == 4
    assert any("Deleted 1 run." in s.value for s in at.success)
    assert victim not in set(at.dataframe[0].value["id"])
    assert victim not in at.multiselect(key="runs_selected").value


def _upload(at: AppTest, data: bytes, name: str = "run.zip") -> AppTest:
    uploader = at.get("file_uploader")[0]
    uploader.set_value((name, data, "application/zip"))
    ok(at.run())
    at.button(key="runs_import").click()
    return ok(at.run())


def test_import_of_an_exported_run(app_path, run_ids, runs_dir, tmp_path):
    data = archive.export_run(run_ids[0], runs_dir)
    at = open_page(app_path)
    assert any(d.label == "Export this run (.zip)" for d in at.get("download_button"))
    at = _upload(at, data)
    assert any("Imported" in s.value for s in at.success), [e.value for e in at.error]
    assert len(at.dataframe[0].value) == 6 and len(runs.list_runs(runs_dir)) == 6
    assert at.get("file_uploader")[0].value is None  # a fresh uploader, so it is not imported twice


def _evil_zips(tmp_path: Path) -> dict[str, bytes]:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    pickled = io.BytesIO()
    torch.save({"1.weight": Payload()}, pickled)
    from mnist_core.config import RunConfig

    config = json.dumps(RunConfig(hidden=(8,)).to_dict()).encode()
    meta = json.dumps({"name": "evil", "status": "completed"}).encode()
    return {
        "a ../ path": zip_of({"config.json": config, "run.json": meta, "../escaped.json": b"{}"}),
        "a pickle payload": zip_of(
            {"config.json": config, "run.json": meta, "weights.pt": pickled.getvalue()}
        ),
        "an absurd width": zip_of(
            {
                "config.json": json.dumps(RunConfig().to_dict() | {"hidden": [10**9]}).encode(),
                "run.json": meta,
            }
        ),
        "JSON that is not an object": zip_of({"config.json": config, "run.json": b"[1, 2, 3]"}),
        "not a zip": b"hello",
    }


def test_malicious_imports_are_refused_and_write_nothing(app_path, run_ids, runs_dir, tmp_path):
    before = sorted(p.name for p in runs_dir.iterdir())
    at = open_page(app_path)
    expected = {
        "a ../ path": "'../escaped.json' is not a file of a run",
        "a pickle payload": "weights.pt cannot be loaded safely",
        "an absurd width": "hidden: 1000000000 is out of range",
        "JSON that is not an object": "run.json is not a JSON object",
        "not a zip": "Not a zip file",
    }
    for what, data in _evil_zips(tmp_path).items():
        at = _upload(at, data, f"{what}.zip")
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and errors[0].startswith("Not imported: "), (what, errors)
        assert expected[what] in errors[0], (what, errors)
        assert sorted(p.name for p in runs_dir.iterdir()) == before, what
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "escaped.json").exists() and not (runs_dir.parent / "escaped.json").exists()


@pytest.mark.parametrize("view", VIEWS)
def test_runs_without_results_do_not_break_any_view(app_path, runs_dir, view):
    from mnist_core.config import RunConfig

    writer = runs.RunWriter.create(RunConfig(hidden=(8,)), runs_dir)
    writer.finish("failed", error="RuntimeError: out of memory")
    at = open_page(app_path)
    at.multiselect(key="runs_selected").set_value([writer.id])
    at.session_state["runs_view"] = view
    ok(at.run())
    assert not at.error, [e.value for e in at.error]
    assert at.dataframe[0].value["status"].tolist() == ["failed"]


def test_the_mistakes_of_a_run_without_results_say_it_has_none(app_path, runs_dir):
    """Not "0 test digits it gets wrong": a failed run was never tested."""
    from mnist_core.config import RunConfig

    writer = runs.RunWriter.create(RunConfig(hidden=(8,)), runs_dir, name="died early")
    writer.finish("failed", error="RuntimeError: out of memory")
    at = open_page(app_path)
    at.multiselect(key="runs_selected").set_value([writer.id])
    at.session_state["runs_view"] = "Mistakes"
    ok(at.run())
    shown = [m.value for m in at.markdown] + [i.value for i in at.info]
    assert not any("gets wrong" in text for text in shown), shown
    assert any("has no test results" in i.value and "died early" in i.value for i in at.info)


def test_empty_checkpoints_folder_says_so(app_path, runs_dir):
    at = ok(open_page(app_path))
    assert any("No runs in" in i.value for i in at.info)
    assert at.get("file_uploader"), "import is offered even with no runs"


# -- the selection while runs change under it (issue 21, item 2) ---------------------------
#
# A browser keeps the label of a picked option (a "chip") and sends that label back on every
# later interaction, until the server sends it new ones (``set_value``) or the user picks
# again. AppTest instead re-formats the value with the current ``format_func`` before each
# run, so it never sends a stale label and never met the TypeError users saw. ``Browser``
# sends what Chromium would.


SELECT = "runs_selected"


def open_in_browser(app_path: Path, browser: Browser, selected: list[str]) -> AppTest:
    at = AppTest.from_file(str(app_path), default_timeout=30)
    at.switch_page(PAGE)
    ok(browser.run(at))
    at.multiselect(key=SELECT).set_value(selected)
    return ok(browser.run(at))


def label(run_id: str, name: str) -> str:
    return f"{name} · {run_id[-6:]}"


def test_rename_a_selected_run_updates_its_chip_and_next_click_works(app_path, run_ids, runs_dir, browser):
    picked = run_ids[:3]
    at = open_in_browser(app_path, browser, picked)
    at.selectbox(key="runs_focus").set_value(picked[1])
    ok(browser.run(at))
    at.text_input(key=f"runs_name_{picked[1]}").set_value("renamed while picked")
    button(at, "Save").click()
    ok(browser.run(at))
    assert label(picked[1], "renamed while picked") in browser.chips(at, SELECT)  # at once, no reload
    at.checkbox(key="runs_desc").uncheck()  # any next click
    ok(browser.run(at))
    ok(browser.run(at))
    assert sorted(at.multiselect(key=SELECT).value) == sorted(picked)
    assert sorted(browser.chips(at, SELECT)) == sorted(label(i, names(at)[i]) for i in picked)
    assert at.selectbox(key="runs_focus").value == picked[1]  # the edited run stays in the form


def test_a_selected_run_deleted_outside_the_app_leaves_the_selection(app_path, run_ids, runs_dir, browser):
    import shutil

    picked = run_ids[:3]
    at = open_in_browser(app_path, browser, picked)
    shutil.rmtree(runs_dir / picked[0])  # another tab, or the CLI
    at.checkbox(key="runs_desc").uncheck()
    ok(browser.run(at))
    assert at.multiselect(key=SELECT).value == picked[1:]
    assert browser.chips(at, SELECT) == [label(i, names(at)[i]) for i in picked[1:]]
    runs.update_meta(picked[1], runs_dir, name="renamed by the CLI")
    ok(browser.run(at))
    ok(browser.run(at))
    assert browser.chips(at, SELECT) == [label(i, names(at)[i]) for i in picked[1:]]


def test_deleting_the_selected_runs_on_the_page_then_clicking_on(app_path, run_ids, runs_dir, browser):
    picked = run_ids[:2]
    at = open_in_browser(app_path, browser, picked)
    at.button(key="runs_delete").click()
    ok(browser.run(at))
    at.button(key="runs_delete_yes").click()
    ok(browser.run(at))
    assert at.multiselect(key=SELECT).value == [] and browser.chips(at, SELECT) == []
    at.checkbox(key="runs_desc").uncheck()
    ok(browser.run(at))
    assert not any(i in set(at.dataframe[0].value["id"]) for i in picked)


def test_tag_a_selected_run_then_filter_by_the_tag(app_path, run_ids, runs_dir, browser):
    picked = run_ids[:2]
    at = open_in_browser(app_path, browser, picked)
    at.selectbox(key="runs_focus").set_value(picked[0])
    ok(browser.run(at))
    at.multiselect(key=f"runs_tags_{picked[0]}").set_value(["fresh-tag"])
    button(at, "Save").click()
    ok(browser.run(at))
    at.multiselect(key="runs_tags").set_value(["fresh-tag"])  # filter the table by the new tag
    ok(browser.run(at))
    assert list(at.dataframe[0].value["id"]) == [picked[0]]
    assert sorted(at.multiselect(key=SELECT).value) == sorted(picked)  # a filter does not unpick
    assert sorted(browser.chips(at, SELECT)) == sorted(label(i, names(at)[i]) for i in picked)


def test_import_while_runs_are_selected(app_path, run_ids, runs_dir, browser):
    picked = run_ids[:2]
    data = archive.export_run(run_ids[0], runs_dir)
    at = open_in_browser(app_path, browser, picked)
    at.get("file_uploader")[0].set_value(("run.zip", data, "application/zip"))
    ok(browser.run(at))
    at.button(key="runs_import").click()
    ok(browser.run(at))
    assert any("Imported" in s.value for s in at.success)
    ok(browser.run(at))
    assert sorted(at.multiselect(key=SELECT).value) == sorted(picked)
    assert sorted(browser.chips(at, SELECT)) == sorted(label(i, names(at)[i]) for i in picked)


def test_the_confusion_picker_tells_runs_with_the_same_name_apart(app_path, run_ids, runs_dir, browser):
    for run_id in run_ids[:3]:
        runs.update_meta(run_id, runs_dir, name="same name")
    at = open_in_browser(app_path, browser, run_ids[:3])
    at.session_state["runs_view"] = "Confusion"
    ok(browser.run(at))
    at.multiselect(key="runs_conf_runs").set_value([run_ids[2]])
    ok(browser.run(at))
    assert at.multiselect(key="runs_conf_runs").value == [run_ids[2]]
    assert len(set(at.multiselect(key="runs_conf_runs").options)) == 3


def test_the_mistakes_view_keeps_its_runs_when_one_is_renamed(app_path, run_ids, runs_dir, browser):
    picked = run_ids[:3]
    at = open_in_browser(app_path, browser, picked)
    at.session_state["runs_view"] = "Mistakes"
    ok(browser.run(at))
    at.selectbox(key="runs_gal_a").set_value(picked[2])
    at.selectbox(key="runs_gal_b").set_value(picked[1])
    ok(browser.run(at))
    runs.update_meta(picked[2], runs_dir, name="renamed elsewhere")
    runs.update_meta(picked[1], runs_dir, name="also renamed")
    ok(browser.run(at))
    ok(browser.run(at))
    kept = (at.selectbox(key="runs_gal_a").value, at.selectbox(key="runs_gal_b").value)
    assert kept == (picked[2], picked[1])
    assert browser.shown[at.selectbox(key="runs_gal_a").id] == label(picked[2], "renamed elsewhere")
    # One short caption line a digit ("#1014: 6 →" over "5" was two at 72 px), explained under the gallery.
    shown = [c for image in at.image for c in image.captions]
    assert shown and all(re.fullmatch(r"#\d+: \d→\d / \d", c) for c in shown), shown[:3]
    assert any(c.value.startswith("Under each digit: its test index") for c in at.caption)


def test_the_edit_form_follows_when_its_run_is_unpicked(app_path, run_ids, runs_dir, browser):
    """The "Run" picker offers the selected runs; when its run leaves them, the browser is told."""
    at = open_in_browser(app_path, browser, run_ids[:3])
    focus = at.selectbox(key="runs_focus")
    other = next(i for i in run_ids[:3] if i != focus.value)
    assert browser.shown[focus.id] == label(focus.value, names(at)[focus.value])
    at.multiselect(key=SELECT).set_value([other])
    ok(browser.run(at))
    assert at.selectbox(key="runs_focus").value == other
    assert browser.shown[focus.id] == label(other, names(at)[other])  # not the old run's label


def test_a_runs_details_are_read_once_per_stamp(app_path: Path, runs_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The confusion and mistakes views read run.json once per folder stamp, not on every rerun.

    A helper slipped in between ``details`` and its ``st.cache_data`` (which then cached the
    helper's message instead, and read the run on every rerun).
    """
    from ui import runs_views

    reads: list[str] = []

    def load_run(run_id: str, runs_dir: object = None) -> object:
        reads.append(run_id)
        raise RunNotFound(run_id)

    monkeypatch.setattr(runs, "load_run", load_run)
    first = runs_views.details(str(runs_dir), "gone", 1)
    assert runs_views.details(str(runs_dir), "gone", 1) == first and "error" in first
    assert reads == ["gone"]
    runs_views.details(str(runs_dir), "gone", 2)  # the folder changed: read again
    assert reads == ["gone", "gone"]
