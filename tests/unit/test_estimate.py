"""Cost and time-per-epoch estimates shown before a run starts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mnist_core import estimate, sizing, sweeps
from mnist_core.config import RunConfig
from mnist_core.errors import ConfigError, ProbeDeferred
from mnist_core.runs import RunInfo

TINY = RunConfig(hidden=(16,), batch_size=64)


def run_info(cfg: RunConfig, status: str = "completed", **summary: object) -> RunInfo:
    return RunInfo(
        id="r", path=Path("r"), status=status, config=cfg, name="r", created="", updated="", summary=summary
    )


def test_available_devices_start_with_auto_and_include_the_cpu() -> None:
    devices = sizing.available_devices()
    assert devices[0] == "auto" and "cpu" in devices


def test_split_sizes_read_the_dataset_or_assume_the_standard_size(
    synthetic_data_dir: Path, tmp_path: Path
) -> None:
    assert sizing.split_sizes("mnist", 0.1, synthetic_data_dir) == sizing.SplitSizes(900, 100, True)
    assert sizing.split_sizes("mnist", 0.2, tmp_path) == sizing.SplitSizes(48_000, 12_000, False)


def test_a_batch_larger_than_the_training_set_is_refused_by_name() -> None:
    sizes = sizing.SplitSizes(900, 100, True)
    sizing.check_fits(TINY.replace(batch_size=900), sizes)
    with pytest.raises(ConfigError, match=r"batch_size: 1024 is larger than the training set \(900 images\)"):
        sizing.check_fits(TINY.replace(batch_size=1024), sizes)


def test_cost_preview_counts_the_mlp_and_refuses_an_impossible_cnn() -> None:
    cost = sizing.cost_preview(RunConfig(hidden=(32, 32)))
    macs = 784 * 32 + 32 * 32 + 32 * 10
    assert (cost.parameters, cost.macs, cost.flops) == (macs + 32 + 32 + 10, macs, 2 * macs)
    assert cost.weights_bytes == 4 * cost.parameters
    with pytest.raises(ConfigError, match="cnn_channels"):
        sizing.cost_preview(RunConfig(model="cnn", cnn_style="lenet", cnn_channels=(8, 16, 32)))


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
    sizes = sizing.SplitSizes(54_000, 6_000, True)
    assert estimate.from_past_runs(other, [run_info(TINY, samples_per_s=9_000.0)], sizes) is None
    assert estimate.probe_config(other) != estimate.probe_config(TINY)


def test_past_runs_give_the_median_speed_of_matching_finished_runs() -> None:
    sizes = sizing.SplitSizes(54_000, 6_000, True)
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
    measured = estimate.probe(TINY, sizing.cost_preview(TINY).macs, budget_s=0.05)
    assert measured.steps >= 1 and 0 < measured.step_s < 1
    assert measured.batches == "batch 64" and measured.device == "cpu"
    sizes = sizing.SplitSizes(900, 100, True)
    epoch = estimate.from_probe(TINY, measured, sizes, busy=True)
    assert 0 < measured.epoch_s < 5  # a checkpoint saved once per epoch, timed
    validation = 100 * measured.step_s / 64 * estimate.FORWARD_SHARE
    expected = 15 * measured.step_s + validation + measured.epoch_s
    assert epoch.seconds == pytest.approx(expected) and epoch.source == "probe"
    assert "per epoch to save its checkpoint" in epoch.detail
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


def _fake_probe(step_s: float, calls: list[RunConfig]):
    def probe_fn(cfg: RunConfig) -> estimate.Probe:
        calls.append(cfg)
        return estimate.Probe(step_s=step_s, steps=10, device="cpu", batches=f"batch {cfg.batch_size}")

    return probe_fn


def test_a_probe_is_taken_once_and_kept_while_a_run_trains(monkeypatch: pytest.MonkeyPatch) -> None:
    """The preview changed while the run it estimated trained: the page re-probed a busy machine."""
    taken: list[float] = []

    def probe(cfg: RunConfig, macs: int | None = None) -> estimate.Probe:
        taken.append(0.001 * (len(taken) + 1))  # every new probe measures something else
        return estimate.Probe(step_s=taken[-1], steps=10, device="cpu", batches="batch 64")

    monkeypatch.setattr(estimate, "probe", probe)
    cache = estimate.ProbeCache()
    first = cache.get(TINY)
    assert cache.get(TINY, busy=True) == first  # a run started: the same figure
    assert cache.get(TINY.replace(lr=0.1, epochs=7)) == first  # same probe config, same probe
    busy_only = cache.get(TINY.replace(batch_size=32), busy=True)
    assert busy_only.busy and cache.get(TINY.replace(batch_size=32), busy=True) == busy_only
    assert not cache.get(TINY.replace(batch_size=32)).busy  # re-taken once idle
    assert len(taken) == 3


def test_a_sweeps_probe_waits_until_nothing_trains_and_the_estimate_says_so(monkeypatch, tmp_path) -> None:
    """The Sweeps page times nothing beside a run: the probe would slow it and change its row's time."""
    taken: list[RunConfig] = []

    def probe(cfg: RunConfig, macs: int) -> estimate.Probe:
        taken.append(cfg)
        return estimate.Probe(step_s=0.001, steps=10, device="cpu", batches="batch 64")

    monkeypatch.setattr(estimate, "probe", probe)
    cache = estimate.ProbeCache()
    known = cache.get(TINY)
    assert cache.get(TINY, busy=True, wait_idle=True) == known  # measured before: still given
    other = TINY.replace(batch_size=32)
    with pytest.raises(ProbeDeferred, match="while a run trains"):
        cache.get(other, busy=True, wait_idle=True)
    assert taken == [estimate.probe_config(TINY)]  # nothing measured while busy
    sizes = sizing.split_sizes(TINY.dataset, TINY.val_fraction, tmp_path)
    busy = lambda c: cache.get(c, True, wait_idle=True)  # noqa: E731
    found = sweeps.time_estimate([TINY, other], [], tmp_path, probe_fn=busy)
    assert found.unknown == 1 and "while a run trains" in (found.first_error or "")
    assert found.seconds == pytest.approx(estimate.run_seconds(TINY, [], sizes, cache.get))
    assert not cache.get(other, wait_idle=True).busy and len(taken) == 2  # idle again: measured


