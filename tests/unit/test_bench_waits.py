"""The benchmark's parts 8-12 (what the user waits on), on the small generated dataset: structure only."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch

from benchmarks import bench, waits
from mnist_core import fast
from mnist_core import study as study_module
from mnist_core.config import RunConfig


def test_sides_take_turns_and_the_switch_goes_back_to_the_environment() -> None:
    seen: list[bool] = []
    out = waits.in_turns(lambda: seen.append(fast.enabled()) or len(seen), repeats=3)
    assert seen == [True, False, False, True, True, False]  # who goes first alternates
    assert out == {"fast": [1, 4, 5], "plain": [2, 3, 6]}
    assert fast._setting is None


@pytest.mark.slow
def test_wait_parts_run_against_their_baselines_and_are_reported(
    synthetic_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corrections: list[tuple[object, ...]] = []  # a real correction takes minutes on a loaded machine
    monkeypatch.setattr(waits, "correct", lambda *args, **kwargs: corrections.append((args, kwargs)))
    every_row = study_module.rows(batch_one=False)
    monkeypatch.setattr(study_module, "rows", lambda batch_one: every_row[-2:])  # MLP-5 and LeNet-5
    out = tmp_path / "bench.json"
    argv = ["--parts", "8", "9", "10", "11", "12", "--repeats", "1", "--steps", "2", "--json", str(out)]
    assert bench.main(argv) == 0
    results = json.loads(out.read_text())
    for key in ("quick_model", "cnn_throughput", "correction"):
        part = results[key]
        assert part["fast_s"]["median"] > 0 and part["plain_s"]["median"] > 0
        assert part["speedup"] == pytest.approx(part["plain_s"]["median"] / part["fast_s"]["median"])
    assert set(results["quick_model"]["test_accuracy"]) == {"fast", "plain"}
    assert [r["model"] for r in results["cnn_training"]] == list(waits.TRAINING_ROWS)
    assert results["cnn_training"][1]["blog_s"] == 6.87  # LeNet-5 on the blog's laptop
    accuracy = {r["model"]: r for r in results["blog_accuracy"]}  # trained whole, as the blog did
    assert list(accuracy) == ["MLP-5 784-512-256-120-84-10", "LeNet-5"]
    lenet = accuracy["LeNet-5"]
    assert (lenet["epochs"], lenet["batch"], lenet["blog_accuracy_pct"]) == (2, 64, 97.8)
    assert 0 <= lenet["test_accuracy_pct"] <= 100 and lenet["epoch_s"] > 0
    assert lenet["at_least_blog"] == (lenet["test_accuracy_pct"] >= 97.8)
    study = results["study"]
    labels = [r["row"] for r in study["rows"]]
    assert labels == ["MLP-5 784-512-256-120-84-10", "LeNet-5"]
    assert study["blog_s"] == pytest.approx(2 * (4.5 + 6.87))  # two epochs of each, on the blog's laptop
    assert len(corrections) == 3 and all("settings" not in kw and len(a) == 3 for a, kw in corrections)
    assert study["fast_s"] == pytest.approx(sum(r["fast_s"] for r in study["rows"]))
    text = bench.report(results)
    for words in ("quick model", "LeNet-5", "on the test set", "a correction end to end", "PROJECTED",
                  "trained as the blog did"):
        assert words in text


def test_the_study_projection_times_each_row_on_the_process_threads_one_thread_and_plain(
    synthetic_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Part 12: per row, seconds per side (the training itself is stubbed); totals, lanes, report."""
    every_row = study_module.rows(batch_one=False)
    monkeypatch.setattr(study_module, "rows", lambda batch_one: every_row[:3])  # 784-{128,256,512}-10
    seen: list[tuple[bool, int]] = []
    lanes: list[tuple[str, bool, int]] = []
    one_thread = {128: 4.0, 256: 2.0, 512: 2.5}  # packed: 128 on lane 0; 512, then 256 on lane 1

    def epoch_s(cfg: RunConfig, batch: int, root: Path, steps: int) -> float:
        if threading.current_thread().name.startswith("study-lane"):
            lanes.append((threading.current_thread().name, fast.enabled(), torch.get_num_threads()))
            return 3.0
        seen.append((fast.enabled(), torch.get_num_threads()))
        if seen[-1] == (True, 1):
            return one_thread[cfg.hidden[0]]
        return 1.0 if seen[-1][0] else 5.0  # the fast path on two threads; plain

    monkeypatch.setattr(waits, "ours_epoch_s", epoch_s)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        out = waits.study_projection(synthetic_data_dir, steps=3)
    finally:
        torch.set_num_threads(before)
    assert seen == [(True, 2), (True, 1), (False, 2)] * 3  # each row: fast, fast on one thread, plain
    assert [r["batch"] for r in out["rows"]] == [64, 64, 64]
    for r in out["rows"]:
        width = int(r["row"].split("-")[1])  # "MLP 784-128-10"
        for side, epoch in (("fast", 1.0), ("fast_1t", one_thread[width]), ("plain", 5.0)):
            part = r["parts"][side]
            assert part["epoch_s"] == pytest.approx(0.9 * epoch)  # 90% of the images: the validation split
            assert r[f"{side}_s"] == pytest.approx(2 * (part["epoch_s"] + part["val_s"]) + part["end_s"])
    assert out["fast_1t_s"] == pytest.approx(sum(r["fast_1t_s"] for r in out["rows"]))
    assert out["threads"] == 2 and out["target_s"] == 60.0 and fast._setting is None
    assert out["two_lanes_1t_s"] == pytest.approx(waits.two_lanes([r["fast_1t_s"] for r in out["rows"]]))
    # the lanes: each row once, on its own thread with one intra-op thread, the fast path on
    assert sorted(lanes) == [("study-lane-0", True, 1)] + [("study-lane-1", True, 1)] * 2
    assert [[row["row"] for row in lane] for lane in out["lanes"]] == [
        ["MLP 784-128-10"], ["MLP 784-512-10", "MLP 784-256-10"]
    ]
    sums = [sum(row["total_s"] for row in lane) for lane in out["lanes"]]
    assert out["two_lanes_measured_s"] == max(sums) and torch.get_num_threads() == before
    text = bench.report({"data": "synthetic", "threads": 2, "torch": torch.__version__, "study": out})
    assert "fast on 2 threads" in text and "target 60 s: met" in text and "1 thread" in text
    assert "MEASURED" in text
    assert text.count(" b64 ") == 3


def test_two_lanes_take_the_longest_first() -> None:
    assert waits.two_lanes([3.0, 3.0, 2.0, 2.0, 2.0]) == 7.0  # 3 | 3, a 2 onto each, the last 2 onto one
    assert waits.two_lanes([5.0, 1.0, 1.0]) == 5.0
    assert waits.two_lanes([]) == 0.0
