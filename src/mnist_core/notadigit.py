"""Is this a digit at all? Measured rules that refuse taps, blobs, scribbles and dashes.

The model reads anything as a digit: a single tap on the canvas came out as
"0" at 97%, a scribble as "4" at 85%. Two checks, both chosen by
``scripts/not_a_digit_study.py`` (MNIST test set blown up onto the canvas,
drawn and rendered digits, and seeded taps, dots, scribbles, lines, random
strokes and noise; run it for the full table):

* :func:`refuse_non_digit`, on the shape of the ink the model would see
  (``infer.preprocess_pixels`` calls it, so the Draw page and the CLI show
  its :class:`NotADigitError` like any other image error). A digit is a line:
  its strokes are thin for its size, it leaves most of its box empty, and it
  is not much wider than tall. With the thresholds below it refused 0.09% of
  the 10,000 MNIST test digits (existing blank/speck checks included) and
  none of 1,000 drawn digits or 500 upright lines ("1"), one of 500 ellipses
  ("0"), and 6.4% of small digits (50-100 px tall with the default 20 px
  brush: too thick for their size; the message asks for a larger drawing),
  while catching every tap and dot, 85% of scribbles and 69% of
  near-horizontal lines.
* :func:`confidence_warning`, on the model's answer: below
  :data:`LOW_CONFIDENCE` the page says the model is unsure. The max softmax
  probability was kept over the energy of the logits (which caught a few
  more non-digits at the same cost) because its threshold means the same for
  every model, while energy scales with each model's logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import NotADigitError

# Thresholds on the 28x28 input (digit in its 20x20 box), measured: see the module docstring.
MAX_STROKE_WIDTH = 7.0  # px; MNIST's median is 2.9, its 99.9th percentile under 7; a tap is 10-12
MAX_COVERAGE = 0.28  # mean ink of the 28x28 input; 3 of 10,000 MNIST test digits are above, most scribbles
MAX_FLATNESS = 2.5  # width / height of the ink's box; no MNIST test digit is even 2
LOW_CONFIDENCE = 0.5  # below this probability the prediction comes with a warning
RULE = (
    f"refuse when stroke width > {MAX_STROKE_WIDTH:g} px or coverage > {MAX_COVERAGE:g} "
    f"or flatness > {MAX_FLATNESS:g}; warn when max softmax < {LOW_CONFIDENCE:g}"
)


@dataclass(frozen=True)
class InkShape:
    """Measures of a preprocessed input: 28x28 ink in [0, 1], the digit scaled into a 20x20 box."""

    coverage: float  # mean ink over the 28x28 input
    stroke_width: float  # 2 * area / boundary length of the >0.5 mask, pixels at 28x28
    length: float  # area of the >0.5 mask / stroke width: the length of the strokes, pixels
    flatness: float  # width / height of the box of the >0.1 ink


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels of a boolean ``(H, W)`` mask: 2 * area / boundary length."""
    padded = np.pad(mask, 1)
    inner = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    area = int(mask.sum())
    boundary = area - int(inner.sum())
    return 2.0 * area / boundary if boundary else float(area)


def ink_shape(pixels: np.ndarray) -> InkShape:
    """The :class:`InkShape` of ``pixels``, float ``(28, 28)`` in [0, 1] (``infer.preprocess_pixels``)."""
    mask = pixels > 0.5
    width = stroke_width(mask)
    inked = pixels > 0.1
    rows, cols = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
    height = int(rows[-1] - rows[0] + 1) if rows.size else 1
    wide = int(cols[-1] - cols[0] + 1) if cols.size else 1
    return InkShape(
        coverage=float(pixels.mean()),
        stroke_width=width,
        length=float(mask.sum()) / max(width, 1e-6),
        flatness=wide / height,
    )


def shape_problem(shape: InkShape) -> str | None:
    """Why ``shape`` is not a digit's (the end of a sentence), or None when it may be one."""
    if shape.stroke_width > MAX_STROKE_WIDTH:
        return (
            "it is a dot or a blob, not a line (its strokes are as thick as a third of its size). "
            "Draw the digit larger, with a line, or choose a thinner stroke."
        )
    if shape.coverage > MAX_COVERAGE:
        return (
            f"there is too much ink for a digit (it covers {shape.coverage:.0%} of the picture the model "
            f"sees; handwritten digits cover at most {MAX_COVERAGE:.0%}), like a scribble or a filled "
            "shape. Draw one digit with a few plain strokes."
        )
    if shape.flatness > MAX_FLATNESS:
        return (
            f"it is {shape.flatness:.1f} times wider than tall, like a dash or a horizontal line. "
            "Draw one digit, 0 to 9."
        )
    return None


def refuse_non_digit(pixels: np.ndarray) -> None:
    """Raise :class:`NotADigitError` when the ink in ``pixels`` (float ``(28, 28)``) is not digit-shaped."""
    problem = shape_problem(ink_shape(pixels))
    if problem is not None:
        raise NotADigitError(f"This does not look like a digit: {problem}")


def confidence_warning(confidence: float) -> str | None:
    """A warning for a prediction made with probability ``confidence``, or None when it is confident."""
    if confidence >= LOW_CONFIDENCE:
        return None
    return (
        f"Low confidence ({confidence:.0%}): the model is unsure, so this may not be a digit, or not "
        "a clear one. Read the prediction with care, or draw the digit again, larger and plainer."
    )
