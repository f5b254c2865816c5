"""Device choice, CPU math settings, and the benchmark's building blocks."""

from __future__ import annotations

import pytest
import torch

from mnist_core import bench
from mnist_core.config import RunConfig
from mnist_core.device import configure_math, resolve_device
from mnist_core.errors import ConfigError
from mnist_core.train import train


def test_auto_picks_an_available_device():
    device = resolve_device("auto")
    if torch.cuda.is_available():
        assert device.type == "cuda"
    elif torch.backends.mps.is_available():
        assert device.type == "mps"
    else:
        assert device.type == "cpu"
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_cuda_is_a_config_error_naming_the_field():
    with pytest.raises(ConfigError, match="device") as err:
        resolve_device("cuda")
    assert err.value.field == "device"
    with pytest.raises(ConfigError):
        train(RunConfig(device="cuda"), None)  # refused before any data is touched


def test_unknown_device_is_refused():
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu")


def test_cpu_math_stays_float32_accurate():
    precision = configure_math("cpu")
    assert precision in ("medium", "highest")
    assert torch.get_float32_matmul_precision() == precision
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(128, 128, generator=gen), torch.randn(128, 128, generator=gen)
    exact = a.double() @ b.double()
    assert ((a @ b).double() - exact).abs().max() / exact.abs().max() < 1e-5


def test_epoch_bound_uses_three_times_forward_flops():
    # 784-512-10: 406,528 MACs = 813,056 FLOPs forward; x3 for training; 60k images.
    assert bench.epoch_bound_s((512,), gflops=100.0) == pytest.approx(3 * 813_056 * 60_000 / 100e9)


def test_engine_and_reference_time_an_epoch_on_generated_data(synthetic_data_dir):
    ours = bench.ours_epoch_s((16,), 32, synthetic_data_dir, steps=5)
    ref = bench.reference_epoch_s((16,), 32, synthetic_data_dir, steps=5)
    assert 0 < ours < 60 and 0 < ref < 60


def test_canvas_inference_rows():
    (mlp, cnn) = bench.bench_inference(repeats=5)
    for row in (mlp, cnn):
        assert row["end_to_end_ms"]["p50"] <= row["end_to_end_ms"]["p95"]
        assert row["preprocess_ms"]["p50"] > 0 and row["predict_ms"]["p50"] > 0


def test_report_formats_every_row():
    results = {
        "data": "d", "threads": 2, "torch": "x", "gflops": 100.0, "bound_s": {"784-512-10": 0.5},
        "training": [{"model": "784-512-10", "batch": 64, "ours_s": bench.median_range([1.0, 2.0, 3.0]),
                      "reference_s": bench.median_range([6.0]), "speedup": 3.0}],
        "inference": [],
    }
    text = bench.report(results)
    assert "784-512-10" in text and "3.00x" in text and "4.00x" in text  # speedup and ours/bound
