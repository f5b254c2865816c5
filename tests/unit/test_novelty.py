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
    reference = images(*[(1.0, 0.0, 0.0)] * novelty.K, (0.0, 1.0, 0.0))
    index = novelty.NoveltyIndex(novelty.features(model, reference), threshold=0.5)
    near, far, between = index.distance(model, images((2.0, 0.0, 0.0), (0.0, 0.0, 3.0), (1.0, 1.0, 0.0)))
    assert near.item() == pytest.approx(0.0, abs=1e-6)  # the K references along it
    assert far.item() == pytest.approx(1.0, abs=1e-6)  # orthogonal to every reference
    assert between.item() == pytest.approx(1 - 2**-0.5, abs=1e-6)  # 45 degrees from the K-th
    assert index.warning(model, images((0.0, 0.0, 3.0))) is not None
    assert index.warning(model, images((2.0, 0.0, 0.0))) is None


def test_the_threshold_warns_about_one_test_digit_in_a_hundred() -> None:
    gen = torch.Generator().manual_seed(0)
    model = Axes().eval()
    train_x = images(*torch.randn(3000, 3, generator=gen).abs().tolist())
    test_x = images(*torch.randn(2000, 3, generator=gen).abs().tolist())
    index = novelty.build(model, train_x, test_x)
    over = (index.distance(model, test_x[: novelty.CALIBRATION_IMAGES]) > index.threshold).float().mean()
    assert over.item() == pytest.approx(1 - novelty.QUANTILE, abs=0.002)
    assert len(index.features) == min(len(train_x), novelty.REFERENCE_IMAGES)


def test_a_model_that_does_not_end_in_a_linear_layer_has_no_index() -> None:
    for model in (nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.ReLU()), nn.Linear(784, 10)):
        with pytest.raises(ValueError, match="ending in a Linear layer"):
            novelty.features(model, torch.zeros(1, 1, 28, 28))


def test_a_drawing_the_memory_remembers_is_not_warned_about() -> None:
    model = Axes().eval()
    far = images((0.0, 0.0, 3.0))
    index = novelty.NoveltyIndex(novelty.features(model, images(*[(1.0, 0.0, 0.0)] * novelty.K)), 0.5)
    assert index.warning(model, far) is not None
    taught = memory.Memory(far.flatten(1), torch.tensor([7]), torch.tensor([1.0]))
    memory.attach(model, taught)
    assert index.warning(model, far) is None
    assert index.warning(model, images((0.0, 3.0, 0.0))) is not None  # not the taught drawing


LETTERS = {
    "A": canvas([(50, 250), (140, 30), (230, 250)], [(85, 170), (195, 170)]),
    "X": canvas([(50, 40), (230, 250)], [(230, 40), (50, 250)]),
    "F": canvas([(220, 40), (80, 40), (80, 250)], [(80, 140), (190, 140)]),
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
