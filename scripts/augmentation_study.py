"""Which quick model reads drawings best: with or without augmentation, or a cheaper variant? (measurement)

Trains ``quick_default()`` and its variants (:data:`VARIANTS`: augmentation
on, other channels and learning rates) on the same data and seeds, then scores each model on
  * the MNIST test set, and
  * "drawn" digits: glyphs rendered by ``synthetic.render_digit`` (other
    shapes and stroke widths than MNIST's handwriting), blown up onto a
    280x280 transparent canvas the way streamlit-drawable-canvas returns a
    drawing, and sent through ``infer.preprocess`` like a real drawing.

Usage: MNIST_DATA_DIR=../shared/data python scripts/augmentation_study.py [--seeds 0 1] [--drawn 1000]
       [--variants default c16-32-lr3e-3]
Prints one JSON line per model and a median summary per variant. Training
times are wall seconds: compare them only within one quiet run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from mnist_core.config import quick_default
from mnist_core.data import load_data
from mnist_core.infer import predict_batch, preprocess
from mnist_core.metrics import evaluate
from mnist_core.train import train

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support: generated digits
from tests.support.synthetic import make_digits

# Changes to quick_default() compared in one run; "default" is quick_default() itself (CNN 8-32, lr 5e-3).
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "augment": {"augment": True},
    "c16-32-lr3e-3": {"cnn_channels": (16, 32), "lr": 3e-3},  # the quick default until issue 28
    "c8-32-lr3e-3": {"lr": 3e-3},
    "c8-16": {"cnn_channels": (8, 16)},
    "c12-24": {"cnn_channels": (12, 24)},
    # Batch 256 (seeds 0-2: test 98.48/98.63/98.62% at 7e-3, 98.55/98.73/98.55% at 1e-2, drawn 77.7-83.0%)
    # saved 2% of a whole run's CPU time (one thread): not worth 0.16 points.
    "b256-lr7e-3": {"batch_size": 256, "lr": 7e-3},
    "b256-lr1e-2": {"batch_size": 256, "lr": 1e-2},
}


def drawn_digits(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rendered glyphs as canvas drawings (black ink in alpha), preprocessed like the app does."""
    images, labels = make_digits(n, seed)
    inputs = []
    for img in images:
        big = np.asarray(Image.fromarray(img).resize((280, 280), Image.Resampling.BILINEAR))
        canvas = np.zeros((280, 280, 4), np.uint8)
        canvas[..., 3] = big  # RGB stays 0: the canvas' black stroke on transparent
        inputs.append(preprocess(canvas))
    return torch.cat(inputs), torch.from_numpy(labels.astype(np.int64))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--drawn", type=int, default=1000)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["default", "augment"])
    args = parser.parse_args()
    x_drawn, y_drawn = drawn_digits(args.drawn, seed=123)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in args.variants}
    for seed in args.seeds:
        for name in args.variants:
            cfg = quick_default().replace(**VARIANTS[name], seed=seed)
            data = load_data(cfg.dataset, cfg.val_fraction, cfg.seed)
            start = time.perf_counter()
            result = train(cfg, data)
            seconds = time.perf_counter() - start
            x_test, y_test = data.test.tensors()
            test_acc = evaluate(result.model, x_test, y_test).accuracy
            drawn_acc = (predict_batch(result.model, x_drawn).argmax(1) == y_drawn).float().mean().item()
            row = {"seed": seed, "variant": name, "config": cfg.label(), "test_accuracy": test_acc,
                   "drawn_accuracy": drawn_acc, "train_s": seconds}
            results[name].append(row)
            print(json.dumps(row), flush=True)
    for name, rows in results.items():
        keys = ("test_accuracy", "drawn_accuracy", "train_s")
        med = {k: statistics.median(r[k] for r in rows) for k in keys}
        print(f"{name:8}  median over {len(rows)} seeds: test {med['test_accuracy']:.2%} "
              f"(min {min(r['test_accuracy'] for r in rows):.2%})  drawn {med['drawn_accuracy']:.2%}  "
              f"train {med['train_s']:.1f} s")


if __name__ == "__main__":
    main()
