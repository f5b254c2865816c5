"""Benchmark part 13 (benchmarks.layer_stats): whole trainings with and without the per-layer statistics."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import bench, layer_stats
from benchmarks.report import report


def test_part_13_pairs_whole_trainings_with_and_without_the_statistics(
    synthetic_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bool] = []
    real = layer_stats.train

    def spy(cfg, data, **kw):
        calls.append(kw["layer_stats"])
        assert cfg.batch_size == 64 and kw.get("should_stop") is None  # whole runs, every epoch
        return real(cfg, data, **kw)

    monkeypatch.setattr(layer_stats, "train", spy)
    results = bench.run_parts(bench.parse_args(["--parts", "13", "--repeats", "1"]), synthetic_data_dir)
    r = results["layer_stats"]
    repeats = r["repeats"]
    assert repeats == 5  # at least five pairs, whatever --repeats says: a median of ratios needs them
    assert calls[0] is True  # the warm-up
    assert sorted(calls[1:]) == [False] * repeats + [True] * repeats  # then the pairs
    assert calls[1:3] == [True, False] and calls[3:5] == [False, True]  # the order alternates
    assert len(r["with_cpu_s"]) == len(r["without_wall_s"]) == repeats
    assert r["probed_per_run"] >= 1 and r["target"] == 0.03
    assert r["batch"] == 64 and r["epochs"] == 1
    text = report({"data": "d", "threads": 1, "torch": "t", **results})
    assert "per-layer statistics, MLP 784-512-10" in text and "target < 3%" in text
