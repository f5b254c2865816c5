"""mnist_core.probes: linear readouts per layer, on data and models whose answers are known."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn

from mnist_core import probes, runs
from mnist_core.config import RunConfig
from tests.support.saved import untrained_run


def clusters(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Linearly separable 2x2 "images" of 3 classes: class c is bright in pixel c, plus small noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = 0.1 * torch.randn(n, 4, generator=g)
    x[torch.arange(n), y] += 3.0
    return x.reshape(n, 1, 2, 2), y


def xor(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes no line separates: class 1 when exactly one of pixels 0, 1 is on (+-1 corners)."""
    g = torch.Generator().manual_seed(seed)
    a, b = (torch.randint(0, 2, (n,), generator=g) for _ in range(2))
    x = torch.zeros(n, 4)
    x[:, 0], x[:, 1] = 2.0 * a - 1, 2.0 * b - 1
    x += 0.05 * torch.randn(n, 4, generator=g)
    return x.reshape(n, 1, 2, 2), (a ^ b)


def xor_net() -> nn.Sequential:
    """A hidden ReLU layer set by hand that makes XOR linear: h0 = relu(p0 - p1), h1 = relu(p1 - p0)."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2), nn.ReLU(), nn.Linear(2, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, -1.0, 0, 0], [-1.0, 1.0, 0, 0]]))
        model[1].bias.zero_()
        model[3].weight.copy_(torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
        model[3].bias.copy_(torch.tensor([1.0, -1.0]))
    return model.eval()


def test_linearly_separable_data_is_read_out_perfectly() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.cat([torch.eye(4), -torch.eye(4)]))  # the pixels and their negatives
        model[1].bias.zero_()
    found = probes.fit_probes(model, *clusters(300, 0), *clusters(200, 1))
    assert [r.position for r in found.readouts] == ["pixels", "layer 1", "output"]
    pixels, hidden, _ = found.readouts
    assert pixels.accuracy == 1.0 and pixels.fit_accuracy == 1.0  # a line separates them
    assert hidden.accuracy == 1.0  # layer 1 keeps every pixel (relu(p), relu(-p))
    assert pixels.features == 4 and hidden.features == 8 and pixels.weight.shape == (4, 3)
    assert found.fit_images == 300 and found.test_images == 200


def test_depth_helps_where_no_line_separates_the_classes() -> None:
    model = xor_net()
    found = probes.fit_probes(model, *xor(400, 0), *xor(400, 1))
    pixels, hidden, output = found.readouts
    assert pixels.accuracy < 0.65  # XOR: no linear readout of the pixels does much better than chance
    assert hidden.accuracy == 1.0 and output.accuracy == 1.0  # the hidden layer made it linear
    assert output.weight is None and hidden.name == "layer 1: linear 4→2, relu"


def test_ridge_solution_is_least_squares_and_the_scale_sharpens() -> None:
    x, y = clusters(300, 2)
    flat = x.flatten(1)
    weight, bias = probes.fit_ridge(flat, y, 3, ridge=0.0)
    design = torch.cat([flat, torch.ones(len(flat), 1)], 1).double()
    exact = torch.linalg.lstsq(design, torch.nn.functional.one_hot(y, 3).double()).solution
    assert torch.allclose(weight.double(), exact[:4], atol=1e-4)
    assert torch.allclose(bias.double(), exact[4], atol=1e-4)
    scale = probes.fit_scale(flat @ weight + bias, y)
    assert scale > 5  # separable: the cross-entropy wants confident probabilities


def test_a_drawing_read_layer_by_layer_ends_with_the_models_own_probabilities() -> None:
    model = xor_net()
    found = probes.fit_probes(model, *xor(400, 0), *xor(100, 1))
    x = torch.tensor([1.0, -1.0, 0, 0]).reshape(1, 1, 2, 2)  # exactly one on: class 1
    rows = probes.read_drawing(found, model, x)
    assert rows.shape == (3, 2) and np.allclose(rows.sum(1), 1.0)
    with torch.inference_mode():
        assert np.allclose(rows[-1], torch.softmax(model(x)[0].double(), 0).numpy())
    assert rows[1, 1] > 0.9 and rows[1, 1] > rows[0, 1]  # the hidden layer's readout is sure, the pixels' not


def test_a_conv_layer_is_pooled_before_its_probe() -> None:
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 28 * 28, 10))
    feats, logits = probes.features(model.eval(), torch.randn(6, 1, 28, 28))
    assert [f.shape for f in feats] == [(6, 784), (6, 3 * probes.POOL * probes.POOL)]
    assert logits.shape == (6, 10)


def test_a_runs_probes_are_fitted_once_and_kept_beside_it(runs_dir, monkeypatch) -> None:
    run_id = untrained_run(runs_dir, RunConfig(hidden=(16, 8)), "two layers")
    first = probes.run_probes(run_id, runs_dir)
    path = runs.run_path(run_id, runs_dir) / probes.FILE
    assert path.is_file()
    assert [r.position for r in first.readouts] == ["pixels", "layer 1", "layer 2", "output"]
    with np.load(path, allow_pickle=False) as npz:  # plain arrays: nothing pickled
        assert npz["w1"].shape == (16, 10)

    def refit(*_a, **_k):
        raise AssertionError("fitted again")

    fit = probes.fit_probes
    monkeypatch.setattr(probes, "fit_probes", refit)
    again = probes.run_probes(run_id, runs_dir)  # from the file
    assert [r.accuracy for r in again.readouts] == [r.accuracy for r in first.readouts]
    assert np.array_equal(again.readouts[2].weight, first.readouts[2].weight)
    monkeypatch.setattr(probes, "fit_probes", fit)
    weights = runs.run_path(run_id, runs_dir) / "weights.pt"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # new weights: stale probes
    assert probes.load(path, probes._stamp(weights.parent)) is None
    path.write_bytes(b"not a zip")  # a damaged cache is fitted again, not an error
    assert probes.run_probes(run_id, runs_dir).readouts[-1].position == "output"


def test_without_the_dataset_probes_say_what_to_do(runs_dir, tmp_path, monkeypatch) -> None:
    from mnist_core.errors import DatasetUnavailable

    run_id = untrained_run(runs_dir, RunConfig(hidden=(16,)), "one layer")
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path / "nothing"))
    with pytest.raises(DatasetUnavailable, match="MNIST_DATA_DIR"):
        probes.run_probes(run_id, runs_dir)


def test_a_remembered_drawing_ends_with_the_memorys_answer() -> None:
    from mnist_core import memory

    model = xor_net()
    found = probes.fit_probes(model, *xor(400, 0), *xor(100, 1))
    x = torch.tensor([1.0, -1.0, 0, 0]).reshape(1, 1, 2, 2)  # the network says class 1
    memory.attach(model, memory.Memory(x.reshape(1, -1).clone(), torch.tensor([0]), torch.tensor([0.5])))
    rows = probes.read_drawing(found, model, x)
    with torch.inference_mode():
        actual = torch.softmax(model(x)[0].double(), 0).numpy()  # through the memory's hook
    assert actual.argmax() == 0 and np.allclose(rows[-1], actual)
    assert rows[1].argmax() == 1  # the hidden layer's readout: the network's own reading


def test_saved_never_fits_and_the_fit_time_is_estimated_from_the_work(runs_dir) -> None:
    from mnist_core.models import build_model

    run_id = untrained_run(runs_dir, RunConfig(hidden=(16, 8)), "two layers")
    assert probes.saved(run_id, runs_dir) is None  # nothing beside the run yet, and nothing fitted
    assert not (runs.run_path(run_id, runs_dir) / probes.FILE).exists()
    fitted = probes.run_probes(run_id, runs_dir)
    kept = probes.saved(run_id, runs_dir)
    assert kept is not None and [r.accuracy for r in kept.readouts] == [r.accuracy for r in fitted.readouts]
    small = probes.run_fit_seconds(run_id, runs_dir)
    wide = probes.fit_seconds(build_model(RunConfig(hidden=(1024, 1024, 1024))).eval())
    assert probes.LOAD_SECONDS < small < 1.0 < wide < 10.0
    macs = 784 * 1024 + 2 * 1024 * 1024 + 1024 * 10  # the forward pass of one image
    products = 784**2 + 3 * 1024**2  # one d x d product per position, per fitting image
    work = macs * (probes.FIT_IMAGES + probes.TEST_IMAGES) + products * probes.FIT_IMAGES
    assert wide == pytest.approx(probes.LOAD_SECONDS + work / probes.FIT_RATE)
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 26 * 26, 10)).eval()
    conv_work = (18 * 26 * 26 + 2 * 26 * 26 * 10) * (probes.FIT_IMAGES + probes.TEST_IMAGES)
    conv_work += (784**2 + (2 * probes.POOL * probes.POOL) ** 2) * probes.FIT_IMAGES
    assert probes.fit_seconds(conv) == pytest.approx(probes.LOAD_SECONDS + conv_work / probes.FIT_RATE)


def test_ridge_by_cholesky_matches_the_plain_solve_and_a_constant_unit_without_ridge_still_solves() -> None:
    x, y = clusters(300, 4)
    flat = x.flatten(1)
    weight, bias = probes.fit_ridge(flat, y, 3)
    xc = (flat - flat.mean(0)).double()
    gram = xc.T @ xc
    lam = probes.RIDGE * float(gram.diagonal().mean()) + 1e-12
    target = torch.nn.functional.one_hot(y, 3).double()
    ridged = gram + lam * torch.eye(4, dtype=torch.float64)
    exact = torch.linalg.solve(ridged, xc.T @ (target - target.mean(0)))
    assert torch.allclose(weight.double(), exact, atol=1e-5)
    with_constant = torch.cat([flat, torch.ones(len(flat), 1)], 1)  # centred: a zero column, singular
    weight, bias = probes.fit_ridge(with_constant, y, 3, ridge=0.0)
    assert torch.isfinite(weight).all() and torch.isfinite(bias).all()
    assert probes._accuracy(with_constant @ weight + bias, y) == 1.0


def test_the_output_position_is_measured_as_the_model_answers_with_its_memory() -> None:
    from mnist_core import memory

    model = xor_net()
    test_x, test_y = xor(100, 1)
    wrong = (1 - test_y).clone()  # a memory that remembers every test input with the other label
    memory.attach(model, memory.Memory(test_x.flatten(1).clone(), wrong, torch.full((100,), 1e-3)))
    found = probes.fit_probes(model, *xor(400, 0), test_x, test_y)
    assert found.readouts[-1].accuracy == 0.0  # the model's answers: the memory's, all wrong here
    assert found.readouts[1].accuracy == 1.0  # the hidden layer's readout: the network's own reading
