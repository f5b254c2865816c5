"""The Sweeps page's actions, one core call each: start or resume, launch, the study, the search,
the time a set of runs takes and a sweep's live row (issue 25: each was strung together in the page)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from mnist_core import search, study, sweep_run, sweeps
from mnist_core.config import RunConfig
from mnist_core.errors import ConfigError
from mnist_core.jobs import JobRegistry
from tests.support.sweeps import RecordingQueue, fake_run

TINY = RunConfig(hidden=(16,), epochs=1, batch_size=64)


def test_start_queues_what_is_not_done_and_resume_is_the_same_call(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs = sweeps.grid_configs(TINY, sweeps.GridSpec(width=(16, 32, 64)))
    sweep = sweeps.create(configs, "start", runs_dir)
    found = [fake_run(configs[0], sweep.tag, 0.9, 0),
             fake_run(configs[1], sweep.tag, 0.9, 1, status="stopped")]
    monkeypatch.setattr(sweep_run, "list_runs", lambda runs_dir=None: found)
    queue = RecordingQueue()
    started = sweeps.start(sweep, queue, runs_dir=runs_dir)  # type: ignore[arg-type]
    assert (started.sweep, started.queued, started.on_ray) == (sweep, 2, False)
    assert [j["resume_id"] for j in queue.submitted] == ["run-1", None]  # the stopped run resumes
    assert all(j["tags"] == (sweep.tag,) for j in queue.submitted)


def test_start_on_ray_hands_the_sweep_to_one_driver_at_the_resolved_address(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = sweeps.create([TINY], "ray", runs_dir)
    sent: list[str | None] = []
    monkeypatch.setattr(sweep_run, "start_on_ray", lambda s, r, *, address, **kw: sent.append(address))
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    registry = JobRegistry()
    assert sweeps.start(sweep, registry, on_ray=True).on_ray
    sweeps.start(sweep, registry, on_ray=True, address="ray://other:10001")
    monkeypatch.delenv("RAY_ADDRESS")
    started = sweeps.start(sweep, registry, on_ray=True)
    assert sent == ["ray://head:10001", "ray://other:10001", None] and started.queued == 0


def test_launch_saves_the_sweep_then_starts_it(runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep_run, "list_runs", lambda runs_dir=None: [])
    configs = sweeps.grid_configs(TINY, sweeps.GridSpec(width=(16, 32)))
    queue = RecordingQueue()
    started = sweeps.launch(configs, "  ", queue, runs_dir=runs_dir)  # type: ignore[arg-type]
    (saved,) = sweeps.list_sweeps(runs_dir)
    assert saved == started.sweep and saved.name == "sweep" and started.queued == 2
    with pytest.raises(ConfigError, match="at least one value"):
        sweeps.launch([], "empty", queue, runs_dir=runs_dir)  # type: ignore[arg-type]


def test_the_page_and_the_cli_save_the_study_as_the_same_sweep(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep_run, "list_runs", lambda runs_dir=None: [])
    cli = study.create_sweep(["width"], batch_one=True, runs_dir=runs_dir)
    queue = RecordingQueue()
    page = sweeps.launch_study(["width"], queue, batch_one=True, runs_dir=runs_dir)  # type: ignore[arg-type]
    assert cli.axes == page.sweep.axes
    for s in (cli, page.sweep):
        assert (s.kind, s.name) == ("study", "Reproduce the study")
        assert s.extra == {"experiments": ["width"], "batch_one": True}
        assert list(s.configs) == study.configs(["width"])
    assert page.queued == len(study.configs(["width"])) == len(queue.submitted)
    assert len(study.create_sweep(["width"], repeats=2, runs_dir=runs_dir).configs) == 2 * page.queued


def test_time_estimate_sums_what_it_can_and_says_why_the_rest_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    slow, broken = TINY.replace(batch_size=1), TINY.replace(hidden=(32,))

    def run_seconds(cfg, runs, sizes, probe_fn):
        if cfg == broken:
            raise ConfigError("hidden", "cannot be built here")
        return probe_fn(cfg)

    monkeypatch.setattr(sweep_run, "run_seconds", run_seconds)
    measured = {TINY: 2.0, slow: 200.0}
    found = sweeps.time_estimate([TINY, slow, broken], [], probe_fn=measured.__getitem__)
    assert (found.seconds, found.unknown) == (202.0, 1)
    assert "cannot be built here" in (found.first_error or "")
    # Without a probe only past runs count: none here, so nothing is known and nothing failed.
    assert sweeps.time_estimate([TINY, slow], []) == sweeps.TimeEstimate(0.0, 2, None)
    past = [fake_run(TINY, "t", 0.9, 0)]
    assert sweeps.time_estimate([TINY], past).unknown == 0 < sweeps.time_estimate([TINY], past).seconds


def test_a_sweeps_live_row_measures_only_a_small_set_of_models(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep_run, "run_seconds", lambda cfg, runs, sizes, probe_fn: probe_fn(cfg))
    asked: list[RunConfig] = []

    def probe(cfg: RunConfig) -> float:
        asked.append(cfg)
        return 10.0

    small = sweeps.create(sweeps.grid_configs(TINY, sweeps.GridSpec(width=(16, 32))), "small", runs_dir)
    row = sweeps.live(small, JobRegistry(), [], probe_fn=probe)
    assert row.progress.eta_s == pytest.approx(20.0) and len(asked) == 2
    assert (row.jobs, row.running, row.on_ray, row.ray_error, row.queued) == ([], [], False, None, 0)
    assert not sweeps.any_active([small], JobRegistry())
    widths = tuple(range(16, 16 + sweep_run.MAX_MEASURED + 1))
    large = sweeps.create(sweeps.grid_configs(TINY, sweeps.GridSpec(width=widths)), "large", runs_dir)
    asked.clear()
    row = sweeps.live(large, JobRegistry(), [], probe_fn=probe)
    assert asked == [] and row.progress.eta_s is None  # past runs only, and there are none


def test_a_sweep_is_active_while_one_of_its_runs_reads_running_whoever_trains_it(runs_dir: Path) -> None:
    """Another process, or a job of this one that has just ended: the page must keep polling."""
    configs = sweeps.grid_configs(TINY, sweeps.GridSpec(width=(16, 32)))
    grid = sweeps.create(configs, "grid", runs_dir)
    other = sweeps.create([TINY], "other", runs_dir)
    first_running = [fake_run(configs[0], grid.tag, 0.0, 1, status="running")]
    assert sweeps.states([grid, other], first_running) == ("running", "todo", "todo")
    assert sweeps.any_active([grid], JobRegistry(), first_running)
    assert not sweeps.any_active([other], JobRegistry(), first_running)  # not its run
    assert not sweeps.any_active([grid], JobRegistry())  # the registry alone knows nothing of it
    done = fake_run(configs[0], grid.tag, 0.9, 1)
    first_done = [done, fake_run(configs[1], grid.tag, 0.0, 2, status="running")]
    assert sweeps.states([grid], first_done) == ("done", "running")  # differs: the page redraws its charts
    ended = [done, fake_run(configs[1], grid.tag, 0.0, 2, status="stopped")]
    assert sweeps.states([grid], ended) == ("done", "resumable")
    assert not sweeps.any_active([grid], JobRegistry(), ended)


def test_search_launch_plans_under_the_budget_with_the_apps_probes_then_starts(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mnist_core import estimate

    monkeypatch.setattr(estimate, "epoch_estimate",
                        lambda cfg, runs, sizes, probe: SimpleNamespace(seconds=probe(cfg)))
    started: list[tuple[str, str | None]] = []
    monkeypatch.setattr(search, "start_search",
                        lambda found, registry, *, address, **kw: started.append((found.id, address)))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    configs = sweeps.grid_configs(TINY, sweeps.GridSpec(width=(16, 32, 64)))
    per_epoch = {c: float(c.hidden[0]) for c in configs}  # seconds per epoch: 16, 32, 64
    found, over = search.launch(configs, "", 40.0, object(), runs_dir=runs_dir,
                                probe_fn=per_epoch.__getitem__)
    assert [c.hidden for c in found.configs] == [(16,), (32,)] and [c.hidden for c, _ in over] == [(64,)]
    assert found.name == "search" and started == [(found.id, None)]
    everything, none_over = search.launch(configs, "all", 0.0, object(), address="ray://h:1",
                                          runs_dir=runs_dir)
    assert len(everything.configs) == 3 and none_over == [] and started[-1] == (everything.id, "ray://h:1")
