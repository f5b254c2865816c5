"""Tests for mnist_core.metrics: exact counts, exact accuracy bookkeeping, honest energy."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from mnist_core.costs import CostReport, cost_report, count_macs, count_parameters, file_bytes, weights_bytes
from mnist_core.energy import EnergyMeter, EnergyReport
from mnist_core.errors import ConfigError, MnistLabError
from mnist_core.metrics import (
    EvalResult,
    LatencyReport,
    MetricsInputError,
    evaluate,
    latency_report,
    measure_latency,
    measure_throughput,
)

# ---------------------------------------------------------------- models


def mlp_784_512_10() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 10))


def small_cnn() -> nn.Module:
    """Conv + BatchNorm + MaxPool + AvgPool: the operators fvcore half-supports."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 7 * 7, 10),
    )


class CentreCrop(nn.Module):
    """Uses only the 20x20 centre of each 28x28 image, like the blog's cropped models."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(20 * 20, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x[..., 4:24, 4:24].flatten(1))


class PixelOracle(nn.Module):
    """Stateless model whose prediction is written into pixel (0, 0): logits = onehot * 10."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        label = x[:, 0, 0, 0].round().long()
        return nn.functional.one_hot(label, 10).float() * 10.0


def images_predicting(preds: list[int]) -> torch.Tensor:
    """(N, 1, 28, 28) images that PixelOracle classifies as ``preds``."""
    x = torch.zeros(len(preds), 1, 28, 28)
    x[:, 0, 0, 0] = torch.tensor(preds, dtype=torch.float32)
    return x


def in_eval(model: nn.Module) -> nn.Module:
    return model.eval()


# ---------------------------------------------------------------- cost and size


def test_mlp_784_512_10_counts_match_the_published_figures() -> None:
    model = in_eval(mlp_784_512_10())
    report = cost_report(model)
    assert report == CostReport(parameters=407_050, macs=406_528, flops=813_056, weights_bytes=4 * 407_050)
    assert count_parameters(model) == 407_050
    assert count_macs(model) == 406_528


def test_conv_macs_match_a_hand_count() -> None:
    # Conv 1->4, 3x3, no padding: 26*26 outputs x 4 channels x 9 multiply-adds each;
    # then a linear layer 4*26*26 -> 10. ReLU and Flatten cost no multiply-adds.
    model = nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    conv = 26 * 26 * 4 * 1 * 3 * 3
    linear = 4 * 26 * 26 * 10
    assert count_macs(model.eval()) == conv + linear == 51_376


def test_centre_crop_model_counts_only_the_crop() -> None:
    assert count_macs(CentreCrop().eval()) == 20 * 20 * 10


def test_cnn_with_pooling_and_batchnorm_is_counted() -> None:
    macs = count_macs(small_cnn().eval())
    conv1 = 28 * 28 * 8 * 9
    conv2 = 14 * 14 * 16 * 8 * 9
    fc = 16 * 7 * 7 * 10
    # fvcore adds batch-norm (and average-pool) work on top of the convs and the linear layer.
    assert macs > conv1 + conv2 + fc
    assert macs < 2 * (conv1 + conv2 + fc)


def test_weights_bytes_are_fp32_params_plus_buffers() -> None:
    assert weights_bytes(mlp_784_512_10()) == 4 * 407_050
    cnn = small_cnn()
    params = count_parameters(cnn)
    # BatchNorm2d(8): running_mean + running_var (fp32) and num_batches_tracked (int64).
    assert weights_bytes(cnn) == 4 * params + 4 * (8 + 8) + 8
    assert weights_bytes(mlp_784_512_10().half()) == 4 * 407_050  # fp32 size, whatever the dtype


def test_file_bytes_reads_the_size_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save(mlp_784_512_10().state_dict(), path)
    assert file_bytes(path) == path.stat().st_size
    assert file_bytes(path) > 4 * 407_050  # tensors plus the zip container
    with pytest.raises(FileNotFoundError):
        file_bytes(tmp_path / "missing.pt")


def test_cost_report_leaves_a_training_model_untouched() -> None:
    model = small_cnn().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = cost_report(model)
    assert model.training
    assert all(m.training for m in model.modules())
    assert {str(p.device) for p in model.parameters()} == {"cpu"}
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key  # no BN statistics updated by the trace
    assert report.macs == count_macs(small_cnn().eval())
    assert report.flops == 2 * report.macs


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cost_report_counts_a_gpu_model_without_moving_it() -> None:
    model = mlp_784_512_10().cuda().eval()
    assert cost_report(model).macs == 406_528
    assert next(model.parameters()).is_cuda


# ---------------------------------------------------------------- accuracy


