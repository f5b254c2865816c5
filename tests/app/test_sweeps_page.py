"""The Sweeps page through AppTest: the study table from runs, a grid sweep, stop and resume."""

from __future__ import annotations

from pathlib import Path

import pytest
from job_gate import JobGate
from streamlit.testing.v1 import AppTest

from mnist_core import study, sweeps
from mnist_core.config import RunConfig
from mnist_core.jobs import JobRegistry
from mnist_core.runs import RunWriter, list_runs
from mnist_core.sizing import SplitSizes
from tests.support import waiting
from tests.support.apptest import Sent

PAGE = "pages/sweeps.py"
SIZES = SplitSizes(900, 100, True)


def open_page(app_path: Path) -> AppTest:
    at = AppTest.from_file(str(app_path), default_timeout=60)
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def wait_for(condition, timeout_s: float = 90) -> None:
    waiting.wait_for(condition, timeout_s, poll_s=0.05)


def saved_run(cfg, accuracy: float, train_s: float, runs_dir: Path, tags: tuple[str, ...] = ()) -> str:
    writer = RunWriter.create(cfg, runs_dir, tags=tags)
    summary = {"test_accuracy": accuracy, "train_time_s": train_s, "time_per_epoch_s": train_s / 2,
               "parameters": 407050, "macs": 406528, "samples_per_s": 30000.0}
    writer.finish("completed", summary)
    return writer.id


def test_the_study_table_shows_the_published_figures_beside_ours(
    app_path: Path, runs_dir: Path, registry: JobRegistry
) -> None:
    base_row = next(r for r in study.ROWS if r.label == "MLP 784-512-10")
    earlier = sweeps.create([base_row.config], "Reproduce the study", runs_dir, axes={}, kind="study")
    run_id = saved_run(base_row.config, 0.9712, 3.8, runs_dir, tags=(earlier.tag,))
    grid = sweeps.create([base_row.config], "an unrelated grid", runs_dir)
    saved_run(base_row.config, 0.50, 99.0, runs_dir, tags=(grid.tag,))  # newer, same settings: not ours
    at = open_page(app_path)
    frame = at.dataframe[0].value
    assert {"published_accuracy_pct", "ours_accuracy_pct", "speedup", "published_flops",
            "ours_flops_2x_macs", "ours_macs_fvcore", "source"} <= set(frame.columns)
    assert len(frame) == len(study.ROWS)
    mine = frame[frame["model"] == "MLP 784-512-10"]
    assert list(mine["published_accuracy_pct"]) == [96.2, 96.0]  # width and depth tables
    assert list(mine["ours_accuracy_pct"].round(2)) == [97.12, 97.12]  # the study's run, not the grid's
    assert list(mine["source"]) == [f"runs?run={run_id}"] * 2  # where the figures come from
    assert mine["speedup"].iloc[0] == pytest.approx(4.52 / 3.8)
    assert frame["ours_accuracy_pct"].notna().sum() == 2
    assert any("2 of 17 rows trained" in s.value for s in at.subheader)
    # Missing figures show a dash, not the word "None".
    assert at.dataframe[0].proto.placeholder == "—"
    captions = " ".join(c.value for c in at.caption)
    assert "batch-size-1 rows take about" in captions and "hand formula" in captions
    # A total time for the runs the button trains: each row from its own configuration.
    assert "The 14 runs take about" in captions and "in all" in captions
    # One click queues what the table lacks, without the batch-1 rows when they are left out: the
    # study's own run of MLP 784-512-10 keeps its figures (the grid's run of it does not count).
    at.checkbox(key="sweeps_batch_one").uncheck().run()
    assert at.button(key="sweeps_start_study").label == "Train the 12 missing runs"
    assert at.button(key="sweeps_again_study").label == "Train all 13 again"
    assert "1 of the 13 runs is trained already" in " ".join(c.value for c in at.caption)
    at.button(key="sweeps_start_study").click().run()
    assert not at.exception, [e.value for e in at.exception]
    (sweep,) = [s for s in sweeps.list_sweeps(runs_dir) if len(s.configs) == 12]
    assert sweep.kind == "study" and base_row.config not in sweep.configs
    jobs = registry.jobs()
    assert len(jobs) == 12 and all(sweep.tag in j.tags for j in jobs)
    assert {j.config for j in jobs} == set(study.configs(batch_one=False)) - {base_row.config}
    # While it trains, nothing more can be queued beside it (the runs would be trained twice).
    assert at.button(key="sweeps_start_study").disabled and at.button(key="sweeps_again_study").disabled
    assert "The study is training" in " ".join(c.value for c in at.caption)
    for job in jobs:
        job.stop()


