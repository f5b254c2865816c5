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
  is not much wider than tall. A tap is a round dot: after framing, its
  "stroke" is as wide as a third to half of the 20 px box.

  Thick strokes alone do not make a dot, though: a digit drawn small (50-100
  px tall on the 280 px canvas) with the default 20 px brush, or with a
  30 px one, is framed to the same 20 px box, so its strokes measure 7-9.4 px
  there (loops that close up count as thick ink), as thick as a tap dragged
  a little (8-9.6 px). The difference is the direction: digits are taller
  than wide, a dragged tap or a smudge is round or wide. So a stroke width
  over :data:`THICK_STROKE_WIDTH` is refused only when the ink is at least as
  wide as tall (flatness 1 or more), and any shape over :data:`MAX_STROKE_WIDTH` (a
  plain tap measures 10-12) is a dot. The first version refused every stroke
  over 7 px, and with it 6.4% of small drawn digits, 5.8% of digits drawn
  with a 24-30 px brush and 3.4% of digits drawn against the canvas edge.

  With the thresholds below (measured 2026-12-05, existing blank, speck,
  several-digit and filled-shape checks included) it refuses 0.08% of the
  10,000 MNIST test digits, none of 1,000 drawn digits, 500 drawn with an
  8-12 px brush, 500 upright lines ("1") or 500 font glyphs, 0.8% of 500
  small digits with the 20 px brush (half of them the filled-shape check
  of ``infer``), 1.0% of small ones with an 8-30 px brush, 0.4% of 500
  with a 24-30 px brush, 1.0% of 500 against the canvas edges, and one of
  500 ellipses ("0"), while catching 99.4% of taps, every dot, 85% of
  scribbles and 69% of near-horizontal lines.
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
MAX_STROKE_WIDTH = 9.5  # px; a dot whatever its shape: a tap is 10-12, a dragged tap 8-9.6 (round ones)
THICK_STROKE_WIDTH = 7.0  # px, refused when as wide as tall; MNIST's median is 2.9, 99.9th percentile under 7
MAX_COVERAGE = 0.28  # mean ink of the 28x28 input; 3 of 10,000 MNIST test digits are above, most scribbles
MAX_FLATNESS = 2.5  # width / height of the ink's box; no MNIST test digit is even 2
LOW_CONFIDENCE = 0.5  # below this probability the prediction comes with a warning
RULE = (
    f"refuse when stroke width > {MAX_STROKE_WIDTH:g} px, or > {THICK_STROKE_WIDTH:g} px and as wide "
    f"as tall, or coverage > {MAX_COVERAGE:g} "
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


@dataclass(frozen=True)
class Problem:
    """Why an ink shape is not a digit's, and what to do on the canvas or with a photo."""

    what: str  # the end of the sentence "This does not look like a digit: ..."
    drawing: str
    photo: str

    def message(self, advice: str) -> str:
        return f"This does not look like a digit: {self.what} {advice}"


def shape_problem(shape: InkShape) -> Problem | None:
    """Why ``shape`` is not a digit's, or None when it may be one."""
    thick_and_round = shape.stroke_width > THICK_STROKE_WIDTH and shape.flatness >= 1  # a dragged tap
    if shape.stroke_width > MAX_STROKE_WIDTH or thick_and_round:
        return Problem(
            "it is a dot or a blob, not a line (its strokes are as thick as a third of its size).",
            "Draw the digit larger, with a line, or choose a thinner stroke.",
            "Photograph a digit written with a pen, filling most of the picture.",
        )
    if shape.coverage > MAX_COVERAGE:
        return Problem(
            f"there is too much ink for a digit (it covers {shape.coverage:.0%} of the picture the model "
            f"sees; handwritten digits cover at most {MAX_COVERAGE:.0%}), like a scribble or a filled "
            "shape.",
            "Draw one digit with a few plain strokes.",
            "Photograph one handwritten digit on plain paper.",
        )
    if shape.flatness > MAX_FLATNESS:
        return Problem(
            f"it is {shape.flatness:.1f} times wider than tall, like a dash or a horizontal line.",
            "Draw one digit, 0 to 9.",
            "Photograph one digit, 0 to 9.",
        )
    return None


def refuse_non_digit(pixels: np.ndarray) -> None:
    """Raise :class:`NotADigitError` when the ink in ``pixels`` (float ``(28, 28)``) is not digit-shaped."""
    problem = shape_problem(ink_shape(pixels))
    if problem is not None:
        drawing = problem.message(problem.drawing)
        raise NotADigitError(drawing, drawing=drawing, photo=problem.message(problem.photo))


def confidence_warning(confidence: float) -> str | None:
    """A warning for a prediction made with probability ``confidence``, or None when it is confident."""
    if confidence >= LOW_CONFIDENCE:
        return None
    return (
        f"Low confidence ({confidence:.0%}): the model is unsure, so this may not be a digit, or not "
        "a clear one. Read the prediction with care, or draw the digit again, larger and plainer."
    )
