"""benchmarks.study_rows: a study row's step split on one thread, its arithmetic and its bound (structure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks import study_rows
from mnist_core import study


def test_each_mlp_row_is_split_and_bounded_on_one_thread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    every_row = study.rows(batch_one=False)
    picked = [every_row[0], every_row[0], every_row[-1]]  # 784-128-10 twice (trained once) and LeNet-5
    monkeypatch.setattr(study, "rows", lambda batch_one: picked)
    threads: list[int] = []
    real = study_rows.row_parts
    monkeypatch.setattr(
        study_rows, "row_parts", lambda *args: threads.append(torch.get_num_threads()) or real(*args)
    )
    before = torch.get_num_threads()
    out = tmp_path / "rows.json"
    assert study_rows.main(["--steps", "2", "--gflops", "50", "--gbs", "25", "--json", str(out)]) == 0
    assert torch.get_num_threads() == before and threads == [1]  # one MLP row, on one thread
    result = json.loads(out.read_text())
    (row,) = result["rows"]  # LeNet-5 is no MLP: left out
    assert (row["row"], row["batch"], row["run_steps"]) == ("MLP 784-128-10", 64, 2 * 844)
    flops = 2 * 64 * (3 * (784 * 128 + 128 * 10) - 784 * 128)  # no input gradient for the first layer
    assert row["mflop_step"] == pytest.approx(flops / 1e6)
    params = 784 * 128 + 128 + 128 * 10 + 10
    assert row["adam_mb_step"] == pytest.approx(28 * params / 1e6)
    assert row["bound_s"] == pytest.approx(2 * 844 * (flops / 50e9 + 28 * params / 25e9))
    assert row["step_ms"] == pytest.approx(sum(row["ms"].values())) and row["step_ms"] > 0
    assert row["run_s"] == pytest.approx(2 * 844 * row["step_ms"] / 1e3)
    text = capsys.readouterr().out
    assert "MLP 784-128-10" in text and "bound" in text and "50 GFLOP/s" in text
