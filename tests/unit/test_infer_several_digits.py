"""Several digits in one image are refused with a clear message; one digit in several strokes is not.

Measured on the real MNIST (not a test here, see the README): none of 3000
test digits blown up to 280x280 is refused, and 495 of 500 pairs of test
digits placed side by side are (the 5 missed pairs touch).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnist_core import infer
from mnist_core.errors import ImageError, SeveralDigitsError
from tests.support import synthetic

Stroke = list[tuple[float, float]]

FOUR: list[Stroke] = [[(60, 40), (30, 170), (150, 170)], [(120, 60), (120, 250)]]
SEVEN: list[Stroke] = [[(20, 40), (150, 40), (70, 250)]]
ONE: list[Stroke] = [[(60, 40), (60, 250)]]
ZERO: list[Stroke] = [[(70, 40), (30, 100), (35, 200), (80, 250), (125, 200), (130, 100), (90, 40), (70, 40)]]


def draw(strokes: list[Stroke], size: tuple[int, int] = (600, 300), width: int = 14, dark: bool = False):
    """uint8 gray image of polylines: white on black, or dark ink on white paper."""
    paper, ink = (255, 0) if dark else (0, 255)
    image = Image.new("L", size, paper)
    pen = ImageDraw.Draw(image)
    for stroke in strokes:
        pen.line(stroke, fill=ink, width=width, joint="curve")
    return np.asarray(image).copy()


def shift(strokes: list[Stroke], dx: float, dy: float = 0.0) -> list[Stroke]:
    return [[(x + dx, y + dy) for x, y in stroke] for stroke in strokes]


def canvas(gray: np.ndarray) -> np.ndarray:
    """The drawing as the canvas sends it: RGBA, black stroke in the alpha channel."""
    rgba = np.zeros((*gray.shape, 4), np.uint8)
    rgba[..., 3] = gray
    return rgba


@pytest.mark.parametrize(
    "strokes",
    [
        FOUR + shift(SEVEN, 300),
        ONE + shift(ZERO, 120),  # "10": a thin 1 beside a wide 0
        SEVEN + shift(ONE, 190) + shift(FOUR, 330),  # three digits
        ZERO + shift(ZERO, 150, 20),  # not quite on the same line
    ],
    ids=["47", "10", "714", "00-offset"],
)
@pytest.mark.parametrize("style", ["white-on-black", "dark-on-paper", "canvas-alpha"])
def test_digits_side_by_side_are_refused(strokes: list[Stroke], style: str) -> None:
    gray = draw(strokes, dark=style == "dark-on-paper")
    image = canvas(gray) if style == "canvas-alpha" else gray
    with pytest.raises(SeveralDigitsError, match="digits side by side") as error:
        infer.preprocess(image)
    assert isinstance(error.value, ImageError)  # pages catch ImageError and show the message
    assert "draw a single digit" in str(error.value)


def test_the_message_counts_the_digits() -> None:
    with pytest.raises(SeveralDigitsError, match="3 digits"):
        infer.preprocess(draw(SEVEN + shift(ONE, 190) + shift(FOUR, 330)))


@pytest.mark.parametrize(
    "strokes",
    [
        FOUR,  # two strokes that cross
        [[(140, 40), (60, 40), (50, 120)], [(52, 125), (150, 130), (150, 220), (40, 240)]],  # 5, bar apart
        [[(40, 40), (170, 40), (90, 250)], [(70, 150), (150, 150)]],  # 7 with a crossbar
        [[(100, 30), (100, 250)], [(60, 250), (140, 250)], [(70, 60), (100, 30)]],  # 1 with base and flag
        [[(90, 20), (40, 70), (90, 120), (140, 70), (90, 20)],
         [(90, 135), (30, 190), (90, 250), (150, 190), (90, 135)]],  # 8, loops apart
        [[(60, 40), (60, 200)], [(61, 225), (61, 236)]],  # a "!"-like 1 with a detached dot
    ],
    ids=["4-crossing", "5-detached-bar", "7-crossbar", "1-base-flag", "8-stacked-loops", "1-and-dot"],
)  # fmt: skip
def test_one_digit_in_several_strokes_is_read(strokes: list[Stroke]) -> None:
    pixels = infer.preprocess_pixels(draw(strokes, size=(300, 300)))
    assert pixels.shape == (28, 28) and pixels.max() == pytest.approx(1.0)


def test_generated_digits_of_every_class_are_never_refused() -> None:
    rng = np.random.default_rng(0)
    for label in range(10):
        for _ in range(5):
            glyph = synthetic.render_digit(label, rng)
            big = np.asarray(Image.fromarray(glyph).resize((280, 280), Image.Resampling.BILINEAR))
            infer.preprocess(big)


def test_a_wide_single_digit_is_not_several() -> None:
    wide_zero = [[(40, 150), (150, 60), (400, 60), (560, 150), (400, 240), (150, 240), (40, 150)]]
    infer.preprocess(draw(wide_zero))


def test_fashion_objects_are_not_checked_for_several_digits() -> None:
    two_socks = np.zeros((200, 400), np.uint8)
    two_socks[40:160, 40:150] = 255
    two_socks[40:160, 250:360] = 255
    assert infer.preprocess(two_socks, "fashion").shape == (1, 1, 28, 28)
