"""The benchmark's parts 4-7 and its driver, on the small generated dataset (structure, not timings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks import bench, limits, whole_runs
from mnist_core.config import RunConfig
from mnist_core.data import load_data
from mnist_core.train import train

TINY = RunConfig(hidden=(16,), batch_size=50, epochs=1)  # 900 training images: 18 steps an epoch


def test_throughput_covers_the_whole_test_set_per_model(synthetic_data_dir: Path) -> None:
    rows = bench.bench_throughput(synthetic_data_dir, repeats=3, batch=64)
    assert [r["model"] for r in rows] == list(bench.INFERENCE_MODELS)
    for r in rows:
        assert r["images"] == 200 and r["batch"] == 64  # the generated test split
        s = r["seconds"]
        assert 0 < s["min"] <= s["median"] <= s["max"]
        assert r["images_per_s"] == pytest.approx(200 / s["median"])


def test_stopping_and_resuming_in_chunks_trains_like_one_run(synthetic_data_dir: Path) -> None:
    # time_to_accuracy evaluates between chunks; the weights must not depend on the chunking.
    cfg = RunConfig(hidden=(16,), batch_size=50, epochs=2)
    data = load_data(root=synthetic_data_dir)
    whole = train(cfg, data).model.state_dict()
    state, status, chunks = None, "stopped", 0
    while status != "completed":
        result = train(cfg, data, should_stop=whole_runs._after_steps(7), resume=state)
        state, status, chunks = result.state, result.status, chunks + 1
    assert chunks == 6  # 36 steps, 7 at a time (the last chunk finishes the run)
    for name, tensor in result.model.state_dict().items():
        torch.testing.assert_close(tensor, whole[name], msg=name)


def test_time_to_accuracy_stops_at_the_first_check_that_reaches_the_target(synthetic_data_dir: Path) -> None:
    out = whole_runs.time_to_accuracy(TINY, synthetic_data_dir, target=0.0, max_epochs=3, checks_per_epoch=2)
    assert out["reached"] and len(out["checks"]) == 1  # any model reaches 0%
    [check] = out["checks"]
    assert out["seconds"] == check["seconds"] and out["epochs"] == check["epochs"] == pytest.approx(0.5)
    assert 0 < out["load_s"] < out["seconds"]  # the clock started before the data was loaded
    assert 0.0 <= check["test_accuracy"] <= 1.0


def test_time_to_accuracy_reports_an_unreached_target(synthetic_data_dir: Path) -> None:
    out = whole_runs.time_to_accuracy(TINY, synthetic_data_dir, target=1.01, max_epochs=2, checks_per_epoch=3)
    assert not out["reached"] and out["seconds"] is None and out["epochs"] is None
    checks = out["checks"]
    assert len(checks) == 6  # 3 an epoch for 2 epochs, then the run is complete
    assert [round(c["epochs"], 2) for c in checks] == [0.33, 0.67, 1.0, 1.33, 1.67, 2.0]
    seconds = [c["seconds"] for c in checks]
    assert seconds == sorted(seconds) and len(set(seconds)) == len(seconds)
    assert "not reached (best" in bench.report({"data": "d", "threads": 2, "torch": "x", "accuracy": [out]})


def test_live_view_overhead_alternates_plain_and_wired_runs(
    synthetic_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(whole_runs, "LIVE_INTERVAL_S", 0.01)  # the reader must get to read a short run
    cfg = RunConfig(hidden=(32,), batch_size=10, epochs=1)
    out = whole_runs.live_view_overhead(cfg, synthetic_data_dir, repeats=2)
    plain, wired = out["plain_s"], out["wired_s"]
    assert 0 < plain["min"] <= plain["median"] <= plain["max"]
    assert 0 < wired["min"] <= wired["median"] <= wired["max"]
    assert out["overhead"] == pytest.approx(wired["median"] / plain["median"] - 1)
    assert out["reads_per_run"] >= 1  # snapshots and curves were really taken during the wired runs


@pytest.mark.slow
def test_memory_profile_reads_rss_after_every_run_in_a_child_process(synthetic_data_dir: Path) -> None:
    out = whole_runs.memory_profile(TINY, synthetic_data_dir, runs=3)
    after = out["rss_after_each_mb"]
    assert out["runs"] == 3 and len(after) == 3
    assert 50 < out["baseline_mb"] < out["peak_first_run_mb"] <= out["peak_mb"]  # torch alone is > 50 MiB
    assert all(0 < a <= out["peak_mb"] + 1 for a in after)
    assert out["growth_mb"] == pytest.approx(after[-1] - after[1])
    assert out["slope_mb_per_run"] == pytest.approx(after[2] - after[1])


def test_rss_is_read_and_the_peak_is_at_least_the_current_size() -> None:
    assert 0 < whole_runs.rss_mb() <= whole_runs.peak_rss_mb() + 1


def test_parts_are_selected_by_number_and_written_as_json(
    synthetic_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    assert bench.main(["--parts", "4", "--repeats", "1", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["parts"] == [4] and "generated" not in results["data"]  # the fixture's data dir is used
    assert "throughput" in results and not {"training", "inference", "accuracy", "memory"} & results.keys()
    printed = capsys.readouterr().out
    assert "images/s" in printed and json.loads(printed.strip().splitlines()[-1]) == results


def test_the_bound_is_the_machines_best_before_or_after_training(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A slow minute when part 1 starts must not lower the bound: the limits are measured again after."""
    first = {"784-512-10": 40.0, "784-1024-1024-10": 30.0}
    second = {"784-512-10": 20.0, "784-1024-1024-10": 60.0}
    limits = iter([{"gflops": 100.0, "adam_gb_s": first}, {"gflops": 200.0, "adam_gb_s": second}])
    monkeypatch.setattr(bench, "machine_limits", lambda bf16: next(limits))
    rows = [{"model": "784-1024-1024-10", "batch": 64}]
    monkeypatch.setattr(bench, "bench_training", lambda *args: rows)
    results = bench.run_parts(bench.parse_args(["--parts", "1", "2"]), tmp_path)
    assert results["gflops_measured"] == [100.0, 200.0] and results["gflops"] == 200.0
    assert results["bound_s"]["784-512-10"] == pytest.approx(bench.epoch_bound_s((512,), 200.0))
    assert results["adam_gb_s"] == {"784-512-10": 40.0, "784-1024-1024-10": 60.0}
    assert results["adam_gb_s_measured"][0] == {"784-512-10": 40.0, "784-1024-1024-10": 30.0}
    assert rows[0]["optimizer_floor_s"] == pytest.approx(bench.optimizer_floor_s((1024, 1024), 64, 60.0))
    limits_only = {key: results[key] for key in ("gflops", "gflops_measured", "bound_s")}
    text = bench.report({"data": "d", "threads": 2, "torch": "x", **limits_only})
    assert "matmul: 200 GFLOP/s float32 (the best of 100, 200)" in text
    limits = iter([{"gflops": 150.0, "adam_gb_s": first}])
    only_limits = bench.run_parts(bench.parse_args(["--parts", "2"]), tmp_path)  # no training: measured once
    assert only_limits["gflops_measured"] == [150.0] and "training" not in only_limits
    assert "gflops_bf16" not in results and "bound_bf16_s" not in results  # without --bf16


