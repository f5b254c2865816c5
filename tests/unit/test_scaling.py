"""The saturating power law err = a * N^-b + c: known exponents recovered, intervals that cover, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_core import compare, scaling
from mnist_core.config import RunConfig
from mnist_core.costs import CostReport

A, B, C = 30.0, 0.5, 0.02


def _law(n):
    return A * np.asarray(n, dtype=float) ** -B + C


SIZES = np.array([1e4, 3e4, 1e5, 3e5, 1e6, 3e6, 1e7])


def test_recovers_known_exponents_from_exact_points():
    fit = scaling.fit_points(SIZES, _law(SIZES))
    assert fit.a == pytest.approx(A, rel=1e-3)
    assert fit.b == pytest.approx(B, rel=1e-4)
    assert fit.c == pytest.approx(C, abs=1e-6)
    p = fit.predict(2e6)
    assert p.error == pytest.approx(float(_law(2e6)), rel=1e-5)


def test_noisy_points_give_an_interval_that_covers_the_truth():
    rng = np.random.default_rng(0)
    xs = np.repeat(SIZES, 3)  # three seeds per size
    covered = 0
    for _ in range(40):
        ys = _law(xs) + rng.normal(0, 0.002, xs.size)
        fit = scaling.fit_points(xs, ys)
        assert fit.b == pytest.approx(B, abs=0.15)
        p = fit.predict(5e5)
        assert p.low is not None and p.low <= p.error <= p.high
        covered += p.low <= float(_law(5e5)) <= p.high
    assert covered >= 34  # a 95% interval: about 38 of 40, never a handful


def test_interval_widens_outside_the_fitted_sizes():
    rng = np.random.default_rng(1)
    ys = _law(SIZES) + rng.normal(0, 0.002, SIZES.size)
    fit = scaling.fit_points(SIZES, ys)
    inside, far = fit.predict(3e5), fit.predict(1e9)
    assert (far.high - far.low) > (inside.high - inside.low)
    assert far.accuracy_interval == (1 - far.high, 1 - far.low)


def test_too_few_runs_or_sizes_predict_nothing():
    with pytest.raises(scaling.NotEnoughRuns, match="Not enough runs to predict: 4 completed"):
        scaling.fit_points(SIZES[:4], _law(SIZES[:4]))
    xs = np.array([1e4, 1e4, 1e5, 1e5, 1e5, 1e4])
    with pytest.raises(scaling.NotEnoughRuns, match="2 size"):
        scaling.fit_points(xs, _law(xs))


def _row(i: int, params: float, acc: float, **extra):
    return {"id": f"r{i}", "status": "completed", "model": "mlp", "activation": "relu", "dataset": "mnist",
            "parameters": params, "flops": 2 * params, "test_accuracy": acc, **extra}  # fmt: skip


def test_rows_of_one_family_and_dataset_only_and_a_config_prediction():
    rows = [_row(i, n, 1 - float(_law(n))) for i, n in enumerate(SIZES)]
    rows += [
        _row(90, 1e5, 0.5, model="cnn", activation="modern"),  # another family
        _row(91, 1e5, 0.5, dataset="fashion"),
        _row(92, 1e5, 0.5, status="failed"),
    ]
    fit = scaling.fit_rows(rows, "mlp", "mnist")
    assert fit.n == len(SIZES) and fit.b == pytest.approx(B, rel=1e-3)
    fits, reasons = scaling.fits(rows, "parameters")
    assert [f.family for f in fits] == ["mlp"] and len(reasons) == 2
    cost = CostReport(parameters=407050, macs=406528, flops=813056, weights_bytes=1)
    pred, _ = scaling.predict_config(RunConfig(), cost, rows)
    assert pred.accuracy == pytest.approx(1 - float(_law(407050)), rel=1e-4)
    with pytest.raises(scaling.NotEnoughRuns):
        scaling.predict_config(RunConfig(model="cnn"), cost, rows)


def test_training_flops_count_forward_and_backward_over_the_images_seen():
    assert scaling.train_flops(813056, 0.1, 2) == 3 * 813056 * 54_000 * 2
    assert scaling.train_flops(None, 0.1, 2) is None and scaling.train_flops(10, 0.1, 0) is None
    assert "train_flops" in compare.COSTS


def test_an_exact_copy_of_a_run_is_one_point_not_two():
    """An imported copy of a run counted twice in the fit (and a corrupt copy too)."""
    rows = [_row(i, n, 1 - float(_law(n))) for i, n in enumerate(SIZES)]
    copies = [dict(rows[0], id="copy-a"), dict(rows[0], id="copy-b")]
    assert scaling.comparable(rows + copies, "mlp", "mnist", "parameters") == scaling.comparable(
        rows, "mlp", "mnist", "parameters"
    )


def test_a_prediction_whose_interval_spans_more_than_20_points_gives_no_figure(monkeypatch):
    """With width 16 and batch 8 the Train page said "57.0% -57.0/+43.0" (an interval of 0 to 100%)."""
    from mnist_core import report

    gen = np.random.default_rng(0)
    sizes = [27_600, 40_000, 55_000, 80_000, 118_000]
    rows = [_row(i, n, float(gen.uniform(0.5, 0.99))) for i, n in enumerate(sizes)]  # no law: a wide fit
    cost = CostReport(parameters=12_730, macs=12_704, flops=25_408, weights_bytes=1)
    interval = scaling.fit_rows(rows, "mlp", "mnist").predict(cost.parameters).accuracy_interval
    assert interval is None or interval[1] - interval[0] > report.MAX_INTERVAL
    monkeypatch.setattr(compare, "table", lambda _runs: rows)  # the saved runs, as the preview reads them
    item = report.prediction_item(RunConfig(hidden=(16,), batch_size=8), cost, [])
    assert item.value == report.TOO_VAGUE
    assert "no figure is given" in (item.help or "")
    narrow = [_row(i, n, 1 - float(_law(n))) for i, n in enumerate(SIZES)]  # a law fitted tightly: a figure
    monkeypatch.setattr(compare, "table", lambda _runs: narrow)
    item = report.prediction_item(RunConfig(), CostReport(407050, 406528, 813056, 1), [])
    assert item.value != report.TOO_VAGUE and item.value.endswith(tuple("0123456789"))