def test_evaluate_gives_exact_accuracy_confusion_and_misclassified() -> None:
    y = torch.tensor([0, 1, 2, 2, 3, 3, 3, 9])
    preds = [0, 1, 2, 5, 3, 3, 0, 9]  # wrong at indices 3 and 6
    result = evaluate(PixelOracle().eval(), images_predicting(preds), y, batch_size=3)
    assert result.accuracy == pytest.approx(6 / 8)
    assert result.misclassified == (3, 6)
    assert result.predictions == tuple(preds)
    assert result.confusion[2][5] == 1
    assert result.confusion[3][0] == 1
    assert result.confusion[3][3] == 2
    assert sum(map(sum, result.confusion)) == 8
    assert result.class_counts == (1, 1, 2, 3, 0, 0, 0, 0, 0, 1)
    assert result.n == 8


def test_evaluate_per_class_accuracy_and_absent_classes() -> None:
    y = torch.tensor([0, 0, 0, 0, 1, 1])
    preds = [0, 0, 0, 7, 7, 7]
    result = evaluate(PixelOracle().eval(), images_predicting(preds), y)
    assert result.per_class_accuracy[0] == pytest.approx(0.75)
    assert result.per_class_accuracy[1] == 0.0  # present, always wrong
    assert result.per_class_accuracy[7] == 0.0 and result.class_counts[7] == 0  # absent
    assert len(result.per_class_accuracy) == 10


def test_evaluate_loss_is_mean_cross_entropy() -> None:
    y = torch.tensor([4, 4])
    result = evaluate(PixelOracle().eval(), images_predicting([4, 1]), y)
    logits = torch.zeros(2, 10)
    logits[0, 4] = 10.0
    logits[1, 1] = 10.0
    assert result.loss == pytest.approx(float(nn.functional.cross_entropy(logits, y)))


def test_evaluate_refuses_a_training_model_without_switching_it() -> None:
    model = mlp_784_512_10().train()
    with pytest.raises(ValueError, match="training mode") as info:
        evaluate(model, torch.zeros(2, 1, 28, 28), torch.tensor([0, 1]))
    assert isinstance(info.value, MnistLabError)
    assert model.training


def test_evaluate_does_not_switch_an_eval_model_and_handles_real_layers() -> None:
    model = small_cnn().eval()
    x, y = torch.randn(50, 1, 28, 28), torch.randint(0, 10, (50,))
    result = evaluate(model, x, y, batch_size=16)
    assert not model.training
    with torch.no_grad():
        expected = (model(x).argmax(1) == y).float().mean().item()
    assert result.accuracy == pytest.approx(expected)
    assert evaluate(CentreCrop().eval(), x, y).n == 50


@pytest.mark.parametrize(
    ("x", "y"),
    [
        (torch.zeros(3, 784), torch.tensor([0, 1, 2])),  # flat images
        (torch.zeros(3, 1, 28, 28), torch.tensor([0, 1])),  # length mismatch
        (torch.zeros(2, 1, 28, 28), torch.tensor([0, 10])),  # label out of range
        (torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long)),  # empty
        (torch.zeros(2, 1, 28, 28, dtype=torch.uint8), torch.tensor([0, 1])),  # not normalised
    ],
)
def test_evaluate_rejects_bad_inputs(x: torch.Tensor, y: torch.Tensor) -> None:
    with pytest.raises(MetricsInputError):
        evaluate(mlp_784_512_10().eval(), x, y)


def test_evaluate_rejects_a_model_with_wrong_output_shape() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 3)).eval()
    with pytest.raises(MetricsInputError, match="logits"):
        evaluate(model, torch.zeros(2, 1, 28, 28), torch.tensor([0, 1]))


# ---------------------------------------------------------------- latency


def test_latency_report_is_ordered_positive_and_records_context() -> None:
    model = mlp_784_512_10().eval()
    report = latency_report(model, torch.randn(300, 1, 28, 28), warmup=3, repeats=30, batch_size=100)
    assert 0 < report.p50_ms <= report.p95_ms
    assert report.mean_ms > 0
    assert report.threads == torch.get_num_threads() >= 1
    assert report.device == "cpu"
    assert (report.repeats, report.warmup) == (30, 3)
    assert report.batch_throughput > 0
    assert not model.training


def test_measure_latency_returns_one_timing_per_repeat() -> None:
    timings = measure_latency(CentreCrop().eval(), torch.zeros(1, 1, 28, 28), warmup=2, repeats=7)
    assert len(timings) == 7
    assert all(t > 0 for t in timings)