def test_mixed_precision_rows_get_a_bfloat16_bound(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With --bf16, the bfloat16 matmul is measured before and after training; epochs are set against it."""
    gb_s = {"784-512-10": 40.0, "784-1024-1024-10": 30.0}
    limits = iter([{"gflops": 200.0, "gflops_bf16": 300.0, "adam_gb_s": gb_s},
                   {"gflops": 190.0, "gflops_bf16": 400.0, "adam_gb_s": gb_s}])  # fmt: skip
    asked: list[bool] = []
    monkeypatch.setattr(bench, "machine_limits", lambda bf16: asked.append(bf16) or next(limits))
    bound32, bound16 = bench.epoch_bound_s((1024, 1024), 200.0), bench.epoch_bound_s((1024, 1024), 400.0)
    rows = [{"model": "784-1024-1024-10", "batch": 64, "ours_s": bench.median_range([2 * bound32]),
             "reference_s": bench.median_range([8 * bound32]), "speedup": 4.0,
             "ours_bf16_s": bench.median_range([1.5 * bound32])}]  # fmt: skip
    monkeypatch.setattr(bench, "bench_training", lambda *args: rows)
    results = bench.run_parts(bench.parse_args(["--parts", "1", "--bf16"]), tmp_path)
    assert asked == [True, True]
    assert results["gflops_bf16_measured"] == [300.0, 400.0] and results["gflops_bf16"] == 400.0
    assert results["bound_bf16_s"]["784-1024-1024-10"] == pytest.approx(bound16)
    text = bench.report({"data": "d", "threads": 2, "torch": "x", **results})
    assert "matmul: 400 GFLOP/s bfloat16 (measured 300, 400)" in text
    assert "1.33x our float32 epoch, 1.50x the float32 bound, 3.00x the bfloat16 bound" in text


def test_quick_runs_the_first_four_parts_at_batch_64_only() -> None:
    args = bench.parse_args(["--quick"])
    assert args.parts == [1, 2, 3, 4] and args.batches == [64] and args.repeats == 1
    assert bench.parse_args([]).parts == list(range(1, 14))  # 13: the per-layer statistics (issue 23)
    with pytest.raises(SystemExit):
        bench.parse_args(["--parts", "14"])


def test_report_has_a_line_per_new_part() -> None:
    memory = {"config": "c", "runs": 20, "baseline_mb": 300.0, "peak_first_run_mb": 900.0, "peak_mb": 950.0,
              "rss_after_each_mb": [700.0] * 19 + [702.0], "growth_mb": 2.0, "slope_mb_per_run": 0.1}
    results = {
        "data": "d", "threads": 2, "torch": "x",
        "throughput": [{"model": "MLP", "images": 10_000, "batch": 1000, "images_per_s": 250_000.0,
                        "seconds": bench.median_range([0.04, 0.05])}],
        "accuracy": [{"config": "mlp", "target": 0.97, "reached": True, "seconds": 6.31, "epochs": 1.5,
                      "load_s": 0.4, "checks": []}],
        "overhead": {"config": "mlp", "plain_s": bench.median_range([4.0]),
                     "wired_s": bench.median_range([4.1]), "overhead": 0.025, "paired_overhead": 0.02,
                     "reads_per_run": 8},
        "memory": memory,
    }
    text = bench.report(results)
    assert "250,000 images/s" in text
    assert "time to 97% test accuracy, mlp: 6.3 s (1.50 epochs" in text
    assert "overhead +2.5%" in text and "8 reads a run" in text and "live_view_browser.py" in text
    assert "after run 20 702 MiB" in text and "+2.0 MiB (+0.10 MiB/run)" in text


def test_matmul_limit_is_the_best_burst_not_the_median(monkeypatch: pytest.MonkeyPatch) -> None:
    # A neighbour can only slow a burst down, so the fastest burst is the machine's limit.
    # The engine's product (oneDNN's on a CPU) and torch's take turns; the fastest burst of either counts.
    bursts = {"torch": [0.004, 0.002, 0.003], "engine": [0.005, 0.001, 0.006]}
    monkeypatch.setattr(limits, "timed_in_turn", lambda fns, repeats: {key: bursts[key] for key in fns})
    assert bench.matmul_gflops(size=100, bursts=3, per_burst=2) == pytest.approx(2 * 100**3 * 2 / 0.001 / 1e9)
    bursts["engine"] = [0.005, 0.003, 0.006]
    assert bench.matmul_gflops(size=100, bursts=3, per_burst=2) == pytest.approx(2 * 100**3 * 2 / 0.002 / 1e9)
    monkeypatch.undo()
    assert bench.matmul_gflops(size=64, bursts=2, per_burst=2) > 0


def test_report_states_the_machine_load() -> None:
    text = bench.report({"data": "d", "threads": 2, "torch": "x", "load_average_start": 3.31,
                         "load_average_end": 1.5})
    assert "load average (1 min) at the start 3.3, at the end 1.5" in text


def test_timed_in_turn_takes_turns() -> None:
    """Each function is called once per round, in order, so drift of the host's speed hits all alike."""
    calls: list[str] = []
    seconds = bench.timed_in_turn({k: (lambda k=k: calls.append(k)) for k in "abc"}, repeats=3)
    assert calls == list("abc") * 3
    assert list(seconds) == list("abc") and all(len(v) == 3 and min(v) >= 0 for v in seconds.values())