def test_a_stopped_study_is_resumed_rather_than_its_runs_started_afresh(
    app_path: Path, runs_dir: Path, registry: JobRegistry
) -> None:
    depth = study.configs(["depth"])
    stopped = sweeps.create(depth, "Reproduce the study", runs_dir, axes={}, kind="study")
    saved_run(depth[0], 0.97, 3.0, runs_dir, tags=(stopped.tag,))  # one done, two never started
    at = open_page(app_path)
    at.multiselect(key="sweeps_experiments").set_value(["depth"]).run()
    assert at.button(key="sweeps_resume_study").label == "Resume the stopped study (2 runs left)"
    assert at.button(key="sweeps_again_study").label == "Train all 3 again"
    assert "A study reproduction was stopped before its end" in " ".join(c.value for c in at.caption)
    at.button(key="sweeps_resume_study").click().run()
    assert not at.exception, [e.value for e in at.exception]
    jobs = registry.jobs()
    assert {j.config for j in jobs} == set(depth[1:]) and all(stopped.tag in j.tags for j in jobs)
    assert [s.id for s in sweeps.list_sweeps(runs_dir)] == [stopped.id]  # no new sweep
    for job in jobs:
        job.stop()


def test_a_fresh_study_trains_every_row_and_seeds_per_row_add_only_the_new_seeds(
    app_path: Path, runs_dir: Path, registry: JobRegistry
) -> None:
    at = open_page(app_path)
    at.multiselect(key="sweeps_experiments").set_value(["depth"]).run()
    assert at.button(key="sweeps_start_study").label == "Reproduce the study (3 runs)"
    assert "The 3 runs take about" in " ".join(c.value for c in at.caption)
    # The depth rows trained once (by a study): nothing is missing, so the button measures again.
    earlier = sweeps.create(study.configs(["depth"]), "Reproduce the study", runs_dir, axes={}, kind="study")
    for cfg in study.configs(["depth"]):
        saved_run(cfg, 0.97, 3.0, runs_dir, tags=(earlier.tag,))
    at.run()
    assert at.button(key="sweeps_start_study").label == "Train all 3 again"
    assert "All 3 runs of the chosen rows are trained" in " ".join(c.value for c in at.caption)
    assert set(at.dataframe[0].value["noise_verdict"]) == {"one seed: needs 2+ seeds a row to tell"}
    # Three seeds a row: seeds 1 and 2 of each row are the missing ones.
    at.number_input(key="sweeps_study_repeats").set_value(3).run()
    assert at.button(key="sweeps_start_study").label == "Train the 6 missing runs"
    at.button(key="sweeps_start_study").click().run()
    assert not at.exception, [e.value for e in at.exception]
    jobs = registry.jobs()
    assert sorted((j.config.hidden, j.config.seed) for j in jobs) == sorted(
        (c.hidden, seed) for c in study.configs(["depth"]) for seed in (1, 2)
    )
    for job in jobs:
        job.stop()


