"""How often the Draw page's novelty warning (:mod:`mnist_core.novelty`) fires, on digits and on non-digits.

Every image goes the way a drawing goes on the Draw page (a 280x280 canvas,
``infer.read(..., drawn=True)``, the shape rules first) and is read by the
quick default model (or, with ``--runs-dir`` and ``--run``, by saved runs)
with its novelty index, as shipped; beside it, in brackets, what the last
layer alone would have warned about (the first version). Digits: MNIST test
digits blown up onto the canvas, drawn template digits, small ones, ones
against the edges, font glyphs (the generators of ``not_a_digit_study.py``).
Non-digits: twelve capital letters and a "#" drawn as strokes (jittered,
120-250 px tall, brush 12-30 px), scribbles and random strokes. Printed:
for each set, how many images passed the shape rules and how many of those
were warned about.

  MNIST_DATA_DIR=/work/shared/data python scripts/novelty_check.py [--per-kind 40] [--model /tmp/quick.pt]
  MNIST_DATA_DIR=... python scripts/novelty_check.py --per-kind 20 --runs-dir checkpoints --run <id> ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import mnist_core  # noqa: F401  (before torch: it sets how OpenMP threads wait)

# isort: split
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import not_a_digit_study as study  # the drawing generators

from mnist_core import infer, novelty
from mnist_core.config import RunConfig, quick_default
from mnist_core.errors import ImageError
from mnist_core.runs import load_model, load_run

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
    "star": [[(0.5, 0.0), (0.8, 1.0), (0.0, 0.35), (1.0, 0.35), (0.2, 1.0), (0.5, 0.0)]],
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
    parser.add_argument("--runs-dir", type=Path, default=None, help="a checkpoints folder, with --run")
    parser.add_argument("--run", nargs="+", default=[], help="saved runs to check instead of the quick model")
    args = parser.parse_args()
    if args.run:
        for run_id in args.run:
            model, cfg = load_model(run_id, args.runs_dir)
            check(model, cfg, f"{load_run(run_id, args.runs_dir).name} ({run_id})", args.per_kind)
    else:
        cfg = quick_default().replace(seed=0)
        check(study.quick_model(args.model, 0), cfg, "the quick default model, seed 0", args.per_kind)


def check(model: Any, cfg: RunConfig, name: str, n: int) -> None:
    """Print, for each set, the share of the images read that were warned about (the last layer's alone)."""
    index = novelty.for_run(model, cfg)
    assert index is not None, "the data could not be loaded: set MNIST_DATA_DIR"
    rng = np.random.default_rng(0)
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
    dims = [len(f[0]) for f in index.features]
    print(f"== {name}: layers looked at {len(dims)} (features {dims}), {len(index.features[0])} references")
    for set_name, canvases in sets.items():
        xs = []
        for image in canvases:
            try:
                xs.append(infer.preprocess(image, drawn=True))
            except ImageError:
                continue  # refused by the shape rules: no prediction, no warning
        if not xs:
            print(f"{set_name:16s} read    0 of {len(canvases):4d}")
            continue
        x = torch.cat(xs)
        warned = (index.score(model, x) > index.threshold).float().mean().item()
        alone = (last_layer_score(index, model, x) > index.threshold).float().mean().item()
        print(f"{set_name:16s} read {len(xs):4d} of {len(canvases):4d}, warned {warned:6.1%} "
              f"(last layer alone {alone:6.1%})")


def last_layer_score(index: novelty.NoveltyIndex, model: Any, x: torch.Tensor) -> torch.Tensor:
    """The score of the last layer's input alone, as the first version of the check had it."""
    query, cal = novelty.features(model, x)[-1], index.calibration[-1]
    distance = novelty.distances(query, index.features[-1])
    return torch.searchsorted(cal, distance, right=True).float() / len(cal)


if __name__ == "__main__":
    main()
