"""Runs that differ only in seed: grouped into one row with mean, standard deviation and count."""

from __future__ import annotations

import statistics
from types import SimpleNamespace

import pytest

from mnist_core import compare, runs, seeds
from mnist_core.config import RunConfig
from mnist_core.errors import ConfigError
from tests.support.fakeruns import make_fake_runs

METRICS = ("test_accuracy", "train_time_s")


def _row(run_id: str, cfg: RunConfig, acc: float | None, status: str = "completed", **extra):
    return {
        "id": run_id, "name": run_id, "status": status, "seed": cfg.seed, "architecture": cfg.label(),
        seeds.GROUP_KEY: seeds.group_key(cfg), "test_accuracy": acc, "train_time_s": 10.0, **extra,
    }


def test_group_key_ignores_only_seed_and_device():
    base = RunConfig(hidden=(256,))
    assert seeds.group_key(base) == seeds.group_key(base.replace(seed=7, device="cpu"))
    for change in ({"lr": 2e-3}, {"hidden": (128,)}, {"val_fraction": 0.2}, {"weight_decay": 1e-4}):
        assert seeds.group_key(base) != seeds.group_key(base.replace(**change))


def test_three_seeds_become_one_row_with_mean_std_and_n():
    cfg = RunConfig(hidden=(512,))
    accs = [0.962, 0.960, 0.965]
    rows = [_row(f"r{s}", cfg.replace(seed=s), a) for s, a in enumerate(accs)]
    other = _row("x", RunConfig(hidden=(128,)), 0.94)
    out = seeds.group_rows([rows[0], other, rows[1], rows[2]], METRICS)
    assert [r["id"] for r in out] == ["r0", "x"]  # in order of first appearance
    g = out[0]
    assert g["n_seeds"] == 3 and g["seeds"] == [0, 1, 2] and g["run_ids"] == ["r0", "r1", "r2"]
    assert g["test_accuracy"] == pytest.approx(statistics.fmean(accs))
    assert g["test_accuracy_std"] == pytest.approx(statistics.stdev(accs))
    assert g["train_time_s_std"] == 0.0
    assert g["name"] == f"{cfg.label()} (3 seeds)"
    assert out[1]["n_seeds"] == 1 and out[1]["test_accuracy_std"] is None and out[1]["test_accuracy"] == 0.94
    assert seeds.repeated(out) == 1


def test_failed_runs_and_missing_values_are_not_averaged_in():
    cfg = RunConfig()
    rows = [
        _row("a", cfg, 0.95),
        _row("b", cfg.replace(seed=1), None, status="failed"),
        _row("c", cfg.replace(seed=2), 0.97),
        _row("d", cfg.replace(seed=3), float("nan")),  # a damaged summary: missing, not a number
    ]
    out = seeds.group_rows(rows, METRICS)
    assert [r["id"] for r in out] == ["a", "b"]
    assert out[0]["run_ids"] == ["a", "c", "d"] and out[0]["n_seeds"] == 3
    assert out[0]["test_accuracy"] == pytest.approx(0.96)
    assert out[1]["n_seeds"] == 1 and out[1]["status"] == "failed"


def test_copies_and_derived_runs_are_not_seeds():
    cfg = RunConfig()
    rows = [
        _row("a", cfg, 0.95),
        _row("copy", cfg, 0.95),
        _row("taught", cfg.replace(seed=1), 0.96, parent="a"),
        _row("b", cfg.replace(seed=1), 0.97),
    ]
    out = seeds.group_rows(rows, METRICS)
    assert [r["run_ids"] for r in out] == [["a", "b"], ["copy"], ["taught"]]


def test_rows_of_real_run_folders_group_by_configuration(runs_dir):
    make_fake_runs(runs_dir, 4, seed=5, n_test=100)
    good, _ = runs.scan_runs(runs_dir)
    rows = compare.table(good)
    twin = dict(rows[0], id="twin", seed=rows[0]["seed"] + 1, status="completed", test_accuracy=0.5)
    rows[0]["status"] = "completed"
    out = seeds.group_rows([*rows, twin], compare.METRIC_KEYS)
    assert len(out) == len(rows) and out[0]["run_ids"] == [rows[0]["id"], "twin"]


def test_repeat_configs_uses_the_chosen_seed_then_the_free_ones():
    cfg = RunConfig(seed=5)
    done = [cfg.replace(seed=0), cfg.replace(seed=2), RunConfig(hidden=(64,), seed=1)]
    assert [c.seed for c in seeds.repeat_configs(cfg, done)] == [5, 1, 3]
    assert [c.seed for c in seeds.repeat_configs(cfg, [*done, cfg])] == [1, 3, 4]
    assert all(seeds.group_key(c) == seeds.group_key(cfg) for c in seeds.repeat_configs(cfg, done))
    with pytest.raises(ConfigError, match="seeds"):
        seeds.repeat_configs(cfg, done, 0)


def test_queue_repeats_submits_one_job_per_seed_and_a_second_click_three_more():
    class Registry:
        def __init__(self):
            self.calls = []

        def submit(self, cfg, **kwargs):
            self.calls.append((cfg, kwargs))
            return len(self.calls)

        def active(self):  # the jobs queued so far, as JobRegistry.active() lists them
            return [SimpleNamespace(config=c) for c, _ in self.calls]

    reg = Registry()
    jobs = seeds.queue_repeats(reg, RunConfig(), [RunConfig()], runs_dir="/r", name="base")
    assert jobs == [1, 2, 3]
    assert [c.seed for c, _ in reg.calls] == [1, 2, 3]
    assert [k["name"] for _, k in reg.calls] == ["base seed 1", "base seed 2", "base seed 3"]
    assert all(k["runs_dir"] == "/r" for _, k in reg.calls)
    seeds.queue_repeats(reg, RunConfig(), [RunConfig()])
    assert [c.seed for c, _ in reg.calls[3:]] == [4, 5, 6]


def test_interval_text():
    assert seeds.interval_text(0.9612, 0.0015, 5, percent=True) == "96.12% ± 0.15 (n=5)"
    assert seeds.interval_text(0.9612, None, 1, percent=True) == "96.12%"
    assert seeds.interval_text(None, None, 0) == "—"
