"""Known answers for the comparison statistics (issue 24) and the per-run fields they read."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy.stats import bootstrap

from mnist_core import runs, significance
from mnist_core.calibration import FIELDS, SignificanceError, pack_correct, reliability, unpack_correct
from mnist_core.errors import CorruptRun
from mnist_core.runs import schema as runschema
from mnist_core.runs import write_json
from mnist_core.significance import against_best, compare_pair, compare_runs
from tests.support.fakeruns import make_fake_runs


def pair(n: int, only_a: int, only_b: int, both_wrong: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Hit vectors of two runs with the given disagreements (the rest both right)."""
    a, b = np.ones(n, bool), np.ones(n, bool)
    b[:only_a] = False
    a[only_a : only_a + only_b] = False
    a[only_a + only_b : only_a + only_b + both_wrong] = False
    b[only_a + only_b : only_a + only_b + both_wrong] = False
    return a, b


def test_mcnemar_exact_matches_the_binomial_table():
    # 1 vs 9 discordant pairs: P = 2 * (C(10,0) + C(10,1)) / 2^10 = 22/1024.
    a, b = pair(1000, only_a=1, only_b=9)
    test = compare_pair(a, b)
    assert test.only_a == 1 and test.only_b == 9
    assert test.p_value == pytest.approx(22 / 1024, rel=1e-12)
    assert test.real
    assert test.diff == pytest.approx(0.008)


def test_no_disagreement_is_within_noise_with_p_one():
    a, b = pair(500, 0, 0, both_wrong=20)
    test = compare_pair(a, b)
    assert test.p_value == 1.0 and (test.low, test.high) == (0.0, 0.0)
    assert not test.real
    assert test.verdict.endswith("within noise")


def test_balanced_disagreement_is_noise():
    a, b = pair(10_000, only_a=50, only_b=54)
    test = compare_pair(a, b, "A", "B")
    assert test.p_value > 0.7
    assert "within noise" in test.verdict and test.verdict.startswith("B is better than A by 0.04 points")


def test_bootstrap_interval_matches_the_normal_approximation():
    # diff = (300 - 100) / 10000 = 0.02; sd = sqrt((p+ + p- - diff^2) / n) = 0.001990
    a, b = pair(10_000, only_a=100, only_b=300)
    test = compare_pair(a, b)
    sd = math.sqrt((0.04 - 0.02**2) / 10_000)
    assert test.low == pytest.approx(0.02 - 1.96 * sd, abs=3e-4)
    assert test.high == pytest.approx(0.02 + 1.96 * sd, abs=3e-4)
    assert test.verdict == "B is better than A by 2 points, 95% interval 1.61 to 2.39: real (p < 0.0001)"


def test_bootstrap_agrees_with_scipy_resampling_the_pairs():
    a, b = pair(2000, only_a=30, only_b=55, both_wrong=40)
    ours = significance.bootstrap_diff(a, b, n_resamples=20_000, seed=1)
    ref = bootstrap(
        (a.astype(float), b.astype(float)),
        lambda x, y, axis: np.mean(y, axis=axis) - np.mean(x, axis=axis),
        paired=True, vectorized=True, method="percentile", n_resamples=5000, rng=np.random.default_rng(2),
    ).confidence_interval
    assert ours[0] == pytest.approx(ref.low, abs=1.5e-3)
    assert ours[1] == pytest.approx(ref.high, abs=1.5e-3)


def test_the_verdict_names_the_better_run_whichever_side_it_is_on():
    a, b = pair(10_000, only_a=300, only_b=100)
    test = compare_pair(a, b, "wide", "narrow")
    assert test.verdict.startswith("wide is better than narrow by 2 points, 95% interval 1.61 to 2.39: real")


