"""Sweeps: grids, saving, resuming without redoing finished runs, and the noise analysis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from job_gate import JobGate

from mnist_core import sweeps
from mnist_core.cli import main
from mnist_core.config import RunConfig
from mnist_core.errors import ConfigError, CorruptRun, RunNotFound
from mnist_core.jobs import JobRegistry
from mnist_core.runs import RunInfo, RunWriter, list_runs
from mnist_core.sizing import SplitSizes
from tests.support import waiting
from tests.support.sweeps import RecordingQueue, fake_run

TINY = RunConfig(hidden=(16,), epochs=1, batch_size=64)
SIZES = SplitSizes(900, 100, True)


def wait_for(condition, timeout_s: float = 60) -> None:
    waiting.wait_for(condition, timeout_s, poll_s=0.02)


# -- grids -----------------------------------------------------------------------------


def test_grid_is_every_combination_times_the_seed_repeats() -> None:
    spec = sweeps.GridSpec(depth=(1, 2), width=(16, 32), batch_size=(32, 64, 128), repeats=2)
    configs = sweeps.grid_configs(TINY.replace(seed=5), spec)
    assert len(configs) == 2 * 2 * 3 * 2 == len(set(configs))
    assert {c.hidden for c in configs} == {(16,), (32,), (16, 16), (32, 32)}
    assert {c.seed for c in configs} == {5, 6}
    assert {c.batch_size for c in configs} == {32, 64, 128}
    assert all(c.epochs == 1 and c.lr == TINY.lr for c in configs)  # the rest comes from the base
    assert sweeps.swept_axes(configs) == {
        "depth": [1, 2], "width": [16, 32], "batch_size": [32, 64, 128], "seed": [5, 6],
    }


def test_an_axis_left_empty_keeps_the_base_value() -> None:
    configs = sweeps.grid_configs(RunConfig(hidden=(256, 256)), sweeps.GridSpec(width=(64, 128)))
    assert [c.hidden for c in configs] == [(64, 64), (128, 128)]


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        (sweeps.GridSpec(width=(16, 16)), "width", "listed twice"),
        (sweeps.GridSpec(depth=(0, 1)), "hidden", "depth=0"),
        (sweeps.GridSpec(width=(16,), repeats=0), "repeats", "not an integer"),
        (sweeps.GridSpec(lr=(1e-3, -1.0)), "lr", "lr=-1.0"),
        (sweeps.GridSpec(width=tuple(range(16, 16 + 501))), "sweep", "more than the 500"),
    ],
)
def test_an_invalid_grid_is_refused_with_the_point_named(
    spec: sweeps.GridSpec, field: str, words: str
) -> None:
    with pytest.raises(ConfigError) as err:
        sweeps.grid_configs(TINY, spec)
    assert err.value.field == field and words in str(err.value)


# -- saving ----------------------------------------------------------------------------------


def test_a_sweep_is_saved_beside_the_runs_and_read_back(runs_dir: Path) -> None:
    configs = sweeps.grid_configs(TINY, sweeps.GridSpec(width=(16, 32)))
    sweep = sweeps.create(configs, "Width / small", runs_dir)
    assert sweep.tag == f"sweep:{sweep.id}" and "width-small" in sweep.id
    assert sweeps.load(sweep.id, runs_dir) == sweep
    assert [s.id for s in sweeps.list_sweeps(runs_dir)] == [sweep.id]
    assert list_runs(runs_dir) == []  # the sweeps folder is not mistaken for a run
    (runs_dir / ".sweeps" / "broken.json").write_text("{not json")
    (runs_dir / ".sweeps" / "foreign.json").write_text(json.dumps({"id": "x", "configs": [{"width": 1e9}]}))
    assert [s.id for s in sweeps.list_sweeps(runs_dir)] == [sweep.id]
    with pytest.raises(CorruptRun):
        sweeps.load("broken", runs_dir)
    with pytest.raises(RunNotFound):
        sweeps.load("../../etc/passwd", runs_dir)
    with pytest.raises(ConfigError):
        sweeps.create([], "empty", runs_dir)


# -- running, stopping, resuming ---------------------------------------------------------------


def test_a_sweep_of_four_runs_resumes_after_a_stop_without_redoing_finished_runs(
    runs_dir: Path, synthetic_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = TINY.replace(epochs=3, batch_size=16)
    sweep = sweeps.create(
        sweeps.grid_configs(base, sweeps.GridSpec(depth=(1, 2), width=(16, 32))), "four", runs_dir
    )
    gate = JobGate(monkeypatch, sweep.configs[1])  # the second run cannot finish before the stop
    registry = JobRegistry(max_concurrent=1)
    kw = {"runs_dir": runs_dir, "data_root": synthetic_data_dir}
    jobs = sweeps.submit(sweep, registry, list_runs(runs_dir), **kw)
    assert len(jobs) == 4 and all(sweep.tag in j.tags for j in jobs)
    # Submitting again while they are queued adds nothing.
    assert sweeps.submit(sweep, registry, list_runs(runs_dir), **kw) == []
    gate.wait_held()  # one job at a time: the first has finished, the second is training
    assert jobs[0].state == "completed" and jobs[1].state == "running"
    assert sweeps.stop(sweep, registry) == 3
    gate.release()
    assert registry.wait(timeout=60)
    first = sweeps.points(sweep, list_runs(runs_dir))
    assert [p.state for p in first] == ["done", "resumable", "todo", "todo"]
    done_id, stopped_id = first[0].run.id, first[1].run.id
    finished_at = first[0].run.updated
    progress = sweeps.progress(sweep, list_runs(runs_dir), SIZES)
    assert (progress.done, progress.total, progress.waiting) == (1, 4, 3)
    assert progress.eta_s is not None and progress.eta_s > 0

    resumed = sweeps.submit(sweep, registry, list_runs(runs_dir), **kw)
    assert len(resumed) == 3 and resumed[0].resume_id == stopped_id
    assert registry.wait(timeout=120)
    runs = list_runs(runs_dir)
    final = sweeps.points(sweep, runs)
    assert [p.state for p in final] == ["done"] * 4
    assert final[0].run.id == done_id and final[0].run.updated == finished_at  # not redone
    assert final[1].run.id == stopped_id  # resumed, not restarted as a new run
    tagged = [r for r in runs if sweep.tag in r.meta["tags"]]
    assert len(tagged) == 4 and all(r.status == "completed" for r in tagged)
    assert sweeps.progress(sweep, runs, SIZES).fraction == 1.0
    assert sweeps.submit(sweep, registry, runs, **kw) == []  # nothing left to do


def test_the_cli_runs_a_sweep_and_a_resume_trains_nothing_again(
    runs_dir: Path, synthetic_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--runs-dir", str(runs_dir), "--data-dir", str(synthetic_data_dir)]
    code = main([*common, "sweep", "--depths", "1", "2", "--widths", "16", "--epochs", "1",
                 "--batch-size", "128", "--name", "cli", "--at-once", "2"])  # two at once
    out = capsys.readouterr().out
    assert code == 0 and "2/2 runs done, done" in out
    (sweep,) = sweeps.list_sweeps(runs_dir)
    before = {r.id: r.updated for r in list_runs(runs_dir)}
    assert len(before) == 2
    assert main([*common, "sweep", "--resume", sweep.id]) == 0
    assert {r.id: r.updated for r in list_runs(runs_dir)} == before
    assert main([*common, "sweep", "--list"]) == 0
    assert f"{sweep.id}" in capsys.readouterr().out
    assert main([*common, "sweep", "--widths", "0"]) == 2
    assert "width" in capsys.readouterr().err
    assert main([*common, "sweep", "--resume", sweep.id, "--at-once", "9"]) == 2
    assert "max_concurrent: 9 is not an integer in [1, 8]" in capsys.readouterr().err


# -- analysis -----------------------------------------------------------------------------


def test_effects_pool_seeds_and_say_when_a_difference_beats_the_noise(runs_dir: Path) -> None:
    configs = sweeps.grid_configs(TINY, sweeps.GridSpec(width=(16, 32, 64), repeats=3))
    sweep = sweeps.create(configs, "noise", runs_dir)
    # width 16 -> 32: +5 points with ~0.1 noise; 32 -> 64: +0.05 with ~0.1 noise.
    accuracy = {16: [0.90, 0.91, 0.89], 32: [0.95, 0.96, 0.94], 64: [0.95, 0.97, 0.94]}
    runs = [fake_run(c, sweep.tag, accuracy[c.hidden[0]][c.seed], i) for i, c in enumerate(configs)]
    effect = sweeps.effects(sweep, runs, "width", "test_accuracy")
    (cells,) = effect.groups.values()
    assert [c.value for c in cells] == [16, 32, 64] and all(c.n == 3 for c in cells)
    assert cells[0].mean == pytest.approx(0.90) and cells[0].std == pytest.approx(0.01)
    assert [s.verdict for s in effect.steps] == ["larger than noise", "within noise"]
    assert effect.steps[0].delta == pytest.approx(0.05)
    assert sweeps.seed_noise(sweep, runs, "test_accuracy") == pytest.approx(
        ((1e-4 + 1e-4 + 7e-4 / 3) / 3) ** 0.5, rel=1e-6  # pooled variance: mean of the three, equal n
    )
    single = [r for r in runs if r.config.seed == 0]
    assert {s.verdict for s in sweeps.effects(sweep, single, "width", "test_accuracy").steps} == {
        "no repeats to tell"
    }
    assert sweeps.seed_noise(sweep, single, "test_accuracy") is None


def test_runs_of_other_sweeps_and_untagged_runs_do_not_count(runs_dir: Path) -> None:
    configs = sweeps.grid_configs(TINY, sweeps.GridSpec(width=(16, 32)))
    mine, other = sweeps.create(configs, "mine", runs_dir), sweeps.create(configs, "other", runs_dir)
    runs = [fake_run(configs[0], other.tag, 0.9, 1), fake_run(configs[1], "hand-made", 0.9, 2)]
    assert [p.state for p in sweeps.points(mine, runs)] == ["todo", "todo"]
    assert sweeps.progress(mine, runs, SIZES).eta_s is not None  # past runs of the same model give an ETA
    assert sweeps.progress(mine, [], SIZES).eta_s is None


def test_on_ray_stopped_points_resume_locally_and_the_rest_go_to_ray(runs_dir: Path) -> None:
    configs = sweeps.grid_configs(TINY, sweeps.GridSpec(width=(16, 32, 64, 128)))
    sweep = sweeps.create(configs, "ray split", runs_dir)
    runs = [fake_run(configs[0], sweep.tag, 0.9, 1), fake_run(configs[1], sweep.tag, 0.9, 2)]
    runs[1] = RunInfo(**{**runs[1].__dict__, "status": "stopped"})
    runs.append(RunInfo(**{**fake_run(configs[2], sweep.tag, 0.9, 3).__dict__, "status": "failed"}))
    fresh, local = sweeps.split_for_ray(sweep, runs)
    assert [p.index for p in fresh] == [3] and local == [1, 2]  # failed runs resume too


def test_the_page_and_the_cli_send_a_sweep_to_ray_through_one_function(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written twice (cli.py, ui/shared.py): names with or without the seed, local resumes before or after."""
    from mnist_core import raytrials, sweep_run

    configs = sweeps.grid_configs(TINY, sweeps.GridSpec(width=(16, 32, 64), repeats=2))
    sweep = sweeps.create(configs, "one way", runs_dir)
    stopped = RunInfo(**{**fake_run(configs[1], sweep.tag, 0.9, 1).__dict__, "status": "stopped"})
    done = fake_run(configs[0], sweep.tag, 0.9, 0)
    monkeypatch.setattr(sweep_run, "list_runs", lambda runs_dir=None: [done, stopped])
    queue, sent, said = RecordingQueue(), {}, []

    def run_trials(cfgs, **kwargs):
        assert len(queue.submitted) == 1  # the stopped run already resumes here
        sent.update(kwargs, configs=list(cfgs))
        kwargs["on_done"](0, "r-0")
        kwargs["on_error"](1, "out of memory")
        return ["r-0", None] + [None] * (len(cfgs) - 2)

    monkeypatch.setattr(raytrials, "run_trials", run_trials)
    outcome = sweeps.run_on_ray(sweep, queue, address="local", runs_dir=runs_dir,  # type: ignore[arg-type]
                                on_done=lambda *a: said.append(a), on_error=lambda *a: said.append(a))
    assert [j["resume_id"] for j in queue.submitted] == ["run-1"] and outcome.resumed_here == [1]
    assert sent["configs"] == configs[2:] and sent["tags"] == (sweep.tag,) and sent["address"] == "local"
    label = configs[2].label()
    # repeats told apart by their seed
    assert sent["names"][:2] == [f"{label} seed 0 (one way)", f"{label} seed 1 (one way)"]
    assert queue.submitted[0]["name"] == f"{configs[1].label()} seed 1 (one way)"
    assert said == [(f"{label} seed 0 (one way)", "r-0"), (f"{label} seed 1 (one way)", "out of memory")]
    assert outcome.summary() == "1 trials failed on Ray; first: out of memory"


