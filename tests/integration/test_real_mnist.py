"""Accuracy on the real MNIST (CI provides it through MNIST_DATA_DIR).

Skipped, with the reason, where the real files are not available.
"""

from __future__ import annotations

import pytest

from mnist_core.config import RunConfig, quick_default
from mnist_core.pipeline import run_training
from mnist_core.runs import load_model

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def _train(cfg: RunConfig, runs_dir, real_data_dir) -> float:
    info = run_training(cfg, runs_dir=runs_dir, data_root=real_data_dir)
    assert info.status == "completed"
    return info.summary["test_accuracy"]


def test_blog_mlp_784_512_10_two_epochs(runs_dir, real_data_dir):
    """The blog's base row (96.2% published): batch 64, 2 epochs, Adam 1e-3."""
    cfg = RunConfig(hidden=(512,), batch_size=64, epochs=2, optimizer="adam", lr=1e-3)
    assert _train(cfg, runs_dir, real_data_dir) >= 0.970


def test_modern_cnn_two_epochs(runs_dir, real_data_dir):
    cfg = RunConfig(model="cnn", cnn_style="modern", hidden=(128,), epochs=2)
    assert _train(cfg, runs_dir, real_data_dir) >= 0.985


def test_quick_default_model(runs_dir, real_data_dir):
    info = run_training(quick_default(), runs_dir=runs_dir, data_root=real_data_dir)
    assert info.summary["test_accuracy"] >= 0.985  # issue 28's target; seeds 0-2 gave 98.58-98.74%
    model, cfg = load_model(info.id, runs_dir)  # usable for drawing straight away
    assert cfg == quick_default() and not model.training
