"""mnist_core.internals on small models whose answers are known by construction."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from mnist_core import internals, internals_drawing, runs
from mnist_core.cli import main
from mnist_core.config import RunConfig
from mnist_core.models import build_model
from tests.support.fakeruns import make_fake_runs


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
    positions = [r["position"] for r in out["readouts"]["readouts"]]
    assert positions == ["pixels", *(f"layer {k}" for k in range(1, run.config.depth + 1)), "output"]
    assert main(["inside", run.id]) == 0
    text = capsys.readouterr().out
    assert "dead" in text and "layer 1: linear 784→" in text
    assert "read out linearly at" in text and "input pixels" in text


def test_without_the_dataset_the_weights_are_still_reported(runs_dir, tmp_path, monkeypatch, capsys):
    ids = make_fake_runs(runs_dir, 2, seed=5, n_test=200, weights=True, max_width=32)
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path / "nothing"))
    inside = internals.inspect_run(ids[0], runs_dir)
    assert inside.sample_size == 0 and inside.data_note and "MNIST_DATA_DIR" in inside.data_note
    assert inside.first_layer is not None and inside.layers[0].weights.total > 0
    assert main(["inside", ids[0], "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["readouts"] is None and "MNIST_DATA_DIR" in out["readouts_note"]


def test_cli_says_what_to_do_for_an_unknown_run(capsys):
    assert main(["inside", "no-such-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


# -- one drawing, layer by layer (mnist_core.internals_drawing) ----------------------------------


def hand_mlp() -> nn.Sequential:
    """The image [[1, 0], [0, 1]] gives hidden (1, 0, 7), logits (15.5, 6)."""
    model = tiny_mlp(nn.ReLU())  # hidden weights and biases as above: unit 1 is dead
    with torch.no_grad():
        model[3].weight.copy_(torch.tensor([[1.0, 5.0, 2.0], [-1.0, 0.0, 1.0]]))
        model[3].bias.copy_(torch.tensor([0.5, 0.0]))
    return model.eval()


def test_one_drawing_known_by_hand():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).reshape(1, 1, 2, 2)
    read = internals_drawing.inspect_drawing(hand_mlp(), x)
    assert read.label == 0 and read.logits.tolist() == pytest.approx([15.5, 6.0])
    assert read.probabilities == pytest.approx(torch.softmax(torch.tensor([15.5, 6.0]), 0).numpy())
    (hidden,) = read.layers
    assert hidden.values.tolist() == pytest.approx([1.0, 0.0, 7.0])
    assert hidden.active_share == pytest.approx(2 / 3)
    # Switched off, unit j takes weight[0, j] * output[j] from the logit of class 0: 1, 0 (dead), 14.
    assert hidden.push.tolist() == pytest.approx([1.0, 0.0, 14.0])
    assert hidden.top == (2, 0)  # the dead unit pushed nothing: not listed
    p_without_unit_2 = 1 / (1 + math.exp(-2.5))  # logits (1.5, -1) without unit 2
    assert hidden.knockout == pytest.approx({1: p_without_unit_2})  # 5 and 25: more than 2 units pushed
    assert hidden.maps is None and hidden.name == "layer 1: linear 4→3, relu"
    assert read.first_weights is not None
    assert read.first_weights.tolist() == [[[3.0, 0.0], [0.0, 4.0]], [[1.0, 0.0], [0.0, 0.0]]]  # units 2, 0
    build = read.build_up
    assert build.steps == ("bias", "+ unit 2", "+ unit 0", "+ unit 1")  # largest first
    assert build.n_inputs == 3
    assert build.cumulative == pytest.approx(np.array([[0.5, 0.0], [14.5, 7.0], [15.5, 6.0], [15.5, 6.0]]))


def test_switching_a_unit_off_runs_the_later_layers_again():
    """Two hidden layers: a first-layer unit's push goes through the second layer's ReLU (not a gradient)."""
    relu = nn.ReLU
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2), relu(), nn.Linear(2, 1), relu(), nn.Linear(1, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]))
        model[1].bias.zero_()
        model[3].weight.copy_(torch.tensor([[1.0, -1.0]]))
        model[3].bias.fill_(2.0)
        model[5].weight.copy_(torch.tensor([[3.0], [0.0]]))
        model[5].bias.copy_(torch.tensor([0.0, 1.0]))
    x = torch.tensor([2.0, 3.0, 0.0, 0.0]).reshape(1, 1, 2, 2)  # h1 = (2, 3), h2 = relu(2 - 3 + 2) = 1
    read = internals_drawing.inspect_drawing(model.eval(), x)
    assert read.label == 0 and read.logits.tolist() == pytest.approx([3.0, 1.0])
    first, second = read.layers
    # Unit 0 off: relu(0 - 3 + 2) = 0, logit 0 (push 3; its gradient x input would say 6).
    # Unit 1 off: relu(2 + 2) = 4, logit 12 (push -9: it held class 0 back).
    assert first.push.tolist() == pytest.approx([3.0, -9.0]) and first.top == (0,)
    assert second.push.tolist() == pytest.approx([3.0]) and second.values.tolist() == [1.0]
    assert first.knockout == pytest.approx({1: 1 / (1 + math.e)})  # logits (0, 1)
    assert read.build_up.steps == ("bias", "+ unit 0")  # one input: no "others" step
    assert read.build_up.cumulative[-1].tolist() == pytest.approx([3.0, 1.0])


def test_pushes_match_a_plain_recomputation_and_the_last_layer_adds_up():
    torch.manual_seed(0)
    model = build_model(RunConfig(hidden=(64, 32))).eval()
    x = torch.randn(1, 1, 28, 28)
    read = internals_drawing.inspect_drawing(model, x)
    with torch.no_grad():
        logits = model(x)[0]
        h1 = model[:3](x)  # Flatten, Linear, ReLU
        for unit in (0, 17, 63):
            off = h1.clone()
            off[0, unit] = 0
            logit = model[3:](off)[0, read.label]
            assert read.layers[0].push[unit] == pytest.approx(float(logits[read.label] - logit), abs=1e-4)
    last = read.layers[-1]
    out = model[-1]
    direct = (out.weight[read.label] * torch.from_numpy(last.values)).detach().numpy()
    assert last.push == pytest.approx(direct, abs=1e-4)  # exactly weight x output for the last hidden layer
    assert read.build_up.cumulative[-1] == pytest.approx(read.logits, abs=1e-4)
    assert read.build_up.units == last.top[: len(read.build_up.units)]
    assert read.first_weights is not None and read.first_weights.shape == (len(read.layers[0].top), 28, 28)
    assert model[1].weight.detach()[read.layers[0].top[0]].reshape(28, 28).numpy() == pytest.approx(
        read.first_weights[0]
    )


def test_cnn_channels_summarised_and_a_dead_channel_pushes_nothing():
    cfg = RunConfig(model="cnn", cnn_style="modern", cnn_channels=(4, 8), hidden=(16,))
    model = build_model(cfg).eval()
    with torch.no_grad():  # channel 3 of the first conv: its batch norm holds it below zero
        model[1].weight[3] = 0.0
        model[1].bias[3] = -1.0
    read = internals_drawing.inspect_drawing(model, torch.randn(1, 1, 28, 28))
    conv1, conv2, dense = read.layers
    assert (conv1.kind, conv1.n_out, conv1.activation) == ("conv", 4, "relu")
    assert conv1.values.shape == (4,) and conv1.values[3] == 0.0 and conv1.push[3] == 0.0
    assert 3 not in conv1.top
    assert conv1.maps is not None and conv1.maps.shape == (len(conv1.top), 28, 28)
    assert conv2.maps is not None and conv2.maps.shape[1:] == (14, 14) and dense.maps is None
    assert read.first_weights is not None and read.first_weights.shape == (len(conv1.top), 3, 3)
    assert read.build_up.n_inputs == 16


def test_a_model_without_hidden_layers_and_what_is_refused():
    linear = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).eval()  # (a CNN may have no dense hidden layer)
    read = internals_drawing.inspect_drawing(linear, torch.randn(1, 1, 28, 28))
    assert read.layers == () and read.first_weights is None
    assert read.build_up.n_inputs == 784 and read.build_up.steps[-1] == "+ the other 776"
    assert read.build_up.cumulative[-1] == pytest.approx(read.logits, abs=1e-4)
    model = hand_mlp()
    with pytest.raises(ValueError, match="training mode"):
        internals_drawing.inspect_drawing(model.train(), torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError, match="one image"):
        internals_drawing.inspect_drawing(model.eval(), torch.zeros(2, 1, 2, 2))
    with pytest.raises(ValueError, match=r"nn\.Sequential"):
        internals_drawing.inspect_drawing(nn.Linear(4, 2).eval(), torch.zeros(1, 1, 2, 2))


def test_reading_a_drawing_leaves_the_model_as_it_was():
    model = hand_mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    internals_drawing.inspect_drawing(model, torch.rand(1, 1, 2, 2))
    assert not model.training and all(not m._forward_hooks for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def remembering_mlp() -> tuple[nn.Sequential, torch.Tensor, int, int]:
    """A small MLP, a drawing, the network's answer for it and the other label its memory remembers."""
    from mnist_core import memory

    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10)).eval()
    x = torch.randn(1, 1, 28, 28)
    with torch.inference_mode():
        network = int(model(x).argmax())
    taught = (network + 3) % 10
    kept = memory.Memory(x.reshape(1, -1).clone(), torch.tensor([taught]), torch.tensor([1.0]))
    memory.attach(model, kept)
    return model, x, network, taught


def test_a_remembered_drawing_is_read_as_the_model_answers_and_says_the_memory_did():
    model, x, network, taught = remembering_mlp()
    with torch.inference_mode():
        actual = model(x)[0]  # through the memory's hook
    assert int(actual.argmax()) == taught != network
    read = internals_drawing.inspect_drawing(model, x)
    assert read.label == taught and np.allclose(read.logits, actual.numpy(), atol=1e-5)
    assert read.memory is not None and read.memory.label == taught and read.memory.remembered == 1
    assert read.memory.network_label == network and int(read.memory.network_probabilities.argmax()) == network
    assert read.build_up.steps[-1] == "memory"
    assert np.allclose(read.build_up.cumulative[-1], actual.numpy(), atol=1e-5)
    far = internals_drawing.inspect_drawing(model, x + 5.0)  # outside the radius: the network alone
    assert far.memory is None and far.build_up.steps[-1] != "memory"
    with torch.inference_mode():
        assert far.label == int(model(x + 5.0).argmax())
