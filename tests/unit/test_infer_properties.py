"""Property tests: preprocessing never crashes and is invariant where it should be."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image, ImageDraw

from mnist_core import infer
from mnist_core.errors import EmptyImageError, ImageError, InvalidImageError

# The autouse environment fixture in conftest does not vary between examples;
# database=None keeps hypothesis from writing .hypothesis/ into the repository.
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
STROKES = settings(FUZZ, max_examples=40)

SHAPES = st.tuples(st.integers(1, 64), st.integers(1, 64), st.sampled_from([None, 3, 4])).map(
    lambda s: s[:2] if s[2] is None else s
)


@st.composite
def images(draw: st.DrawFn) -> np.ndarray:
    """Any (H, W), (H, W, 3) or (H, W, 4) array: uint8, or float32/float64 in [0, 1]."""
    shape = draw(SHAPES)
    dtype = draw(st.sampled_from([np.uint8, np.float32, np.float64]))
    if dtype is np.uint8:
        elements = st.integers(0, 255)
    else:
        elements = st.floats(0.0, 1.0, width=32 if dtype is np.float32 else 64)
    kind = draw(st.sampled_from(["noise", "flat", "blocks"]))
    if kind != "blocks":  # per-pixel values, or mostly one value with a few others
        return draw(arrays(dtype, shape, elements=elements, fill=elements if kind == "flat" else None))
    # A coarse random pattern blown up to (H, W): blobs and bars with real contrast.
    coarse = draw(
        arrays(dtype, (draw(st.integers(1, 6)), draw(st.integers(1, 6)), *shape[2:]), elements=elements)
    )
    rows = np.arange(shape[0]) * coarse.shape[0] // shape[0]
    cols = np.arange(shape[1]) * coarse.shape[1] // shape[1]
    return np.ascontiguousarray(coarse[rows][:, cols])


def check(image: np.ndarray) -> None:
    """The property: a finite (1, 1, 28, 28) float32 tensor with the digit in its box, or an ImageError."""
    try:
        x = infer.preprocess(image)
    except ImageError:
        return
    assert x.shape == (1, 1, 28, 28) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    pixels = infer.preprocess_pixels(image)
    assert pixels.min() >= 0.0 and pixels.max() == pytest.approx(1.0)
    rows, cols = np.flatnonzero(pixels.any(1)), np.flatnonzero(pixels.any(0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 == 20  # fitted to MNIST's 20x20 box


@FUZZ
@given(images())
def test_any_array_gives_a_tensor_or_an_image_error(image: np.ndarray) -> None:
    check(image)


@FUZZ
@given(images(), st.sampled_from([np.nan, np.inf, -np.inf]), st.data())
def test_non_finite_floats_are_an_invalid_image(image: np.ndarray, bad: float, data: st.DataObject) -> None:
    image = image.astype(np.float32) / (255 if image.dtype == np.uint8 else 1)
    index = tuple(data.draw(st.integers(0, n - 1)) for n in image.shape)
    image[index] = bad
    with pytest.raises(InvalidImageError, match="NaN or infinite"):
        infer.preprocess(image)


POINTS = st.lists(st.tuples(st.integers(8, 100), st.integers(8, 100)), min_size=2, max_size=6)


def draw_stroke(
    points: list[tuple[int, int]], width: int, offset: tuple[int, int], size: int = 160
) -> np.ndarray:
    image = Image.new("L", (size, size), 0)
    shifted = [(x + offset[0], y + offset[1]) for x, y in points]
    ImageDraw.Draw(image).line(shifted, fill=255, width=width, joint="curve")
    return np.asarray(image).copy()


def translate(image: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    """``image`` moved right and down by ``offset`` pixels, exactly.

    PIL does not rasterise a line the same at every position (a pixel more or
    less), so redrawing the points elsewhere is not a pure translation.
    """
    dx, dy = offset
    out = np.zeros_like(image)
    out[dy:, dx:] = image[: image.shape[0] - dy, : image.shape[1] - dx]
    assert out.sum() == image.sum(), "the stroke must stay inside the canvas"
    return out


@STROKES
@given(POINTS, st.integers(1, 8), st.tuples(st.integers(0, 50), st.integers(0, 50)))
@example([(18, 8), (81, 68)], 2, (35, 0))  # redrawn at the offset: one pixel less
def test_a_stroke_reads_the_same_anywhere_in_any_polarity(
    points: list[tuple[int, int]], width: int, offset: tuple[int, int]
) -> None:
    base = draw_stroke(points, width, (0, 0))
    try:  # the geometry of any stroke, digit-shaped or not (a dash, a dot): no not-a-digit check
        expected = infer.preprocess_pixels(base, digit_check=False)
    except EmptyImageError:
        return
    moved = translate(base, offset)
    transparent = np.zeros((*base.shape, 4), np.uint8)
    transparent[:, :, 3] = base
    for variant in (moved, 255 - base, transparent):
        np.testing.assert_allclose(infer.preprocess_pixels(variant, digit_check=False), expected, atol=0.02)


@STROKES
@given(POINTS, st.integers(2, 8))
def test_a_drawn_stroke_is_centred_by_mass(points: list[tuple[int, int]], width: int) -> None:
    try:
        pixels = infer.preprocess_pixels(draw_stroke(points, width, (20, 20)), digit_check=False)
    except EmptyImageError:
        return
    index = np.arange(28)
    cy = (pixels.sum(1) * index).sum() / pixels.sum()
    cx = (pixels.sum(0) * index).sum() / pixels.sum()
    # At (14, 14) up to integer rounding, unless that would push the digit out of the frame,
    # in which case it is shifted only as far as the frame edge.
    assert abs(cy - 14) <= 0.5 + 1e-3 or pixels[0].any() or pixels[-1].any()
    assert abs(cx - 14) <= 0.5 + 1e-3 or pixels[:, 0].any() or pixels[:, -1].any()