def test_several_runs_against_the_best_use_holm():
    best = np.ones(1000, bool)
    _, close = pair(1000, only_a=3, only_b=0)  # best right, close wrong on 3 images
    _, far = pair(1000, only_a=30, only_b=0)
    _, mid = pair(1000, only_a=8, only_b=0)
    tests = against_best({"close": close, "best": best, "far": far, "mid": mid})
    by = {t.b: t for t in tests}
    assert {t.a for t in tests} == {"best"} and set(by) == {"close", "far", "mid"}
    raw = {k: 2 * 0.5 ** by[k].only_a for k in by}  # exact two-sided p with no discordance the other way
    for k in by:
        assert by[k].p_value == pytest.approx(raw[k])
    # Holm: sorted p1 < p2 < p3 multiplied by 3, 2, 1, then made monotone.
    assert by["far"].p_adjusted == pytest.approx(3 * raw["far"])
    assert by["mid"].p_adjusted == pytest.approx(2 * raw["mid"])
    assert by["close"].p_adjusted == pytest.approx(min(1.0, raw["close"]))
    assert by["mid"].real and by["far"].real and not by["close"].real


def test_holm_can_turn_a_raw_hit_into_noise():
    best = np.ones(1000, bool)
    _, six = pair(1000, only_a=6, only_b=0)  # raw p = 2/64 = 0.031 < 0.05
    _, seven = pair(1000, only_a=7, only_b=0)  # raw p = 0.0156, times 2 = 0.031
    tests = {t.b: t for t in against_best({"best": best, "six": six, "seven": seven})}
    assert tests["six"].p_value < 0.05 and tests["six"].real  # Holm's last step multiplies by 1
    _, a = pair(1000, only_a=6, only_b=0)
    tests = {t.b: t for t in against_best({"best": best, "six": a, "six2": a.copy()})}
    assert tests["six"].p_value < 0.05 and tests["six"].p_adjusted > 0.05 and not tests["six"].real


def test_pairwise_test_is_fast_on_ten_thousand_images():
    rng = np.random.default_rng(0)
    a, b = rng.random(10_000) < 0.97, rng.random(10_000) < 0.975
    compare_pair(a, b)
    start = time.process_time()
    for _ in range(10):
        compare_pair(a, b)
    assert (time.process_time() - start) / 10 < 0.05


def test_different_test_sets_are_refused():
    with pytest.raises(SignificanceError, match="different test sets"):
        compare_pair(np.ones(10, bool), np.ones(12, bool))
    with pytest.raises(SignificanceError, match="at least two"):
        against_best({"one": np.ones(10, bool)})


@pytest.mark.parametrize("n", [1, 7, 8, 9, 10_000])
def test_bits_round_trip(n):
    correct = np.random.default_rng(n).random(n) < 0.9
    text = pack_correct(correct)
    assert np.array_equal(unpack_correct(text, n), correct)
    runschema.summary({"test_correct_bits": text, "test_n": n})  # the schema accepts what we write


def test_bits_of_the_wrong_length_are_refused():
    text = pack_correct(np.ones(16, bool))
    with pytest.raises(CorruptRun, match="bits"):
        unpack_correct(text, 100)
    with pytest.raises(CorruptRun, match="test_n"):
        runschema.summary({"test_correct_bits": text, "test_n": 100})
    with pytest.raises(CorruptRun):
        runschema.summary({"test_correct_bits": "not base64!", "test_n": 16})


def test_ece_of_a_perfectly_calibrated_toy_is_near_zero():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.1, 1.0, 200_000)
    correct = rng.random(conf.size) < conf  # right exactly as often as it claims
    rel = reliability(conf, correct)
    assert rel.ece < 0.01
    assert len(rel.counts) == 15 and sum(rel.counts) == conf.size
    for c, acc in zip(rel.confidence, rel.accuracy, strict=True):
        if c is not None:
            assert acc == pytest.approx(c, abs=0.02)


def test_ece_exact_for_a_constant_confidence():
    conf = np.full(1000, 0.75)
    assert reliability(conf, np.arange(1000) % 4 != 0).ece == pytest.approx(0.0, abs=1e-12)


