"""The study reproduction: the blog's rows, its settings, and ours beside its figures."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mnist_core import study, sweeps
from mnist_core.cli import format_study, main
from mnist_core.config import RunConfig
from mnist_core.costs import cost_report
from mnist_core.errors import ConfigError
from mnist_core.models import build_model
from mnist_core.runs import RunInfo


def test_the_rows_are_the_blogs_four_experiments_with_its_settings() -> None:
    counts = {e: sum(r.experiment == e for r in study.ROWS) for e in study.EXPERIMENTS}
    assert counts == {"width": 4, "depth": 3, "batch": 8, "lenet": 2}
    for row in study.ROWS:
        c = row.config
        assert (c.epochs, c.optimizer, c.lr, c.val_fraction, c.schedule) == (2, "adam", 1e-3, 0.1, "none")
        assert c.batch_size == (c.batch_size if row.experiment == "batch" else 64)
    crops = {r.config.crop for r in study.ROWS if "400-" in r.label}
    assert crops == {20}  # the blog's 20x20 centre crop
    # 784-512-10 (width and depth) and 784-1024-10 at batch 64 (width and batch) are trained once.
    assert len(study.configs()) == 15
    assert [c.batch_size for c in study.configs(batch_one=False)].count(1) == 0
    assert len(study.configs(["width"], batch_one=False)) == 4
    with pytest.raises(ValueError, match="unknown experiments"):
        study.rows(["colour"])


@pytest.mark.parametrize("row", study.ROWS, ids=[f"{r.experiment}-{r.label}" for r in study.ROWS])
def test_our_models_have_the_published_parameter_counts_and_mlp_flops(row: study.Row) -> None:
    cost = cost_report(build_model(row.config).eval())
    assert cost.parameters == row.published.parameters
    if row.published.flops_convention == "2 x MACs":
        assert 2 * cost.macs == row.published.flops
    else:  # LeNet-5: the blog's hand formula counts pooling too; fvcore does not.
        assert 2 * cost.macs < row.published.flops


STUDY = sweeps.Sweep("s1", "Reproduce the study", tuple(study.configs()), {}, "2026", kind="study")
GRID = sweeps.Sweep("g1", "a grid", tuple(study.configs()), {}, "2026", kind="grid")


def run_for(
    cfg: RunConfig, accuracy: float, train_s: float, epoch_s: float, created: str, tag: str = STUDY.tag
) -> RunInfo:
    cost = cost_report(build_model(cfg).eval())
    summary = {"test_accuracy": accuracy, "train_time_s": train_s, "time_per_epoch_s": epoch_s,
               "parameters": cost.parameters, "macs": cost.macs}
    return RunInfo(id=f"r{created}", path=Path("/x"), status="completed", config=cfg, name=f"run {created}",
                   created=created, updated=created, summary=summary, meta={"tags": [tag]})


def test_the_table_puts_ours_beside_the_published_figures_with_ratios() -> None:
    width_512 = study.rows(["width"])[2].config
    lenet = study.rows(["lenet"])[1].config
    runs = [
        run_for(width_512, 0.95, 9.0, 4.5, "1"),
        run_for(width_512, 0.972, 3.8, 1.9, "2"),  # the newest completed run counts
        run_for(lenet, 0.985, 20.0, 10.0, "3"),
    ]
    rows = {r["model"]: r for r in study.table(runs, studies=[STUDY])}
    assert len(rows) == 16  # 17 rows, 784-512-10 shows under width and depth with the same label
    w = next(r for r in study.table(runs, ["width"], studies=[STUDY]) if r["model"] == "MLP 784-512-10")
    assert w["published_accuracy_pct"] == 96.2 and w["ours_accuracy_pct"] == pytest.approx(97.2)
    assert w["accuracy_ratio"] == pytest.approx(97.2 / 96.2)
    assert w["published_time_s"] == 4.52 and w["ours_time_s"] == 3.8
    assert w["speedup"] == pytest.approx(4.52 / 3.8)
    assert w["ours_parameters"] == 407050 and w["ours_flops_2x_macs"] == 813056 == w["published_flops"]
    assert w["time_kind"] == "training s (2 epochs)" and (w["run_id"], w["run_name"]) == ("r2", "run 2")
    le = rows["LeNet-5"]
    assert le["time_kind"] == "s per epoch" and le["speedup"] == pytest.approx(6.87 / 10.0)
    assert le["published_flops_convention"] == "hand formula incl. pooling"
    assert le["ours_macs_fvcore"] * 2 == le["ours_flops_2x_macs"]
    missing = rows["MLP 784-128-10"]
    assert missing["ours_accuracy_pct"] is None and missing["speedup"] is None and missing["run_id"] is None
    text = format_study(study.table(runs, studies=[STUDY]))
    assert "96.2" in text and "97.20" in text and "hand formula" in text and "r2" in text


def test_only_the_studys_own_runs_count_not_a_newer_run_of_the_same_settings() -> None:
    width_512 = study.rows(["width"])[2].config
    own = run_for(width_512, 0.972, 3.8, 1.9, "1")
    grid = run_for(width_512, 0.50, 99.0, 49.0, "2", tag=GRID.tag)  # newer, from an unrelated grid sweep
    untagged = run_for(width_512, 0.40, 99.0, 49.0, "3", tag="hand-made")
    for runs in ([own, grid, untagged], [untagged, grid, own]):
        (w,) = [r for r in study.table(runs, ["width"], studies=[STUDY, GRID]) if "512" in r["model"]]
        assert w["ours_accuracy_pct"] == pytest.approx(97.2) and w["run_id"] == own.id
    (w,) = [r for r in study.table([grid], ["width"], studies=[STUDY, GRID]) if "512" in r["model"]]
    assert w["ours_accuracy_pct"] is None and w["run_id"] is None and w["run_name"] is None


def test_the_cli_prints_the_published_table_from_saved_runs(
    runs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--runs-dir", str(runs_dir), "study", "--table-only"]) == 0
    out = capsys.readouterr().out
    assert "MLP 400-1024-1024-10 batch 1" in out and "408.10" in out and "44,426" in out


# -- seed noise (issue 24) ---------------------------------------------------------------------


def test_pooled_noise_and_the_prediction_interval_have_textbook_values() -> None:
    noise = study.pooled_noise([[1.0, 2.0, 3.0], [4.0, 6.0], [9.0]])  # variances 1 and 2, df 2 + 1
    assert noise is not None and noise.df == 3 and noise.std == pytest.approx((4 / 3) ** 0.5)
    assert noise.half_width(3) == pytest.approx(3.182446 * noise.std * (4 / 3) ** 0.5 + 0.05, rel=1e-5)
    assert study.pooled_noise([[1.0], []]) is None


def test_repeats_give_every_configuration_seeds_and_the_table_says_what_is_beyond_noise() -> None:
    cfgs = study.configs(["width"], repeats=3)
    assert len(cfgs) == 12 and sorted({c.seed for c in cfgs}) == [0, 1, 2]
    with pytest.raises(ConfigError, match="repeats"):
        study.configs(["width"], repeats=0)
    w128, w512 = study.rows(["width"])[0].config, study.rows(["width"])[2].config
    runs = [run_for(w512.replace(seed=s), a, 3.0, 1.5, f"5{s}") for s, a in enumerate((0.961, 0.963, 0.962))]
    runs += [run_for(w128.replace(seed=s), a, 3.0, 1.5, f"1{s}") for s, a in enumerate((0.955, 0.956, 0.954))]
    table = {r["model"]: r for r in study.table(runs, ["width"], studies=[STUDY])}
    same, far = table["MLP 784-512-10"], table["MLP 784-128-10"]
    assert same["ours_seeds"] == 3 and same["ours_accuracy_pct"] == pytest.approx(96.2)
    assert same["ours_accuracy_std_pct"] == pytest.approx(0.1)
    assert same["seed_noise_pct"] == pytest.approx(0.1)
    assert same["beyond_noise"] is False and "within noise" in same["noise_verdict"]
    assert far["beyond_noise"] is True and far["noise_verdict"].startswith("+1.80 vs noise")
    assert table["MLP 784-256-10"]["noise_verdict"] == "not trained"
    assert same["run_id"] == "r52" and same["run_ids"] == ["r50", "r51", "r52"]
    one = {r["model"]: r for r in study.table(runs[:1], ["width"], studies=[STUDY])}["MLP 784-512-10"]
    assert one["beyond_noise"] is None and one["noise_verdict"].startswith("one seed")
    text = format_study(study.table(runs, ["width"], studies=[STUDY]))
    line = next(t for t in text.splitlines() if t.startswith("MLP 784-512-10 "))
    assert "96.20     3  0.10" in line and "within noise" in line and "beyond noise" in text


def test_the_cli_study_accepts_repeats(runs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--runs-dir", str(runs_dir), "study", "--table-only", "--repeats", "3"]) == 0
    out = capsys.readouterr().out
    assert "seed noise" in out and "Findings" in out and "not trained" in out  # nothing trained


def test_steps_say_whether_the_blogs_finding_survives_the_seed_noise() -> None:
    w128, w256, w512 = (r.config for r in study.rows(["width"])[:3])
    accs = {w128: (0.955, 0.956, 0.954), w256: (0.962, 0.963, 0.961), w512: (0.963, 0.961, 0.962)}
    runs = [run_for(c.replace(seed=s), a, 3.0, 1.5, f"{c.hidden[0]}{s}")
            for c, seeds in accs.items() for s, a in enumerate(seeds)]  # fmt: skip
    table = study.table(runs, ["width"], studies=[STUDY])
    got = study.steps(table, runs, studies=[STUDY])
    assert [(s.before, s.after) for s in got] == [
        ("MLP 784-128-10", "MLP 784-256-10"), ("MLP 784-256-10", "MLP 784-512-10"),
        ("MLP 784-512-10", "MLP 784-1024-10"),
    ]  # fmt: skip
    first, second, third = got
    assert first.published_diff == pytest.approx(2.1) and first.ours_diff == pytest.approx(0.7)
    assert first.real is True and first.p_value == pytest.approx(1.383e-4, rel=1e-3)  # t = 8.57, 6 df
    assert second.real is False and second.ours_diff == pytest.approx(0.0, abs=1e-9)  # the blog: +0.4
    assert third.ours_diff is None and third.real is None  # 1024 not trained


def test_the_plan_lacks_only_what_the_studys_own_completed_runs_have_not_trained() -> None:
    w128, w512 = study.rows(["width"])[0].config, study.rows(["width"])[2].config
    runs = [run_for(w512, 0.97, 3.0, 1.5, "1"), run_for(w128, 0.95, 3.0, 1.5, "2", tag=GRID.tag)]
    failed = run_for(w128.replace(seed=1), 0.95, 3.0, 1.5, "3")
    runs.append(dataclasses.replace(failed, status="failed"))
    todo = study.plan(["width"], repeats=2, runs=runs, studies=[STUDY, GRID])
    assert todo.chosen == tuple(study.configs(["width"], repeats=2))
    # The study's w512 seed 0 counts; the grid's w128 and the failed w128 seed 1 do not.
    assert w512 not in todo.missing and w128 in todo.missing and w128.replace(seed=1) in todo.missing
    assert len(todo.missing) == 7 and todo.trained == 1
    assert study.plan(["width"], runs=[], studies=[STUDY]).missing == tuple(study.configs(["width"]))


def test_a_study_of_the_missing_runs_only_adds_them_and_refuses_when_none_is_missing(runs_dir: Path) -> None:
    from mnist_core.runs import RunWriter

    first = study.create_sweep(["depth"], runs_dir=runs_dir, missing_only=True)
    assert list(first.configs) == study.configs(["depth"])  # nothing trained yet: all of them
    for cfg in first.configs:
        writer = RunWriter.create(cfg, runs_dir, tags=(first.tag,))
        writer.finish("completed", {"test_accuracy": 0.97, "train_time_s": 3.0})
    with pytest.raises(ConfigError, match="all 3 runs of these rows are trained already"):
        study.create_sweep(["depth"], runs_dir=runs_dir, missing_only=True)
    more = study.create_sweep(["depth"], repeats=2, runs_dir=runs_dir, missing_only=True)
    assert sorted(c.seed for c in more.configs) == [1, 1, 1]
    again = study.create_sweep(["depth"], runs_dir=runs_dir)  # without missing_only: all, measured again
    assert list(again.configs) == study.configs(["depth"])
    # The command line says the same, and trains nothing when nothing is missing.
    assert main(["--runs-dir", str(runs_dir), "study", "--experiments", "depth", "--missing"]) == 2


def test_the_cli_says_when_a_stopped_study_would_continue_what_missing_starts_afresh(
    runs_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mnist_core.cli import grid

    stopped = study.create_sweep(["depth"], runs_dir=runs_dir)  # saved, never run: "not started"
    monkeypatch.setattr(grid, "_run_sweep", lambda sweep, args: 0)  # nothing trains here
    argv = ["--runs-dir", str(runs_dir), "study", "--experiments", "depth", "--missing"]
    assert main(argv) == 0
    said = capsys.readouterr().err
    assert f"study {stopped.id} was stopped (or never started) with 3 runs left" in said
    assert f"--resume {stopped.id}" in said


def test_the_plan_names_the_newest_stopped_study_and_its_runs_left() -> None:
    depth = study.configs(["depth"])
    older = sweeps.Sweep("s0", "Reproduce the study", tuple(depth), {}, "2026-01-01T00:00:00", kind="study")
    newer = sweeps.Sweep("s2", "Reproduce the study", tuple(depth), {}, "2026-02-01T00:00:00", kind="study")
    done = [run_for(c, 0.97, 3.0, 1.5, f"0{i}", tag=older.tag) for i, c in enumerate(depth)]
    todo = study.plan(["depth"], runs=done, studies=[older])
    assert todo.stopped is None and todo.left == () and todo.missing == ()
    half = [*done, run_for(depth[1], 0.97, 3.0, 1.5, "10", tag=newer.tag)]
    todo = study.plan(["depth"], runs=half, studies=[older, newer])
    assert todo.stopped == newer and todo.left == (depth[0], depth[2])
    grid = sweeps.Sweep("g2", "a grid", tuple(depth), {}, "2026-03-01T00:00:00", kind="grid")
    assert study.plan(["depth"], runs=done, studies=[older, grid]).stopped is None  # a grid is not a study