def test_throughput_counts_images_per_second() -> None:
    class Slow(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            time.sleep(0.01)
            return torch.zeros(x.shape[0], 10)

    # 4 timed batches of 50 images, >= 10 ms each: at most 200 / 0.04 = 5000 images/s.
    rate = measure_throughput(Slow().eval(), torch.zeros(200, 1, 28, 28), batch_size=50)
    assert 0 < rate <= 5000


def test_latency_refuses_a_training_model() -> None:
    with pytest.raises(ValueError):
        measure_latency(mlp_784_512_10().train(), torch.zeros(1, 1, 28, 28))
    with pytest.raises(ValueError):
        measure_throughput(mlp_784_512_10().train(), torch.zeros(4, 1, 28, 28))


# ---------------------------------------------------------------- energy


@pytest.fixture(scope="module")
def short_block(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EnergyReport, Path, float]]:
    """One 0.2 s block measured in an empty working directory.

    Module-scoped so the file pays codecarbon's first start() (hardware probe) once.
    Yields the report, the directory it ran in and the wall time of the whole block.
    """
    workdir = tmp_path_factory.mktemp("energy-cwd")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        start = time.perf_counter()
        with EnergyMeter(country="FRA") as meter:
            time.sleep(0.2)
        elapsed = time.perf_counter() - start
    assert meter.report is not None
    yield meter.report, workdir, elapsed


def test_energy_of_a_short_block_is_non_negative_and_estimated(
    short_block: tuple[EnergyReport, Path, float],
) -> None:
    report, _, elapsed = short_block
    assert report.energy_kwh >= 0
    assert report.co2_kg >= 0
    assert report.estimated is True
    assert report.country == "FRA"
    assert 0.15 <= report.duration_s <= elapsed + 0.5
    assert report.method.startswith("codecarbon OfflineEmissionsTracker"), report.method
    assert "tracking_mode=process" in report.method


def test_energy_meter_writes_no_files_in_cwd(short_block: tuple[EnergyReport, Path, float]) -> None:
    _, workdir, _ = short_block
    assert sorted(os.listdir(workdir)) == []


def test_energy_meter_stops_and_reports_when_the_body_raises(
    short_block: tuple[EnergyReport, Path, float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    meter = EnergyMeter(country="USA")
    with pytest.raises(RuntimeError, match="boom"), meter:
        raise RuntimeError("boom")
    assert meter.report is not None
    assert meter.report.energy_kwh >= 0
    assert meter.report.method.startswith("codecarbon")
    assert meter._tracker is None
    assert not (tmp_path / "emissions.csv").exists()
    assert not (tmp_path / ".codecarbon.config").exists()


def test_energy_meter_falls_back_when_codecarbon_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: EnergyMeter) -> None:
        raise OSError("no RAPL here")

    monkeypatch.setattr(EnergyMeter, "_start_tracker", broken)
    with EnergyMeter(country="USA") as meter:
        sum(i * i for i in range(200_000))  # some CPU time to estimate from
    assert meter.report is not None
    assert meter.report.estimated is True
    assert "fallback" in meter.report.method and "no RAPL here" in meter.report.method
    assert meter.report.energy_kwh > 0
    assert meter.report.co2_kg == pytest.approx(meter.report.energy_kwh * 0.475)


def test_energy_country_comes_from_argument_then_env_then_usa(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MNIST_LAB_CO2_COUNTRY", raising=False)
    assert EnergyMeter().country == "USA"
    monkeypatch.setenv("MNIST_LAB_CO2_COUNTRY", "gbr")
    assert EnergyMeter().country == "GBR"
    assert EnergyMeter(country="DEU").country == "DEU"
    monkeypatch.setenv("MNIST_LAB_CO2_COUNTRY", "France")
    with pytest.raises(ConfigError, match="MNIST_LAB_CO2_COUNTRY"):
        EnergyMeter()


def test_energy_meter_rejects_a_country_codecarbon_does_not_know(
    short_block: tuple[EnergyReport, Path, float],
) -> None:
    with pytest.raises(ConfigError, match="XYZ"), EnergyMeter(country="XYZ"):
        pass


# ---------------------------------------------------------------- JSON


def test_reports_are_json_ready(short_block: tuple[EnergyReport, Path, float]) -> None:
    y = torch.tensor([0, 1, 2])
    result = evaluate(PixelOracle().eval(), images_predicting([0, 1, 1]), y)
    model = mlp_784_512_10().eval()
    reports: list[EvalResult | CostReport | LatencyReport | EnergyReport] = [
        result,
        cost_report(model),
        latency_report(model, torch.randn(10, 1, 28, 28), warmup=1, repeats=5),
        short_block[0],
    ]
    for report in reports:
        decoded = json.loads(json.dumps(report.to_dict(), allow_nan=False))
        expected = {f.name for f in dataclasses.fields(report)} - {"predictions", "confidences"}
        assert set(decoded) == expected, type(report).__name__
    decoded = json.loads(json.dumps(result.to_dict(include_predictions=True)))
    assert decoded["predictions"] == [0, 1, 1]
    assert len(decoded["confidences"]) == 3 and all(0 < c <= 1 for c in decoded["confidences"])
    assert decoded["confusion"][2][1] == 1
    assert "predictions" not in result.to_dict()
