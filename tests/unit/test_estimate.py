"""Cost and time-per-epoch estimates shown before a run starts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mnist_core import estimate
from mnist_core.config import RunConfig
from mnist_core.errors import ConfigError
from mnist_core.runs import RunInfo

TINY = RunConfig(hidden=(16,), batch_size=64)


def run_info(cfg: RunConfig, status: str = "completed", **summary: object) -> RunInfo:
    return RunInfo(
        id="r", path=Path("r"), status=status, config=cfg, name="r", created="", updated="", summary=summary
    )


def test_available_devices_start_with_auto_and_include_the_cpu() -> None:
    devices = estimate.available_devices()
    assert devices[0] == "auto" and "cpu" in devices


def test_split_sizes_read_the_dataset_or_assume_the_standard_size(
    synthetic_data_dir: Path, tmp_path: Path
) -> None:
    assert estimate.split_sizes("mnist", 0.1, synthetic_data_dir) == estimate.SplitSizes(900, 100, True)
    assert estimate.split_sizes("mnist", 0.2, tmp_path) == estimate.SplitSizes(48_000, 12_000, False)


def test_a_batch_larger_than_the_training_set_is_refused_by_name() -> None:
    sizes = estimate.SplitSizes(900, 100, True)
    estimate.check_fits(TINY.replace(batch_size=900), sizes)
    with pytest.raises(ConfigError, match=r"batch_size: 1024 is larger than the training set \(900 images\)"):
        estimate.check_fits(TINY.replace(batch_size=1024), sizes)


def test_cost_preview_counts_the_mlp_and_refuses_an_impossible_cnn() -> None:
    cost = estimate.cost_preview(RunConfig(hidden=(32, 32)))
    macs = 784 * 32 + 32 * 32 + 32 * 10
    assert (cost.parameters, cost.macs, cost.flops) == (macs + 32 + 32 + 10, macs, 2 * macs)
    assert cost.weights_bytes == 4 * cost.parameters
    with pytest.raises(ConfigError, match="cnn_channels"):
        estimate.cost_preview(RunConfig(model="cnn", cnn_style="lenet", cnn_channels=(8, 16, 32)))


def test_speed_key_ignores_what_does_not_change_a_step() -> None:
    same = TINY.replace(lr=0.1, epochs=9, seed=3, dataset="fashion", schedule="cosine")
    assert estimate.speed_key(same) == estimate.speed_key(TINY)
    assert estimate.speed_key(TINY.replace(batch_size=32)) != estimate.speed_key(TINY)
    assert estimate.probe_config(same) == estimate.probe_config(TINY)


@pytest.mark.parametrize("change", [{"amp": True}, {"activation": "tanh"}], ids=["amp", "tanh"])
def test_speed_key_tells_apart_what_takes_another_training_path(change: dict[str, object]) -> None:
    """Mixed precision and a non-ReLU activation change a step's time: other past runs do not count."""
    other = TINY.replace(**change)
    assert estimate.speed_key(other) != estimate.speed_key(TINY)
    sizes = estimate.SplitSizes(54_000, 6_000, True)
    assert estimate.from_past_runs(other, [run_info(TINY, samples_per_s=9_000.0)], sizes) is None
    assert estimate.probe_config(other) != estimate.probe_config(TINY)


def test_past_runs_give_the_median_speed_of_matching_finished_runs() -> None:
    sizes = estimate.SplitSizes(54_000, 6_000, True)
    runs = [
        run_info(TINY, samples_per_s=9_000.0),
        run_info(TINY.replace(epochs=5), samples_per_s=27_000.0),
        run_info(TINY, status="stopped", samples_per_s=18_000.0),
        run_info(TINY, status="failed", samples_per_s=1.0),  # ignored: not finished
        run_info(TINY.replace(batch_size=1), samples_per_s=1.0),  # ignored: other batch size
        run_info(TINY),  # ignored: no speed recorded
    ]
    got = estimate.from_past_runs(TINY, runs, sizes)
    assert got is not None and got.source == "past runs"
    assert got.seconds == pytest.approx(54_000 / 18_000)
    assert got.steps_per_epoch == math.ceil(54_000 / 64)
    assert "3 past runs" in got.detail
    assert estimate.from_past_runs(TINY.replace(hidden=(17,)), runs, sizes) is None


def test_probe_times_real_steps() -> None:
    measured = estimate.probe(TINY, estimate.cost_preview(TINY).macs, budget_s=0.05)
    assert measured.steps >= 1 and 0 < measured.step_s < 1
    assert measured.batches == "batch 64" and measured.device == "cpu"
    sizes = estimate.SplitSizes(900, 100, True)
    epoch = estimate.from_probe(TINY, measured, sizes, busy=True)
    expected = 15 * measured.step_s + 100 * measured.step_s / 64 * estimate.FORWARD_SHARE
    assert epoch.seconds == pytest.approx(expected) and epoch.source == "probe"
    assert "while another run was training" in epoch.detail


def test_heavy_steps_are_extrapolated_from_two_smaller_batches() -> None:
    assert estimate.probe_batches(64, 10**9) is None  # small batches: always timed as they are
    assert estimate.probe_batches(4096, 12_700) is None  # a cheap step: timed directly
    eight_by_4096 = 784 * 4096 + 7 * 4096 * 4096 + 4096 * 10
    assert estimate.probe_batches(4096, eight_by_4096) == (8, 64)
    two_by_4096 = 784 * 4096 + 4096 * 4096 + 4096 * 10
    assert estimate.probe_batches(4096, two_by_4096) == (32, 256)
    assert estimate.probe_batches(256, two_by_4096) is None  # the larger probe batch would be the batch

    cfg = TINY.replace(batch_size=512)
    measured = estimate.probe(cfg, macs=10**8, budget_s=0.05)  # pretend it is heavy
    assert measured.batches == "batches 8 and 64, extrapolated" and measured.step_s > 0