def test_ece_of_an_overconfident_toy():
    conf = np.full(1000, 0.99)
    correct = np.arange(1000) < 600  # claims 99%, right 60% of the time
    rel = reliability(conf, correct)
    assert rel.ece == pytest.approx(0.39)
    assert rel.counts[-1] == 1000 and rel.accuracy[-1] == pytest.approx(0.6)
    assert rel.confidence[0] is None  # empty bins have no mean
    runschema.summary({"ece": rel.ece, "reliability": rel.to_dict()})


def test_confidence_of_exactly_one_lands_in_the_last_bin():
    rel = reliability(np.array([1.0, 0.0]), np.array([True, False]))
    assert rel.counts[-1] == 1 and rel.counts[0] == 1 and rel.ece == 0.0


def test_fake_runs_carry_the_new_fields(runs_dir):
    ids = make_fake_runs(runs_dir, 3, seed=4, n_test=300)
    for run_id in ids:
        summary = runs.load_run(run_id, runs_dir).summary
        if "test_accuracy" not in summary:
            continue
        correct = unpack_correct(summary["test_correct_bits"], summary["test_n"])
        assert summary["test_n"] == 300
        assert correct.mean() == pytest.approx(summary["test_accuracy"])
        assert 0 <= summary["ece"] <= 1


def _without_new_fields(summary):
    return {k: v for k, v in summary.items() if k not in FIELDS}


def _completed(ids, runs_dir):
    return [i for i in ids if runs.load_run(i, runs_dir).status == "completed"]


def test_older_run_is_measured_once_and_cached(runs_dir, synthetic_data_dir):
    made = make_fake_runs(runs_dir, 4, seed=1, n_test=200, weights=True, max_width=64)
    ids = _completed(made, runs_dir)[:2]
    for run_id in ids:  # as a run saved before issue 24: none of the new keys
        path = runs.run_path(run_id, runs_dir) / "summary.json"
        write_json(path, _without_new_fields(runs.load_run(run_id, runs_dir).summary))
    result = compare_runs(ids, runs_dir, synthetic_data_dir)
    assert len(result.tests) == 1 and all(r.correct.size == 200 for r in result.records)
    assert all(r.reliability is not None for r in result.records)
    for run_id in ids:
        summary = runs.load_run(run_id, runs_dir).summary
        assert summary["test_n"] == 200 and "reliability" in summary
        cached = runs.run_path(run_id, runs_dir) / "summary.json"
        stamp = cached.stat().st_mtime_ns
        significance.run_record(run_id, runs_dir, synthetic_data_dir)
        assert cached.stat().st_mtime_ns == stamp  # read from the cache, not measured again


def test_run_without_weights_or_data_falls_back_to_misclassified(runs_dir, tmp_path):
    ids = _completed(make_fake_runs(runs_dir, 4, seed=2, n_test=200), runs_dir)[:2]
    for run_id in ids:
        path = runs.run_path(run_id, runs_dir) / "summary.json"
        write_json(path, _without_new_fields(runs.load_run(run_id, runs_dir).summary))
    result = compare_runs(ids, runs_dir, tmp_path / "no-data")
    for r in result.records:
        summary = runs.load_run(r.id, runs_dir).summary
        assert r.reliability is None and r.accuracy == pytest.approx(summary["test_accuracy"])


def test_comparing_one_run_is_refused(runs_dir):
    ids = make_fake_runs(runs_dir, 1, seed=3, n_test=200)
    with pytest.raises(SignificanceError, match="two different runs"):
        compare_runs([ids[0], ids[0]], runs_dir)


