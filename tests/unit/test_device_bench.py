"""Device choice, CPU math settings, and the benchmark's building blocks."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from benchmarks import bench, training
from mnist_core import infer
from mnist_core.config import RunConfig
from mnist_core.data import load_data
from mnist_core.device import resolve_device
from mnist_core.errors import ConfigError
from mnist_core.fast import precision as fast_precision
from mnist_core.fast.precision import configure_math
from mnist_core.train import train


@pytest.fixture(autouse=True)
def _fast_path_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests check the fast path itself: on, even in CI's second pass with MNIST_LAB_FAST_PATH=0."""
    monkeypatch.delenv("MNIST_LAB_FAST_PATH", raising=False)


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


def test_a_batch_of_one_row_trains_on_full_float32_precision():
    assert configure_math("cpu", batch_size=1) == "highest"
    assert torch.get_float32_matmul_precision() == "highest"
    assert configure_math("cpu", batch_size=64) == configure_math("cpu")
    assert torch.get_float32_matmul_precision() == configure_math("cpu")
    assert configure_math("cuda", batch_size=1) == "high"
    configure_math("cpu")


def test_a_run_records_the_precision_chosen_once_for_the_process(synthetic_data_dir):
    data = load_data(root=synthetic_data_dir, val_fraction=0.0)
    torch.set_float32_matmul_precision("high")  # a value no CPU run chooses
    many = train(RunConfig(hidden=(8,), batch_size=16, epochs=1, val_fraction=0.0), data,
                 should_stop=iter([False] * 3 + [True]).__next__)
    assert many.matmul_precision == fast_precision.fastest_exact("cpu")
    assert torch.get_float32_matmul_precision() == many.matmul_precision  # kept: nothing is put back
    one = train(RunConfig(hidden=(8,), batch_size=1, epochs=1, val_fraction=0.0), data,
                should_stop=iter([False] * 3 + [True]).__next__)
    assert one.matmul_precision == many.matmul_precision  # chosen once, the same for every run


def test_a_run_ending_leaves_an_overlapping_run_its_precision(synthetic_data_dir):
    """Run A starts, run B starts, A ends while B trains: B goes on with the precision it recorded."""
    data = load_data(root=synthetic_data_dir, val_fraction=0.0)
    cfg = RunConfig(hidden=(8,), batch_size=16, epochs=1, val_fraction=0.0)
    torch.set_float32_matmul_precision("high")  # the process's setting before either run
    a_started, b_started, a_done = threading.Event(), threading.Event(), threading.Event()
    seen_by_b = []

    def stop_a() -> bool:
        a_started.set()
        assert b_started.wait(60)
        return True

    def stop_b() -> bool:
        b_started.set()
        assert a_done.wait(60)
        seen_by_b.append(torch.get_float32_matmul_precision())
        return True

    def run_a() -> None:
        try:
            train(cfg, data, should_stop=stop_a)
        finally:
            a_done.set()

    thread = threading.Thread(target=run_a)
    thread.start()
    assert a_started.wait(60)
    b = train(cfg, data, should_stop=stop_b)
    thread.join(60)
    assert seen_by_b == [b.matmul_precision]


def test_with_the_fast_path_off_a_run_leaves_the_precision_alone(synthetic_data_dir, monkeypatch):
    monkeypatch.setenv("MNIST_LAB_FAST_PATH", "0")
    torch.set_float32_matmul_precision("high")
    data = load_data(root=synthetic_data_dir, val_fraction=0.0)
    run = train(RunConfig(hidden=(8,), batch_size=16, epochs=1, val_fraction=0.0), data,
                should_stop=iter([False] * 3 + [True]).__next__)
    assert run.matmul_precision == torch.get_float32_matmul_precision() == "high"


def test_epoch_bound_uses_three_times_forward_flops():
    # 784-512-10: 406,528 MACs = 813,056 FLOPs forward; x3 for training; 60k images.
    assert bench.epoch_bound_s((512,), gflops=100.0) == pytest.approx(3 * 813_056 * 60_000 / 100e9)


def test_engine_and_reference_time_an_epoch_on_generated_data(synthetic_data_dir):
    ours = bench.ours_epoch_s((16,), 32, synthetic_data_dir, steps=5)
    ref = bench.reference_epoch_s((16,), 32, synthetic_data_dir, steps=5)
    assert 0 < ours < 60 and 0 < ref < 60


def test_extrapolated_epochs_leave_the_warm_up_steps_out_of_the_clock():
    assert training._warm_up(training.BATCH_ONE_STEPS, 60_000) == training.WARM_UP_STEPS
    assert training._warm_up(5, 29) == 23  # a short epoch: the timed steps are its last ones
    assert training._warm_up(30, 29) == 0 and training._warm_up(None, 29) == 0


