"""Taps, scribbles and dashes get a message, never a prediction; real digits are still read (issue 21.3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from torch import nn

from mnist_core import infer, notadigit
from mnist_core.errors import EmptyImageError, ImageError, NotADigitError

SIDE = 280  # the Draw page's canvas


def canvas(*strokes: list[tuple[float, float]], width: float = 20) -> np.ndarray:
    """RGBA (280, 280, 4) like streamlit-drawable-canvas: black strokes, round ends, antialiased, in alpha."""
    alpha = Image.new("L", (2 * SIDE, 2 * SIDE), 0)  # drawn at 2x and reduced: antialiased edges
    draw = ImageDraw.Draw(alpha)
    for points in strokes:
        points = [(2 * x, 2 * y) for x, y in points]
        if len(points) > 1:
            draw.line(points, fill=255, width=round(2 * width), joint="curve")
        for x, y in points:
            draw.ellipse((x - width, y - width, x + width, y + width), fill=255)
    out = np.zeros((SIDE, SIDE, 4), np.uint8)
    out[..., 3] = np.asarray(alpha.reduce(2))
    return out


def ellipse(cx: float, cy: float, rx: float, ry: float) -> list[tuple[float, float]]:
    return [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 40)]


DIGITS = {
    "7": canvas([(90, 40), (200, 40), (120, 245)]),
    "1 (a thin line)": canvas([(140, 30), (140, 250)]),
    "1 with a flag, thin brush": canvas([(110, 70), (150, 30), (150, 250)], width=8),
    "0 (a circle)": canvas(ellipse(140, 140, 100, 110)),
    "0 (an oval, thick brush)": canvas(ellipse(140, 140, 60, 110), width=34),
    "4 in two strokes": canvas([(170, 250), (170, 30), (50, 170), (230, 170)]),
    "2": canvas([(80, 80), (110, 40), (180, 40), (200, 90), (80, 240), (210, 240)]),
}
NOT_DIGITS = {
    "a tap": canvas([(140, 140)]),
    "a tap with a short drag": canvas([(60, 200), (64, 203)], width=28),
    "a dense scribble": canvas([(70 + 140 * (i % 2), 60 + i * 16) for i in range(11)], width=14),  # zig-zag
    "a dash": canvas([(40, 150), (240, 160)]),
}


@pytest.mark.parametrize("name", DIGITS)
def test_real_drawn_digits_are_accepted(name):
    pixels = infer.preprocess_pixels(DIGITS[name])
    assert pixels.shape == (28, 28) and pixels.max() == pytest.approx(1.0)


@pytest.mark.parametrize("name", NOT_DIGITS)
def test_non_digits_are_refused_with_a_message(name):
    with pytest.raises(NotADigitError, match=r"^This does not look like a digit: ") as info:
        infer.preprocess(NOT_DIGITS[name])
    assert isinstance(info.value, ImageError)  # the Draw page and the CLI show every ImageError
    assert "draw" in str(info.value).lower()  # says what to do


def _small(digit: str, top: float, left: float, height: float, brush: float = 20) -> np.ndarray:
    """``digit`` drawn ``height`` px tall (60% as wide) from ``(left, top)``, as a user draws a small one."""
    shapes = {  # strokes in a unit box, x right, y down
        "8": [[(0.5, 0.5), (0.15, 0.25), (0.5, 0.0), (0.85, 0.25), (0.5, 0.5), (0.1, 0.75), (0.5, 1.0),
               (0.9, 0.75), (0.5, 0.5)]],
        "6": [[(0.8, 0.0), (0.35, 0.3), (0.1, 0.7), (0.3, 1.0), (0.7, 1.0), (0.9, 0.75), (0.7, 0.5),
               (0.3, 0.5), (0.15, 0.7)]],
        "4": [[(0.7, 1.0), (0.7, 0.0), (0.05, 0.65), (0.95, 0.65)]],
        "0": [[(0.5 + 0.45 * np.cos(a), 0.5 + 0.5 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 33)]],
    }  # fmt: skip
    width = 0.6 * height
    return canvas(*[[(left + x * width, top + y * height) for x, y in s] for s in shapes[digit]], width=brush)


SMALL_DIGITS = {  # each refused as "a dot or a blob" by the first rule (any stroke over 7 px)
    "8, 50 px tall, default 20 px brush": _small("8", 100, 110, 50),
    "8, 70 px tall, default brush": _small("8", 100, 110, 70),
    "8, 60 px in the top-left corner": _small("8", 8, 8, 60),
    "6, 50 px tall, default brush": _small("6", 100, 110, 50),
    "4, 50 px tall, default brush": _small("4", 100, 110, 50),
    "0, 60 px tall, 28 px brush": _small("0", 100, 110, 60, brush=28),
}


@pytest.mark.parametrize("name", SMALL_DIGITS)
def test_small_digits_drawn_with_a_thick_brush_are_accepted(name):
    """Issue 21.3 follow-up: 6.4% of digits drawn 50-100 px tall with the default brush were refused."""
    pixels = infer.preprocess_pixels(SMALL_DIGITS[name])
    shape = notadigit.ink_shape(pixels)
    assert shape.stroke_width > notadigit.THICK_STROKE_WIDTH  # thick for its size, as a tap is...
    assert shape.flatness < 1  # ...but taller than wide, as digits are
    assert infer.preprocess(SMALL_DIGITS[name]).shape == (1, 1, 28, 28)


THICK_NON_DIGITS = {  # as thick for their size as the small digits above, but round or wide
    "a tap dragged 8 px diagonally, thinnest brush": canvas([(140, 140), (148, 148)], width=8),
    "a tap dragged 8 px sideways, 10 px brush": canvas([(140, 140), (148, 141)], width=10),
    "a tap dragged 5 px sideways, 16 px brush": canvas([(140, 140), (145, 141)], width=16),
    "a tap dragged 3 px, default brush": canvas([(140, 140), (143, 143)]),
}


@pytest.mark.parametrize("name", THICK_NON_DIGITS)
def test_thick_round_or_wide_shapes_are_still_refused_as_dots(name):
    shape = notadigit.ink_shape(infer.preprocess_pixels(THICK_NON_DIGITS[name], digit_check=False))
    assert shape.stroke_width > notadigit.THICK_STROKE_WIDTH and shape.flatness >= 1
    with pytest.raises(NotADigitError, match=r"^This does not look like a digit: it is a dot or a blob"):
        infer.preprocess(THICK_NON_DIGITS[name])


def test_a_blank_canvas_is_refused():
    with pytest.raises(EmptyImageError):
        infer.preprocess(np.zeros((SIDE, SIDE, 4), np.uint8))


def _two_digits() -> np.ndarray:
    return canvas([(30, 40), (120, 40), (60, 245)], [(200, 30), (200, 250)])  # a 7 and a 1 side by side


REFUSED = {
    **NOT_DIGITS,
    "a blank image": np.zeros((SIDE, SIDE, 4), np.uint8),
    "scattered specks": canvas(*[[(30 + 40 * i, 30 + 40 * j)] for i in range(6) for j in range(6)], width=8),
    "a tiny stroke": canvas([(140, 140), (141, 141)], width=2),
    "two digits": _two_digits(),
    "a filled square": np.pad(np.full((100, 100, 4), 255, np.uint8), ((90, 90), (90, 90), (0, 0))),
}


@pytest.mark.parametrize("name", REFUSED)
def test_a_refusal_tells_a_drawing_and_a_photo_what_to_do_in_their_own_words(name):
    """An upload was told "Draw a digit first", "filling most of the canvas", "a thinner stroke"."""
    with pytest.raises(ImageError) as info:
        infer.preprocess(REFUSED[name])
    error = info.value
    drawing, photo = error.for_source("drawing"), error.for_source("photo")
    assert drawing != photo
    for words in ("canvas", "draw", "thinner stroke"):
        assert words not in photo.lower(), photo
    assert "photo" not in drawing.lower(), drawing


@pytest.mark.parametrize("drag", [4, 8, 12])  # not 0: a tap, a dot whatever its size
def test_a_flick_of_the_thin_pen_on_the_canvas_is_too_small_to_be_a_digit(drag):
    """A 6 px pen dragged 4 px (a 6x10 blob) was read as an 8 with 71%: no shape rule tells it from a "1"."""
    flick = canvas([(140, 140), (140, 140 + drag)], width=6)
    with pytest.raises(EmptyImageError, match="too small") as info:
        infer.preprocess(flick, drawn=True)
    assert "draw the digit larger" in info.value.for_source("drawing")


def test_the_smallest_digits_drawn_on_the_canvas_are_still_read():
    """The canvas' floor sits below the smallest digits a user draws (50 px of 280, the study's)."""
    smallest = {**SMALL_DIGITS, "1, 56 px tall, thinnest pen": canvas([(140, 100), (140, 150)], width=6)}
    for name, image in smallest.items():
        assert infer.preprocess(image, drawn=True).shape == (1, 1, 28, 28), name


def test_each_rule_names_its_reason():
    tap = notadigit.ink_shape(infer.preprocess_pixels(NOT_DIGITS["a tap"], digit_check=False))
    scribble = notadigit.ink_shape(infer.preprocess_pixels(NOT_DIGITS["a dense scribble"], digit_check=False))
    dash = notadigit.ink_shape(infer.preprocess_pixels(NOT_DIGITS["a dash"], digit_check=False))
    problems = {name: notadigit.shape_problem(shape).what for name, shape in
                (("tap", tap), ("scribble", scribble), ("dash", dash))}
    assert tap.stroke_width > notadigit.MAX_STROKE_WIDTH and "dot" in problems["tap"]
    assert scribble.coverage > notadigit.MAX_COVERAGE and "too much ink" in problems["scribble"]
    assert dash.flatness > notadigit.MAX_FLATNESS and "wider than tall" in problems["dash"]


def test_a_28x28_mnist_like_digit_is_accepted_as_it_is():
    seven = np.zeros((28, 28), np.float32)
    seven[5:7, 8:20] = 1.0  # the bar
    for row in range(7, 24):
        col = 19 - (row - 7) // 2
        seven[row, col - 1 : col + 1] = 1.0
    assert infer.preprocess_pixels(seven).shape == (28, 28)


def test_fashion_objects_are_not_judged_as_digits():
    """Filled product photos are the Fashion-MNIST inputs: the digit rule must not refuse them."""
    shirt = np.zeros((SIDE, SIDE), np.uint8)
    shirt[40:240, 60:220] = 200
    assert infer.preprocess_pixels(shirt, "fashion").shape == (28, 28)


class _Constant(nn.Module):
    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.tensor([logits]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(x.shape[0], -1)


def test_an_unsure_prediction_carries_a_warning():
    x = torch.zeros(1, 1, 28, 28)
    unsure = infer.predict(_Constant([1.0, 1.2, 0.9, 1.1, 1.0, 0.8, 1.0, 1.0, 1.0, 1.0]).eval(), x)
    assert unsure.confidence < notadigit.LOW_CONFIDENCE
    assert unsure.warning is not None and unsure.warning.startswith("Low confidence (")
    sure = infer.predict(_Constant([0.0] * 9 + [9.0]).eval(), x)
    assert sure.label == 9 and sure.confidence > 0.99 and sure.warning is None


def _mnist_test_on_canvas(root):
    """The real MNIST test digits, each blown up onto the 280x280 canvas like a drawing."""
    from mnist_core.data import NORMALIZATION, load_split

    test = load_split("mnist", train=False, root=root)
    mean, std = NORMALIZATION["mnist"]
    digits = ((test.x[:, 0] * std + mean).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    for digit in digits:
        big = np.asarray(Image.fromarray(digit).resize((SIDE, SIDE), Image.Resampling.BILINEAR))
        rgba = np.zeros((SIDE, SIDE, 4), np.uint8)
        rgba[..., 3] = big
        yield rgba


@pytest.mark.realdata
@pytest.mark.slow
def test_real_mnist_test_digits_are_almost_never_refused(real_data_dir):
    """Target (issue 21): under 0.5% of real digits refused; measured 0.09% (scripts/not_a_digit_study.py)."""
    refused = total = 0
    for rgba in _mnist_test_on_canvas(real_data_dir):
        total += 1
        try:
            infer.preprocess_pixels(rgba)
        except ImageError:
            refused += 1
    assert total == 10_000
    assert refused / total < 0.005, f"{refused} of {total} real MNIST test digits refused"


def _show(root: str, warning: str | None) -> None:
    import sys

    sys.path.insert(0, root)  # the script runs from a temporary file: ui/ is found from the repository
    from mnist_core.infer import Prediction
    from ui import draw_widgets

    probabilities = (0.4, 0.3, *([0.3 / 8] * 8))
    draw_widgets.show_prediction(Prediction(probabilities, 0, 0.4, 0.001, warning), "mnist")


@pytest.mark.parametrize("warning", [None, "Low confidence (40%): the model is unsure"])
def test_the_draw_page_shows_the_low_confidence_warning_beside_the_prediction(warning):
    from streamlit.testing.v1 import AppTest

    root = str(Path(__file__).resolve().parents[2])
    at = AppTest.from_function(_show, args=(root, warning), default_timeout=30).run()
    assert not at.exception
    assert at.metric[0].value == "0"
    assert [w.value for w in at.warning] == ([] if warning is None else [warning])