def test_a_finished_run_saves_its_hits_and_calibration(runs_dir, synthetic_data_dir):
    from mnist_core.config import RunConfig
    from mnist_core.pipeline import run_training

    info = run_training(RunConfig(hidden=(32,), epochs=1, batch_size=64), runs_dir=runs_dir,
                        data_root=synthetic_data_dir)
    s = info.summary
    correct = unpack_correct(s["test_correct_bits"], s["test_n"])
    assert s["test_n"] == 200 and correct.mean() == pytest.approx(s["test_accuracy"])
    assert set(np.flatnonzero(~correct)) == set(s["misclassified"])
    assert sum(s["reliability"]["counts"]) == 200 and 0 <= s["ece"] <= 1
    # The same figures as measuring the saved run afresh: no second pass was needed to make them.
    again = significance.measure_run(info.id, runs_dir, synthetic_data_dir)
    assert again["test_correct_bits"] == s["test_correct_bits"]
    assert again["ece"] == pytest.approx(s["ece"], abs=1e-6)


@pytest.mark.slow
@pytest.mark.realdata
def test_two_seeds_on_real_mnist(runs_dir, real_data_dir):
    from mnist_core.config import RunConfig
    from mnist_core.pipeline import run_training

    ids = [
        run_training(RunConfig(hidden=(32,), epochs=1, batch_size=256, seed=s), runs_dir=runs_dir,
                     data_root=real_data_dir).id
        for s in (0, 1)
    ]
    found = compare_runs(ids, runs_dir, real_data_dir)
    (test,) = found.tests
    assert test.n == 10_000 and len(runs.load_run(ids[0], runs_dir).summary["test_correct_bits"]) == 1668
    assert test.low <= test.diff <= test.high and test.only_a + test.only_b > 0
    assert all(r.reliability is not None and r.reliability.ece < 0.1 for r in found.records)


# -- configurations across seeds ------------------------------------------------------------


def test_configurations_are_compared_over_their_seeds_with_welch_and_holm():
    tests = significance.compare_configurations({
        "w512": [0.975, 0.976, 0.974],
        "w256": [0.968, 0.969, 0.967],  # 0.7 points lower, spread 0.1: real
        "w300": [0.973, 0.978, 0.972],  # 0.1 lower with a wide spread: seed noise
        "alone": [0.99],  # one seed: no spread to test against
    })  # fmt: skip
    by_b = {t.b: t for t in tests}
    assert set(by_b) == {"w256", "w300"} and all(t.a == "w512" for t in tests)
    assert by_b["w256"].real and by_b["w256"].diff == pytest.approx(-0.007)
    assert not by_b["w300"].real
    assert by_b["w256"].p_adjusted >= by_b["w256"].p_value  # Holm never lowers a p-value
    assert "real across seeds" in by_b["w256"].verdict and "within seed noise" in by_b["w300"].verdict
    assert significance.compare_configurations({"a": [0.9, 0.91], "b": [0.95]}) == []
    same = significance.compare_configurations({"a": [0.9, 0.9], "b": [0.9, 0.9]})
    assert [t.p_value for t in same] == [1.0] and not same[0].real


def test_across_seeds_groups_the_table_rows_and_tells_same_named_configurations_apart():
    def row(run_id, seed, acc, lr):
        return {"id": run_id, "name": "MLP 784-32-10 bs128", "status": "completed", "seed": seed,
                "group": f"g-lr{lr}", "test_accuracy": acc}  # fmt: skip

    rows = [row("a0", 0, 0.930, 1e-3), row("a1", 1, 0.931, 1e-3), row("b0", 0, 0.900, 1e-1),
            row("b1", 1, 0.902, 1e-1), row("c0", 0, 0.95, 3e-3)]  # fmt: skip
    found = significance.across_seeds(rows)
    assert set(found.config_of) == {"a0", "a1", "b0", "b1"}  # c0 has one seed: no group
    assert found.config_of["a0"] == found.config_of["a1"] != found.config_of["b0"]
    (test,) = found.tests
    assert test.a == found.config_of["a0"] and test.b == found.config_of["b0"] and test.n_a == test.n_b == 2