def test_nothing_is_timed_beside_a_running_run_and_the_sweeps_progress_never_waits_for_it(
    app_path: Path, runs_dir: Path, registry: JobRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A study clicked before its estimates were ready: they timed 13 models beside its first run.

    That slowed the run whose time the table reports, and the progress rows waited ~5 s for them.
    """
    from mnist_core import estimate

    point = RunConfig(hidden=(16,), batch_size=4, epochs=30)
    gate = JobGate(monkeypatch, point)  # it trains until the test is done with the page
    sweeps.launch([point], "running grid", registry, runs_dir=runs_dir)
    gate.wait_held()
    timed: list[RunConfig] = []
    monkeypatch.setattr(estimate, "probe", lambda cfg, macs=None: timed.append(cfg))  # any call is a failure
    calls: list[str] = []

    def recorded(name: str):
        original = getattr(sweeps, name)

        def call(*args, **kwargs):
            timing = len(args) > 3 or kwargs.get("probe_fn") is not None  # the grid's estimate never times
            calls.append(name if name == "live" or timing else "past runs only")
            return original(*args, **kwargs)

        return call

    for name in ("live", "time_estimate"):  # the sweeps' progress rows, the study's estimates
        monkeypatch.setattr(sweeps, name, recorded(name))
    try:
        at = open_page(app_path)
    finally:
        gate.release()
    assert timed == []
    captions = " ".join(c.value for c in at.caption)
    assert "The time of the 15 runs is not known yet: not timed while a run trains here" in captions
    assert "Cannot estimate the batch-size-1 rows: not timed while a run trains here" in captions
    assert "once nothing trains." in captions and ".." not in captions  # each a sentence, one full stop
    assert any("running grid" in m.value and "0/1 runs done" in m.value for m in at.markdown)
    # The progress rows were drawn before the estimates were worked out: they never wait for them.
    assert calls.index("live") < calls.index("time_estimate") and calls.count("time_estimate") == 2, calls


def row_text(at: AppTest, name: str) -> str:
    """A saved sweep's row, its name unquoted: "name · 0/1 runs done · running"."""
    (row,) = [m.value for m in at.markdown if m.value.startswith(f"`{name}` · ")]
    return row.replace(f"`{name}`", name, 1)


def polling(sent: Sent) -> list[float]:
    """The intervals of the fragments that rerun on a timer, from the page run ``sent`` recorded."""
    intervals, _ = sent.by_fragment()
    return sorted(i for i in intervals.values() if i > 0)


def idle_poll_s() -> float:
    """How often an idle page looks for a sweep or run started elsewhere (the CLI, another tab)."""
    from ui.train_jobs import IDLE_POLL_S  # ui/ is on the path once the registry fixture has run

    return IDLE_POLL_S


def test_a_run_that_ends_while_the_page_is_drawn_is_seen_ending_not_left_running(
    app_path: Path, runs_dir: Path, registry: JobRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CI run caught a stopped study whose row read "running", with no Stop button, for good.

    The page listed the runs while the stopped run was still ending, then asked the registry
    whether the sweep had jobs once it had ended: the rows stopped polling with the old listing.
    Reproduced here in that order: the job ends between the listing and the rest of the page run.
    """
    from mnist_core import runs as core_runs

    point = RunConfig(hidden=(16,), batch_size=4, epochs=30)
    gate = JobGate(monkeypatch, point)  # it trains until the listing below lets it stop
    sweeps.launch([point], "ending grid", registry, runs_dir=runs_dir)
    gate.wait_held()
    (job,) = registry.jobs()
    try:
        at = open_page(app_path)
    except BaseException:
        gate.release()
        raise
    assert row_text(at, "ending grid") == "ending grid · 0/1 runs done · running"
    original = core_runs.scan_runs

    def list_then_end(*args, **kwargs):
        listed = original(*args, **kwargs)
        monkeypatch.setattr(core_runs, "scan_runs", original)  # once: the page's listing
        job.stop()
        gate.release()
        assert registry.wait(timeout=60)  # ended, and its folder says "stopped"
        return listed

    monkeypatch.setattr(core_runs, "scan_runs", list_then_end)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    listed = core_runs.list_runs(runs_dir)
    assert [r.status for r in listed] == ["stopped"] and job.state == "stopped"
    assert row_text(at, "ending grid") == "ending grid · 0/1 runs done · stopped"
    assert not any("another process" in c.value for c in at.caption)
    assert at.button(key=f"sweeps_resume_{sweeps.list_sweeps(runs_dir)[0].id}")
    sent = Sent(monkeypatch)
    sent.run(at)
    assert polling(sent) == [idle_poll_s()]  # it has seen the run end: only the idle watch is left


def test_a_sweep_trained_by_another_process_is_followed_until_its_run_ends(
    app_path: Path, runs_dir: Path, registry: JobRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """None of its runs is in this server's queue: its run folder says "running" (`sweep` in a shell)."""
    row = next(r for r in study.ROWS if r.label == "MLP 784-512-10")
    other = sweeps.create([row.config], "Reproduce the study", runs_dir, axes={}, kind="study")
    writer = RunWriter.create(row.config, runs_dir, tags=(other.tag,))  # locked, as by a live process
    sent = Sent(monkeypatch)
    at = AppTest.from_file(str(app_path), default_timeout=60)
    at.switch_page(PAGE)
    sent.run(at)
    assert not at.exception, [e.value for e in at.exception]
    assert row_text(at, "Reproduce the study") == "Reproduce the study · 0/1 runs done · running"
    assert any("training in another process" in c.value for c in at.caption)
    assert polling(sent) == [1.0, 1.0]  # the study table and the sweeps' rows follow it
    writer.finish("stopped")
    sent.run(at)
    assert row_text(at, "Reproduce the study") == "Reproduce the study · 0/1 runs done · stopped"
    assert polling(sent) == [idle_poll_s()]  # no longer the rows nor the table: a watch for new sweeps
    assert not registry.jobs()


def tab_index(at: AppTest) -> int:
    """The tab the server tells the browser to show (st.tabs with a key track it)."""
    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None and proto.DESCRIPTOR.name == "Block" and proto.HasField("tab_container"):
            yield proto.tab_container.default_tab_index
        for child in getattr(node, "children", {}).values():
            yield from walk(child)

    (index,) = walk(at._tree)
    return index


def test_a_grid_sweep_runs_from_the_page_stops_resumes_and_charts(
    app_path: Path, runs_dir: Path, registry: JobRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_point = sweeps.grid_configs(RunConfig(epochs=30), sweeps.GridSpec(depth=(1,), width=(16,),
                                                                            batch_size=(4,)))[0]
    gate = JobGate(monkeypatch, first_point)  # it cannot finish before Stop is clicked
    at = open_page(app_path)
    assert tab_index(at) == 0
    at.session_state["sweeps_tab"] = "Grid sweep"  # what a click on the tab sets
    at.multiselect(key="sweeps_depths").set_value([1, 2])
    at.multiselect(key="sweeps_widths").set_value([16])
    at.multiselect(key="sweeps_batches").set_value([4])
    at.number_input(key="sweeps_epochs").set_value(30)
    at.text_input(key="sweeps_name").set_value("page grid")
    at.run()
    start = next(b for b in at.button if b.label.startswith("Start the sweep"))
    assert start.label == "Start the sweep (2 runs)"
    start.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [m.value for m in at.success] == ["Queued 2 runs of `page grid`."]  # the callback's message
    (sweep,) = sweeps.list_sweeps(runs_dir)
    first = registry.jobs()[0]
    gate.wait_held()
    assert first.config == first_point and first.state == "running"
    at.run()
    assert not at.success  # shown once
    assert any("page grid" in m.value and "0/2 runs done" in m.value for m in at.markdown)
    assert any("page grid" in m.value and "· running" in m.value for m in at.markdown)
    # Its running run's learning curves, live (ui/live_chart: updated in place, zoom kept).
    assert [c.key for c in at.get("bidi_component")] == [f"sweeps_live_{first.id}"]
    at.button(key=f"sweeps_stop_{sweep.id}").click().run()
    gate.release()
    assert [m.value for m in at.info if m.value.startswith("Stopping")] == [
        "Stopping `page grid` (2 runs); finished runs are kept, Resume continues it."
    ]
    assert tab_index(at) == 1  # still on the Grid sweep tab after Stop and its message
    assert registry.wait(timeout=60)
    at.run()
    assert [p.state for p in sweeps.points(sweep, list_runs(runs_dir))] == ["resumable", "todo"]
    # The page and `sweep --list` say the same word for it.
    assert any("page grid" in m.value and "0/2 runs done · stopped" in m.value for m in at.markdown)
    assert sweeps.progress(sweep, list_runs(runs_dir), SIZES).status == "stopped"
    at.button(key=f"sweeps_resume_{sweep.id}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    resumed = registry.jobs()[2:]
    assert [j.resume_id is not None for j in resumed] == [True, False]
    assert resumed[0].resume_id == sweeps.points(sweep, list_runs(runs_dir))[0].run.id
    for job in resumed:
        job.stop()
    assert registry.wait(timeout=60)


def test_a_finished_sweep_shows_lines_heatmap_and_noise(
    app_path: Path, runs_dir: Path, registry: JobRegistry, synthetic_data_dir: Path
) -> None:
    base = RunConfig(epochs=1, batch_size=128)
    configs = sweeps.grid_configs(base, sweeps.GridSpec(depth=(1, 2), width=(16, 32), repeats=2))
    sweep = sweeps.create(configs, "charted", runs_dir)
    sweeps.submit(sweep, registry, [], runs_dir=runs_dir, data_root=synthetic_data_dir)
    assert registry.wait(timeout=180)
    at = open_page(app_path)
    assert any("charted" in m.value and "8/8 runs done" in m.value for m in at.markdown)
    charts = at.get("plotly_chart")
    assert len(charts) == 3  # accuracy against depth, against width, and the depth x width heatmap
    captions = " ".join(c.value for c in at.caption)
    assert "Seed-to-seed noise" in captions
    assert len(at.dataframe) >= 3  # the study table and one steps table per axis


def test_the_ray_option_shows_only_when_ray_is_installed(
    app_path: Path, registry: JobRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mnist_core import raytrials

    monkeypatch.setattr(raytrials, "ray_available", lambda: False)
    at = open_page(app_path)
    assert not [c for c in at.checkbox if c.key == "sweeps_ray"]
    monkeypatch.setattr(raytrials, "ray_available", lambda: True)
    at = open_page(app_path)
    assert [c.label for c in at.checkbox if c.key == "sweeps_ray"] == ["Run the trials on a Ray cluster"]


@pytest.mark.slow
def test_a_grid_sweep_runs_on_a_local_ray_from_the_page(
    app_path: Path, runs_dir: Path, registry: JobRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-ray.txt")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    at = open_page(app_path)
    at.multiselect(key="sweeps_depths").set_value([1])
    at.multiselect(key="sweeps_widths").set_value([16, 32])
    at.multiselect(key="sweeps_batches").set_value([256])
    at.checkbox(key="sweeps_ray").check().run()
    next(b for b in at.button if b.label.startswith("Start the sweep")).click().run()
    assert not at.exception, [e.value for e in at.exception]
    (sweep,) = sweeps.list_sweeps(runs_dir)
    driver = sweeps.ray_task(sweep, registry)  # the sweep's driver is a job of the page's one registry
    assert driver is not None and driver.join(timeout=240), "the sweep's driver on Ray did not end"
    assert driver.state == "completed" and driver.error is None
    assert [p.state for p in sweeps.points(sweep, list_runs(runs_dir))] == ["done", "done"]
    assert registry.jobs() == []  # nothing went through the local queue
    at.run()
    assert any("2/2 runs done" in m.value for m in at.markdown)


def test_the_heatmap_has_one_even_cell_per_swept_value() -> None:
    from ui import sweep_view

    # Depth 1, 2, 3 and widths 16, 128, 1024 (uneven steps): each value is a category with its own cell.
    rows = [{"id": f"r{d}-{w}", "state": "done", "depth": d, "width": w, "test_accuracy": 0.9}
            for d in (1, 2, 3) for w in (16, 128, 1024)]
    rows.append({"id": "todo", "state": "todo", "depth": 4, "width": 16, "test_accuracy": None})
    fig = sweep_view.heatmap_figure(rows, "test_accuracy", "depth", "width")
    assert fig.layout.xaxis.type == "category" and fig.layout.yaxis.type == "category"
    assert list(fig.layout.xaxis.categoryarray) == ["1", "2", "3"]
    assert list(fig.layout.yaxis.categoryarray) == ["16", "128", "1024"]
    assert list(fig.data[0].x) == ["1", "2", "3"] and list(fig.data[0].y) == ["16", "128", "1024"]
    lr = sweep_view.heatmap_figure(
        [{"id": f"r{v}", "state": "done", "lr": v, "depth": 1, "test_accuracy": 0.9} for v in (1e-4, 1e-3)],
        "test_accuracy", "lr", "depth")
    assert list(lr.layout.xaxis.categoryarray) == ["0.0001", "0.001"]


def test_the_lines_have_a_tick_at_each_swept_value_and_no_other() -> None:
    from ui import sweep_view

    cells = [sweeps.Cell(d, 0.9, None, 1, ("r",)) for d in (1, 2)]
    fig = sweep_view.lines_figure(sweeps.Effect("depth", "test_accuracy", {"all": cells}, []))
    assert list(fig.layout.xaxis.tickvals) == [1, 2]  # not 1, 1.5, 2


def test_a_budgeted_search_starts_from_the_page_as_the_sweeps_ray_driver(
    app_path: Path, runs_dir: Path, registry: JobRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mnist_core import raytrials, search

    monkeypatch.setattr(raytrials, "ray_available", lambda: True)
    ran: list[tuple[str, str | None]] = []

    def run_search(found, *, address, runs_dir, data_root, should_stop):  # Tune: tests/unit/test_search.py
        ran.append((found.id, address))
        return search.SearchResult(found, [], 900)

    monkeypatch.setattr(search, "run_search", run_search)
    at = open_page(app_path)
    at.multiselect(key="sweeps_widths").set_value([16, 32])
    at.checkbox(key="sweeps_ray").check().run()
    assert not [b for b in at.button if b.label.startswith("Start the search")]  # the grid, until chosen
    at.checkbox(key="sweeps_search").check().run()
    next(b for b in at.button if b.label.startswith("Start the search")).click().run()
    assert not at.exception, [e.value for e in at.exception]
    (found,) = sweeps.list_sweeps(runs_dir)
    assert found.kind == "search" and len(found.configs) == 4  # depths 1, 2 x widths 16, 32
    driver = sweeps.ray_task(found, registry)
    assert driver is not None and driver.join(timeout=60) and driver.error is None
    assert ran == [(found.id, None)]  # an empty address: a local Ray


def test_a_search_says_how_many_of_its_runs_were_stopped_early(app_path: Path, runs_dir: Path) -> None:
    from mnist_core import search

    configs = sweeps.grid_configs(RunConfig(epochs=2), sweeps.GridSpec(width=(16, 32)))
    found = search.create(configs, "asha", None, runs_dir)
    for cfg, early in zip(configs, (True, False), strict=True):
        writer = RunWriter.create(cfg, runs_dir, name=sweeps.point_name(found, cfg),
                                  tags=(found.tag, sweeps.EARLY_TAG) if early else (found.tag,))
        writer.finish("stopped" if early else "completed", {"test_accuracy": 0.5 if early else 0.9})
    assert [r["early"] for r in sweeps.point_rows(found, list_runs(runs_dir))] == [True, False]
    at = open_page(app_path)
    assert any("1 of its 2 runs were stopped early" in c.value for c in at.caption)


def test_every_column_of_the_study_table_has_a_label():
    """No raw key ("ours_seeds", "seed_noise_pct") as a header: each column shown is labelled."""
    from mnist_core import study
    from ui import sweep_view

    shown = {key for row in study.table([], studies=[]) for key in row} - set(sweep_view.STUDY_HIDDEN)
    labelled = sweep_view.study_columns()
    assert shown | {"source"} <= set(labelled), sorted(shown - set(labelled))
    assert {"ours_seeds", "ours_accuracy_std_pct", "seed_noise_pct", "noise_verdict"} <= shown
