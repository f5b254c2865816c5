"""Re-drawings: the same digit drawn again a little differently, seeded, framed like a drawing."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from mnist_core.data import normalize
from mnist_core.infer import preprocess_pixels
from mnist_core.redraw import Habit, redraw, redraw_inputs


def a_digit() -> np.ndarray:
    """A thick 7 in 28x28 float ink, framed as the preprocessing frames it."""
    pixels = np.zeros((28, 28), np.float32)
    pixels[6:9, 7:21] = 1.0
    for row in range(9, 24):
        col = 20 - (row - 9) // 2
        pixels[row, col - 1 : col + 2] = 1.0
    return pixels


def centre_of_mass(pixels: np.ndarray) -> tuple[float, float]:
    total = pixels.sum()
    rows, cols = np.indices(pixels.shape)
    return float((rows * pixels).sum() / total), float((cols * pixels).sum() / total)


def test_redraw_is_seeded_varied_and_leaves_the_global_generator_alone() -> None:
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    one = redraw(a_digit(), 6, seed=1)
    assert torch.equal(torch.rand(3), expected), "the caller's random stream moved"
    assert one.shape == (6, 28, 28) and one.dtype == np.float32
    assert one.min() >= 0.0 and one.max() <= 1.0
    assert np.array_equal(one, redraw(a_digit(), 6, seed=1))
    assert not np.array_equal(one, redraw(a_digit(), 6, seed=2))
    assert all(not np.array_equal(a, b) for a, b in itertools.pairwise(one)), "no two alike"
    assert all(not np.array_equal(view, a_digit()) for view in one)


def test_each_redrawing_is_framed_like_a_new_drawing() -> None:
    """Shifted and resized, then preprocessed again: centre of mass back near (14, 14), ink kept."""
    habit = Habit(shift=0.15, scale=(0.7, 0.8))
    for view in redraw(a_digit(), 5, seed=3, habit=habit):
        row, col = centre_of_mass(view)
        assert abs(row - 14) < 2.0 and abs(col - 14) < 2.0  # a shift of 0.15 is 4 px; clipping aside
        assert 0.3 * a_digit().sum() < view.sum() < 3 * a_digit().sum()


def test_no_change_at_all_gives_the_drawing_back() -> None:
    still = Habit(degrees=0, slant=0, scale=(1.0, 1.0), shift=0, stroke=0, wobble=0)
    views = redraw(a_digit(), 2, habit=still)
    framed = preprocess_pixels(a_digit(), digit_check=False)  # what the app would make of it
    assert np.abs(views - framed).max() < 0.05


@pytest.mark.parametrize("dataset", ["mnist", "fashion"])
def test_redraw_inputs_are_normalised_model_inputs(dataset: str) -> None:
    x = normalize(torch.from_numpy(np.stack([a_digit(), a_digit().T])), dataset).unsqueeze(1)
    views = redraw_inputs(x, 3, seed=4, dataset=dataset)
    assert views.shape == (6, 1, 28, 28) and views.dtype == torch.float32
    background = float(normalize(torch.zeros(1), dataset))
    assert float(views.min()) == pytest.approx(background, abs=1e-5)
    assert not torch.equal(views[:3], views[3:])  # each input's own re-drawings
