"""Deep nearest neighbours: an input unlike the digits a model learned from is warned about.

The geometry on hand-made features; the threshold's meaning (a quantile of
real test digits); the memory's drawings are exempt; and, on the real MNIST,
drawn letters are warned about while drawn digits are not.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mnist_core import infer, memory, novelty
from mnist_core.config import quick_default
from tests.unit.test_not_a_digit import DIGITS, canvas


class Axes(nn.Sequential):
    """Flatten, the first 3 pixels as the features (the last layer's input), a Linear head."""

    def __init__(self) -> None:
        pick = nn.Linear(784, 3, bias=False)
        with torch.no_grad():
            pick.weight.zero_()
            pick.weight[0, 0] = pick.weight[1, 1] = pick.weight[2, 2] = 1.0
        super().__init__(nn.Flatten(), pick, nn.Linear(3, 10))


def images(*features: tuple[float, float, float]) -> torch.Tensor:
    x = torch.zeros(len(features), 1, 28, 28)
    x.view(len(features), -1)[:, :3] = torch.tensor(features)
    return x


def test_the_distance_is_one_minus_the_cosine_of_the_kth_nearest_reference() -> None:
    model = Axes().eval()
    (reference,) = novelty.features(model, images(*[(1.0, 0.0, 0.0)] * novelty.K, (0.0, 1.0, 0.0)))
    (query,) = novelty.features(model, images((2.0, 0.0, 0.0), (0.0, 0.0, 3.0), (1.0, 1.0, 0.0)))
    near, far, between = novelty.distances(query, reference)
    assert near.item() == pytest.approx(0.0, abs=1e-6)  # the K references along it
    assert far.item() == pytest.approx(1.0, abs=1e-6)  # orthogonal to every reference
    assert between.item() == pytest.approx(1 - 2**-0.5, abs=1e-6)  # 45 degrees from the K-th


def spread(n: int, seed: int) -> torch.Tensor:
    """``n`` images whose first 3 pixels point anywhere in the positive octant."""
    return images(*torch.randn(n, 3, generator=torch.Generator().manual_seed(seed)).abs().tolist())


def test_the_threshold_warns_about_one_test_digit_in_a_hundred_and_about_what_is_far() -> None:
    model = Axes().eval()
    train_x, test_x = spread(3000, 0), spread(2000, 1)
    index = novelty.build(model, train_x, test_x)
    over = (index.score(model, test_x[: novelty.CALIBRATION_IMAGES]) > index.threshold).float().mean()
    assert over.item() == pytest.approx(1 - novelty.QUANTILE, abs=0.002)
    assert [len(f) for f in index.features] == [min(len(train_x), novelty.REFERENCE_IMAGES)]
    assert index.warning(model, images((0.0, 0.0, -3.0))) is not None  # opposite to every reference
    assert index.warning(model, images((1.0, 1.0, 1.0))) is None  # among them


class TwoLayers(nn.Sequential):
    """Pixels 0-2 through a ReLU (the first layer looked at), then pixels 3-5 (the last layer's input)."""

    def __init__(self) -> None:
        first, second = nn.Linear(784, 6, bias=False), nn.Linear(6, 3, bias=False)
        with torch.no_grad():
            first.weight.zero_()
            second.weight.zero_()
            for i in range(6):
                first.weight[i, i] = 1.0
            for i in range(3):
                second.weight[i, 3 + i] = 1.0
        super().__init__(nn.Flatten(), first, nn.ReLU(), second, nn.Dropout(0.5), nn.Linear(3, 10))


def six(*rows: tuple[float, ...]) -> torch.Tensor:
    x = torch.zeros(len(rows), 1, 28, 28)
    x.view(len(rows), -1)[:, :6] = torch.tensor(rows)
    return x


def test_every_activation_is_looked_at_and_an_input_far_in_any_one_is_warned_about() -> None:
    model = TwoLayers().eval()
    gen = torch.Generator().manual_seed(0)
    digits = torch.randn(3000, 6, generator=gen).abs() + torch.tensor([3.0, 0, 0, 3.0, 0, 0])
    index = novelty.build(model, six(*digits[:2000].tolist()), six(*digits[2000:].tolist()))
    # The ReLU's output and the last layer's input (the Dropout after it gives the same in eval).
    assert [f.shape[1] for f in index.features] == [6, 3]
    near_in_both = six((4.0, 0.2, 0.2, 4.0, 0.2, 0.2))
    far_in_the_first_only = six((0.0, 0.0, 4.0, 4.0, 0.2, 0.2))  # the last layer sees a digit
    assert index.warning(model, near_in_both) is None
    assert index.warning(model, far_in_the_first_only) is not None
    (_, last) = novelty.features(model, far_in_the_first_only)
    assert float(novelty.distances(last, index.features[1])[0]) <= float(index.calibration[1][-1])


def test_maps_are_pooled_and_wide_layers_projected_to_a_bounded_size() -> None:
    cnn = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 784, 4096),
                        nn.ReLU(), nn.Linear(4096, 10)).eval()  # fmt: skip
    x = torch.rand(5, 1, 28, 28)
    maps, wide = novelty.features(cnn, x)
    assert maps.shape == (5, 8 * novelty.POOL**2) and wide.shape == (5, novelty.MAX_DIMS // 2)
    assert torch.allclose(maps.norm(dim=1), torch.ones(5)) and torch.equal(wide, novelty.features(cnn, x)[1])


def test_a_model_that_does_not_end_in_a_linear_layer_has_no_index() -> None:
    for model in (nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.ReLU()), nn.Linear(784, 10)):
        with pytest.raises(ValueError, match="ending in a Linear layer"):
            novelty.features(model, torch.zeros(1, 1, 28, 28))


def test_a_drawing_the_memory_remembers_is_not_warned_about() -> None:
    model = Axes().eval()
    far = images((0.0, 0.0, -3.0))
    index = novelty.build(model, spread(3000, 0), spread(2000, 1))
    assert index.warning(model, far) is not None
    taught = memory.Memory(far.flatten(1), torch.tensor([7]), torch.tensor([1.0]))
    memory.attach(model, taught)
    assert index.warning(model, far) is None
    assert index.warning(model, images((0.0, -3.0, 0.0))) is not None  # not the taught drawing


LETTERS = {
    "A": canvas([(50, 250), (140, 30), (230, 250)], [(85, 170), (195, 170)]),
    "X": canvas([(50, 40), (230, 250)], [(230, 40), (50, 250)]),
    "F": canvas([(220, 40), (80, 40), (80, 250)], [(80, 140), (190, 140)]),
    "star": canvas([(140, 30), (195, 240), (30, 100), (250, 100), (85, 240), (140, 30)]),
}


@pytest.mark.realdata
@pytest.mark.slow
def test_on_real_mnist_drawn_letters_are_warned_about_and_drawn_digits_are_not(real_data_dir) -> None:
    from mnist_core.pipeline import run_training
    from mnist_core.runs import load_model

    info = run_training(quick_default(), data_root=real_data_dir)
    model, cfg = load_model(info.id)
    index = novelty.for_run(model, cfg, str(real_data_dir))
    assert index is not None

    def warned(image) -> bool:
        reading = infer.read(model, image, drawn=True, novelty=lambda: index)
        said = reading.prediction.warning if reading.prediction is not None else None
        return "does not look much like" in (said or "")

    assert [name for name, image in LETTERS.items() if not warned(image)] == []
    assert [name for name, image in DIGITS.items() if warned(image)] == []