def test_the_probe_is_scaled_by_how_long_the_last_run_took_against_its_own_probe() -> None:
    """0.86 s per epoch estimated, 1.8 s measured: the last finished run here shows the ratio."""
    sizes = sizing.SplitSizes(54_000, 6_000, True)
    calls: list[RunConfig] = []
    probe_fn = _fake_probe(0.001, calls)
    other = TINY.replace(hidden=(32,))
    predicted = estimate.from_probe(other, probe_fn(other), sizes).seconds
    took_twice = run_info(other, samples_per_s=54_000 / (2 * predicted), device="cpu")
    older = run_info(other, samples_per_s=1.0)  # older: newest first, this one is ignored
    runs = [run_info(TINY, status="running"), took_twice, older]  # the one training is not finished
    got = estimate.epoch_estimate(TINY, runs, sizes, probe_fn)
    plain = estimate.from_probe(TINY, probe_fn(TINY), sizes).seconds
    assert got.source == "probe" and got.seconds == pytest.approx(2 * plain)
    assert "x2" in got.detail and "MLP 784-32-10 bs64" in got.detail
    # No finished run, a run on another device, or an absurd ratio: the probe alone.
    elsewhere, absurd = run_info(other, samples_per_s=1e3, device="cuda"), run_info(other, samples_per_s=1e-3)
    for runs in ([], [elsewhere], [absurd]):
        assert estimate.epoch_estimate(TINY, runs, sizes, probe_fn).seconds == pytest.approx(plain)


def test_a_whole_run_is_the_train_pages_epoch_estimate_times_its_epochs() -> None:
    """The Sweeps page wrote its own past-runs-else-probe estimate, without the calibration."""
    sizes = sizing.SplitSizes(54_000, 6_000, True)
    probe_fn = _fake_probe(0.001, [])
    other = TINY.replace(hidden=(32,))
    predicted = estimate.from_probe(other, probe_fn(other), sizes).seconds
    runs = [run_info(other, samples_per_s=54_000 / (2 * predicted), device="cpu")]
    cfg = TINY.replace(epochs=3)
    epoch = estimate.epoch_estimate(cfg, runs, sizes, probe_fn)
    assert epoch.source == "probe" and "x2" in epoch.detail  # calibrated
    assert estimate.run_seconds(cfg, runs, sizes, probe_fn) == pytest.approx(3 * epoch.seconds)
    past = [run_info(cfg, samples_per_s=27_000.0)]  # same model and batch: 2 s per epoch
    assert estimate.run_seconds(cfg, past, sizes, probe_fn) == pytest.approx(6.0)