def test_canvas_inference_rows():
    (mlp, cnn) = bench.bench_inference(repeats=5)
    for row in (mlp, cnn):
        assert row["end_to_end_ms"]["p50"] <= row["end_to_end_ms"]["p95"]
        assert row["preprocess_ms"]["p50"] > 0 and row["predict_ms"]["p50"] > 0
        assert row["scan_end_to_end_ms"]["p50"] > 0


def test_the_benchmark_canvas_is_what_the_draw_page_sends():
    canvas = bench.canvas_drawing()
    assert canvas.shape == (280, 280, 4) and canvas.dtype == np.uint8
    assert not canvas[..., :3].any()  # black strokes: the drawing is in the alpha channel
    alpha = canvas[..., 3]
    assert 0.05 < (alpha > 0).mean() < 0.25  # strokes, on a transparent background
    assert 0 < ((alpha > 0) & (alpha < 255)).sum() < (alpha == 255).sum()  # antialiased edges
    assert infer.preprocess_pixels(canvas).max() == pytest.approx(1.0)
    scan = bench.scan_image()
    assert scan.shape == (280, 280) and (scan > 0).all()  # noise on every pixel of light paper
    assert infer.preprocess_pixels(scan).max() == pytest.approx(1.0)


def test_batch_one_parts_time_both_sides(synthetic_data_dir):
    parts = bench.batch_one_parts((16,), synthetic_data_dir, steps=5)
    assert set(parts["ours"]) == {"forward", "backward", "optimizer"}
    assert set(parts["reference"]) == {"data", "forward", "backward", "optimizer"}
    assert all(v > 0 for side in parts.values() for v in side.values())


def test_bf16_rows_time_our_engine_in_mixed_precision(synthetic_data_dir, monkeypatch):
    calls = []

    def ours(*_args, amp=False):
        calls.append(amp)
        return 2.0 if amp else 3.0

    monkeypatch.setattr(training, "ours_epoch_s", ours)  # where bench_training looks them up
    monkeypatch.setattr(training, "reference_epoch_s", lambda *a: 6.0)
    monkeypatch.setattr(training, "MODELS", {"784-16-10": (16,)})
    (row,) = bench.bench_training(synthetic_data_dir, [64], repeats=2, bf16=True)
    assert calls == [False, True, False, True] and row["ours_bf16_s"]["median"] == 2.0  # taking turns
    text = bench.report({"data": "d", "threads": 2, "torch": "x", "training": [row]})
    assert "1.50x our float32 epoch" in text


def test_the_reference_runs_on_pytorch_defaults(synthetic_data_dir):
    configure_math("cpu", batch_size=64)
    bench.reference_epoch_s((16,), 32, synthetic_data_dir, steps=2)
    assert torch.get_float32_matmul_precision() == "highest"
    configure_math("cpu")


def test_optimizer_floor_counts_28_bytes_a_parameter_per_step():
    params = 784 * 512 + 512 + 512 * 10 + 10
    assert bench.parameter_count((512,)) == params
    assert bench.optimizer_floor_s((512,), 64, gb_s=10.0) == pytest.approx(938 * 28 * params / 10e9)
    assert bench.copy_gb_s(1 << 20, bursts=2, per_burst=2) > 0


def test_report_formats_every_row():
    results = {
        "data": "d", "threads": 2, "torch": "x", "gflops": 100.0, "bound_s": {"784-512-10": 0.5},
        "training": [{"model": "784-512-10", "batch": 64, "ours_s": bench.median_range([1.0, 2.0, 3.0]),
                      "reference_s": bench.median_range([6.0]), "speedup": 3.0}],
        "inference": [],
    }
    text = bench.report(results)
    assert "784-512-10" in text and "3.00x" in text and "4.00x" in text  # speedup and ours/bound
    results["adam_gb_s"], results["adam_bytes_per_param"] = {"784-512-10": 10.0}, 28
    floor = results["training"][0]["optimizer_floor_s"] = bench.optimizer_floor_s((512,), 64, 10.0)
    results["training"].append({**results["training"][0], "batch": 1, "parts_ms": {
        "ours": {"forward": 0.1, "backward": 0.2, "optimizer": 0.3},
        "reference": {"data": 0.4, "forward": 0.1, "backward": 0.2, "optimizer": 0.5}}})
    text = bench.report(results)
    assert f"{2.0 / (0.5 + floor):.2f}x" in text  # ours / (matmul bound + optimizer floor)
    assert "ours forward 0.100, backward 0.200, optimizer 0.300 (sum 0.600)" in text
    assert "reference data 0.400, forward 0.100, backward 0.200, optimizer 0.500 (sum 1.200)" in text
    assert "10 GB/s" in text and "28 bytes a parameter" in text
    assert "training on cpu" in text  # results without a device are from before GPUs were named
