"""The Train page's cost preview as one core call (issue 25): ``estimate.preview``."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnist_core import estimate, sizing
from mnist_core.config import RunConfig
from mnist_core.costs import CostReport
from mnist_core.errors import ConfigError

TINY = RunConfig(hidden=(16,), batch_size=64)


def fake_probe(calls: list[RunConfig]) -> estimate.ProbeFn:
    def probe_fn(cfg: RunConfig) -> estimate.Probe:
        calls.append(cfg)
        return estimate.Probe(step_s=0.002, steps=10, device="cpu", batches=f"batch {cfg.batch_size}")

    return probe_fn


def test_preview_is_the_sizes_cost_and_time_the_page_got_from_four_calls(synthetic_data_dir: Path) -> None:
    """Was split_sizes, check_fits, cost_preview and epoch_estimate from the page; the same answers."""
    calls: list[RunConfig] = []
    got = estimate.preview(TINY, [], fake_probe(calls), synthetic_data_dir)
    sizes = sizing.split_sizes(TINY.dataset, TINY.val_fraction, synthetic_data_dir)
    assert got.sizes == sizes == sizing.SplitSizes(900, 100, True)
    assert got.cost == sizing.cost_preview(TINY)
    assert got.epoch == estimate.epoch_estimate(TINY, [], sizes, fake_probe([]))
    assert len(calls) == 1  # one probe, no past runs
    costed: list[RunConfig] = []

    def cost_fn(cfg: RunConfig) -> CostReport:  # the app's cache
        costed.append(cfg)
        return sizing.cost_preview(cfg)

    assert estimate.preview(TINY, [], fake_probe([]), synthetic_data_dir, cost_fn=cost_fn).cost == got.cost
    assert costed == [TINY]


def test_preview_refuses_what_cannot_train_before_measuring_it(synthetic_data_dir: Path) -> None:
    calls: list[RunConfig] = []
    with pytest.raises(ConfigError, match=r"batch_size: 1024 is larger than the training set \(900 images\)"):
        estimate.preview(TINY.replace(batch_size=1024), [], fake_probe(calls), synthetic_data_dir)
    assert calls == []
