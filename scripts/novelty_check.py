"""How often the Draw page's novelty warning (:mod:`mnist_core.novelty`) fires, on digits and on non-digits.

Every image goes the way a drawing goes on the Draw page (a 280x280 canvas,
``infer.read(..., drawn=True)``, the shape rules first) and is read by the
quick default model with its novelty index, as shipped. Digits: MNIST test
digits blown up onto the canvas, drawn template digits, small ones, ones
against the edges, font glyphs (the generators of ``not_a_digit_study.py``).
Non-digits: twelve capital letters and a "#" drawn as strokes (jittered,
120-250 px tall, brush 12-30 px), scribbles and random strokes. Printed:
for each set, how many images passed the shape rules and how many of those
were warned about.

  MNIST_DATA_DIR=/work/shared/data python scripts/novelty_check.py [--per-kind 40] [--model /tmp/quick.pt]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import mnist_core  # noqa: F401  (before torch: it sets how OpenMP threads wait)

# isort: split
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import not_a_digit_study as study  # the drawing generators

from mnist_core import infer, novelty
from mnist_core.config import quick_default
from mnist_core.errors import ImageError

LETTERS = {  # strokes in a unit box (x right, y down)
    "A": [[(0.0, 1.0), (0.5, 0.0), (1.0, 1.0)], [(0.2, 0.6), (0.8, 0.6)]],
    "E": [[(1.0, 0.0), (0.0, 0.0), (0.0, 1.0), (1.0, 1.0)], [(0.0, 0.5), (0.8, 0.5)]],
    "F": [[(1.0, 0.0), (0.0, 0.0), (0.0, 1.0)], [(0.0, 0.5), (0.8, 0.5)]],
    "H": [[(0.0, 0.0), (0.0, 1.0)], [(1.0, 0.0), (1.0, 1.0)], [(0.0, 0.5), (1.0, 0.5)]],
    "K": [[(0.0, 0.0), (0.0, 1.0)], [(1.0, 0.0), (0.0, 0.55), (1.0, 1.0)]],
    "M": [[(0.0, 1.0), (0.0, 0.0), (0.5, 0.6), (1.0, 0.0), (1.0, 1.0)]],
    "N": [[(0.0, 1.0), (0.0, 0.0), (1.0, 1.0), (1.0, 0.0)]],
    "R": [[(0.0, 1.0), (0.0, 0.0), (0.8, 0.05), (0.9, 0.3), (0.0, 0.5), (1.0, 1.0)]],
    "W": [[(0.0, 0.0), (0.25, 1.0), (0.5, 0.4), (0.75, 1.0), (1.0, 0.0)]],
    "X": [[(0.0, 0.0), (1.0, 1.0)], [(1.0, 0.0), (0.0, 1.0)]],
    "Y": [[(0.0, 0.0), (0.5, 0.5), (1.0, 0.0)], [(0.5, 0.5), (0.5, 1.0)]],
    "#": [[(0.35, 0.0), (0.25, 1.0)], [(0.75, 0.0), (0.65, 1.0)], [(0.0, 0.33), (1.0, 0.33)],
          [(0.0, 0.67), (1.0, 0.67)]],
}  # fmt: skip


def letter(name: str, rng: np.random.Generator) -> np.ndarray:
    height = float(rng.uniform(120, 250))
    width = height * float(rng.uniform(0.6, 0.95))
    top, left = float(rng.uniform(10, 270 - height)), float(rng.uniform(10, max(11.0, 270 - width)))
    strokes = [
        [(left + (x + rng.normal(0, 0.03)) * width, top + (y + rng.normal(0, 0.03)) * height)
         for x, y in stroke]
        for stroke in LETTERS[name]
    ]
    return study.stroke_canvas(strokes, float(rng.uniform(12, 30)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-kind", type=int, default=40, help="each letter's images (x5: digit sets)")
    parser.add_argument("--model", type=Path, default=None, help="a quick model's weights (else trained)")
    args = parser.parse_args()
    model = study.quick_model(args.model, 0)
    index = novelty.for_run(model, quick_default().replace(seed=0))
    assert index is not None, "the data could not be loaded: set MNIST_DATA_DIR"
    rng = np.random.default_rng(0)
    n = args.per_kind
    images, _ = study.mnist_test(10 * n)
    sets = {
        "MNIST test": [study.blown_up(im) for im in images],
        "drawn digits": [study.drawn_digit(i % 10, rng) for i in range(5 * n)],
        "small drawn": [study.drawn_digit(i % 10, rng, small=True) for i in range(5 * n)],
        "near the edges": [
            study.drawn_digit(i % 10, rng, heights=(50, 260), brushes=(8, 30), edge=True)
            for i in range(5 * n)
        ],
        "font glyphs": [study.blown_up(g) for g in study.synthetic.make_digits(5 * n, seed=1)[0]],
        **{f"letter {k}": [letter(k, rng) for _ in range(n)] for k in LETTERS},
        "scribbles": [study.scribble(rng) for _ in range(5 * n)],
        "random strokes": [study.random_strokes(rng) for _ in range(5 * n)],
    }
    print(f"threshold {index.threshold:.3f} (K={novelty.K}, {len(index.features)} references)")
    for name, canvases in sets.items():
        read = warned = 0
        for image in canvases:
            try:
                reading = infer.read(model, image, drawn=True, novelty=lambda: index)
            except ImageError:
                continue  # refused by the shape rules: no prediction, no warning
            read += 1
            warned += "does not look much like" in ((reading.prediction and reading.prediction.warning) or "")
        share = warned / max(read, 1)
        print(f"{name:16s} read {read:4d} of {len(canvases):4d}, warned {warned:4d} ({share:.1%})")


if __name__ == "__main__":
    main()