@pytest.mark.slow
def test_the_cli_runs_a_sweep_on_a_local_ray(
    runs_dir: Path, synthetic_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-ray.txt")
    common = ["--runs-dir", str(runs_dir), "--data-dir", str(synthetic_data_dir)]
    code = main([*common, "sweep", "--widths", "16", "32", "--epochs", "1", "--batch-size", "256",
                 "--name", "on ray", "--ray"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (sweep,) = sweeps.list_sweeps(runs_dir)
    runs = list_runs(runs_dir)
    assert len(runs) == 2 and all(r.status == "completed" and sweep.tag in r.meta["tags"] for r in runs)
    assert {r.config.hidden for r in runs} == {(16,), (32,)}
    assert "2/2 runs done, done" in captured.out


def with_status(run: RunInfo, status: str) -> RunInfo:
    return RunInfo(**{**run.__dict__, "status": status})


def test_one_status_word_for_the_page_and_the_cli_list(
    runs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configs = sweeps.grid_configs(TINY, sweeps.GridSpec(width=(16, 32, 64)))
    sweep = sweeps.create(configs, "status", runs_dir)
    done = fake_run(configs[0], sweep.tag, 0.9, 1)
    stopped = with_status(fake_run(configs[1], sweep.tag, 0.9, 2), "stopped")
    cases = [
        ([], False, "not started"),
        ([], True, "running"),  # queued in the page's job queue
        ([done, stopped], False, "stopped"),
        ([done, with_status(stopped, "running")], False, "running"),  # seen from its run folder
        ([done, with_status(stopped, "completed"), fake_run(configs[2], sweep.tag, 0.9, 3)], False, "done"),
    ]
    for runs, active, word in cases:
        assert sweeps.status(sweeps.points(sweep, runs), active) == word
        assert sweeps.progress(sweep, runs, SIZES, active=active).status == word
    assert set(sweeps.STATUSES) == {w for _, _, w in cases} == set(sweeps.STATUS_HELP)

    # The CLI lists a stopped sweep as stopped (it said "1/3 done" before), with what to do.
    for run, stored in ((done, "completed"), (stopped, "stopped")):
        writer = RunWriter.create(run.config, runs_dir, tags=(sweep.tag,))
        writer.finish(stored, dict(run.summary))
    assert main(["--runs-dir", str(runs_dir), "sweep", "--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    (line,) = [x for x in out if x.startswith(sweep.id)]
    assert "1/3 runs done" in line and "stopped" in line
    assert out[-1] == f"a stopped sweep continues with: python -m mnist_core sweep --resume {sweep.id}"


def test_time_left_comes_from_each_remaining_runs_own_configuration(runs_dir: Path) -> None:
    # Two quick runs finished; the one left is 100x slower. An average of the finished runs
    # (the old fallback) said 2 s; its own estimate says 200 s.
    configs = [TINY, TINY.replace(hidden=(32,)), TINY.replace(hidden=(32,), batch_size=1)]
    sweep = sweeps.create(configs, "uneven", runs_dir, kind="study", axes={})
    runs = [fake_run(configs[0], sweep.tag, 0.9, 1), fake_run(configs[1], sweep.tag, 0.9, 2)]
    runs = [RunInfo(**{**r.__dict__, "summary": {**r.summary, "samples_per_s": 0}}) for r in runs]
    own = {configs[2]: 200.0}
    p = sweeps.progress(sweep, runs, SIZES, estimate=own.get)
    assert p.eta_s == pytest.approx(200.0)
    assert "own configuration" in p.eta_detail
    blind = sweeps.progress(sweep, runs, SIZES)  # nothing tells about batch size 1: no guess
    assert blind.eta_s is None and (blind.done, blind.waiting) == (2, 1)
    p = sweeps.progress(sweep, runs[:1], SIZES, running_eta=5.0, estimate=own.get)
    assert p.eta_s == pytest.approx(205.0) and p.eta_detail == "1 run not estimated yet"
