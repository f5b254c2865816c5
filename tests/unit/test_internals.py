"""mnist_core.internals on small models whose answers are known by construction."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from mnist_core import internals, runs
from mnist_core.cli import main
from mnist_core.config import RunConfig
from mnist_core.fakeruns import make_fake_runs
from mnist_core.models import build_model


def tiny_mlp(activation: nn.Module) -> nn.Sequential:
    """4 pixels (a 2x2 image) -> 3 hidden units -> 2 logits, weights set by hand."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), activation, nn.Linear(3, 2))
    with torch.no_grad():
        first = model[1]
        first.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.0, 4.0]]))
        first.bias.copy_(torch.tensor([0.0, -1.0, 0.0]))  # unit 1: zero weights, negative bias
        model[3].weight.fill_(1.0)
        model[3].bias.zero_()
    return model


def test_first_layer_images_are_the_units_weights_sorted_by_norm():
    first = internals.first_layer_images(tiny_mlp(nn.ReLU()))
    assert first is not None and first.kind == "mlp" and first.n_units == 3
    assert first.units == (2, 0, 1)  # norms 5, 1, 0
    assert first.norms == pytest.approx((5.0, 1.0, 0.0))
    assert first.images.shape == (3, 2, 2)
    assert first.images[0].tolist() == [[3.0, 0.0], [0.0, 4.0]]  # row-major, as Flatten reads it


def test_first_layer_keeps_at_most_the_limit():
    model = build_model(RunConfig(hidden=(100,)))
    first = internals.first_layer_images(model, limit=64)
    assert first is not None and first.images.shape == (64, 28, 28) and first.n_units == 100
    assert list(first.norms) == sorted(first.norms, reverse=True)


def test_a_unit_dead_by_construction_is_counted_and_histograms_count_every_value():
    model = tiny_mlp(nn.ReLU())
    images = torch.rand(37, 1, 2, 2) + 0.1  # positive pixels: units 0 and 2 are active
    inside = internals.inspect_model(model, images, bins=10)
    hidden, out = inside.layers
    assert hidden.activation == "relu" and hidden.dead_share == pytest.approx(1 / 3)
    assert out.activation is None and out.dead_share is None  # logits: no activation
    assert hidden.activations is not None and hidden.activations.total == 37 * 3 == hidden.activations.of
    assert out.activations is not None and out.activations.total == 37 * 2
    assert hidden.weights.total == 12 and out.weights.total == 6  # biases left out
    assert inside.sample_size == 37
    assert model.training  # the mode is restored...
    assert not model[2]._forward_hooks  # ...and the hooks removed


def test_saturated_tanh_units():
    model = tiny_mlp(nn.Tanh())
    with torch.no_grad():
        model[1].weight[2].fill_(100.0)  # unit 2 is always far past tanh's knee
    inside = internals.inspect_model(model, torch.rand(20, 1, 2, 2) + 0.1)
    hidden = inside.layers[0]
    assert hidden.activation == "tanh" and hidden.dead_share is None
    assert hidden.saturated_share == pytest.approx(1 / 3)


def test_without_images_only_weights():
    inside = internals.inspect_model(tiny_mlp(nn.ReLU()), None)
    assert inside.sample_size == 0
    assert all(layer.activations is None and layer.dead_share is None for layer in inside.layers)
    assert inside.first_layer is not None


def test_cnn_filters_and_per_channel_dead_units():
    cfg = RunConfig(model="cnn", cnn_style="modern", cnn_channels=(4, 8), hidden=(16,))
    model = build_model(cfg).eval()
    with torch.no_grad():  # channel 3 of the first conv: its batch norm shifts it far below zero
        bn = model[1]
        bn.weight[3] = 0.0
        bn.bias[3] = -1.0
    inside = internals.inspect_model(model, torch.randn(12, 1, 28, 28))
    first = inside.first_layer
    assert first is not None and first.kind == "cnn" and first.images.shape == (4, 3, 3)
    conv1 = inside.layers[0]
    assert conv1.kind == "conv" and conv1.n_out == 4 and conv1.activation == "relu"
    assert conv1.dead_share == pytest.approx(0.25)
    assert conv1.activations is not None and conv1.activations.of == 12 * 4 * 28 * 28
    assert [layer.kind for layer in inside.layers] == ["conv", "conv", "linear", "linear"]


def test_lenet_reports_saturation_not_dead_units():
    model = build_model(RunConfig(model="cnn", cnn_style="lenet", cnn_channels=(6, 16), hidden=(120, 84)))
    inside = internals.inspect_model(model, torch.randn(8, 1, 28, 28))
    assert [layer.activation for layer in inside.layers] == ["tanh", "tanh", "tanh", "tanh", None]
    assert all(0.0 <= layer.saturated_share <= 1.0 for layer in inside.layers[:-1])


def test_big_layers_are_thinned_for_the_histogram(monkeypatch):
    monkeypatch.setattr(internals, "MAX_HISTOGRAM_VALUES", 100)
    inside = internals.inspect_model(tiny_mlp(nn.ReLU()), torch.rand(300, 1, 2, 2))
    acts = inside.layers[0].activations
    assert acts is not None and acts.of == 900 and acts.total == 100  # every 9th value


def test_inspect_run_and_the_cli(runs_dir, capsys):
    ids = make_fake_runs(runs_dir, 4, seed=3, n_test=200, weights=True, max_width=64)
    run = next(r for r in runs.list_runs(runs_dir) if r.id in ids and r.status == "completed")
    inside = internals.inspect_run(run.id, runs_dir)
    assert inside.sample_size == 200 and inside.data_note is None  # the generated test split
    assert len(inside.layers) == run.config.depth + 1
    assert main(["inside", run.id, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["run"] == run.id and out["sample_size"] == 200
    assert [layer["layer"] for layer in out["layers"]] == list(range(1, run.config.depth + 2))
    assert sum(out["layers"][0]["activations"]["counts"]) == 200 * run.config.hidden[0]
    assert main(["inside", run.id]) == 0
    text = capsys.readouterr().out
    assert "dead" in text and "layer 1: linear 784→" in text


def test_without_the_dataset_the_weights_are_still_reported(runs_dir, tmp_path, monkeypatch, capsys):
    ids = make_fake_runs(runs_dir, 2, seed=5, n_test=200, weights=True, max_width=32)
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path / "nothing"))
    inside = internals.inspect_run(ids[0], runs_dir)
    assert inside.sample_size == 0 and inside.data_note and "MNIST_DATA_DIR" in inside.data_note
    assert inside.first_layer is not None and inside.layers[0].weights.total > 0


def test_cli_says_what_to_do_for_an_unknown_run(capsys):
    assert main(["inside", "no-such-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
