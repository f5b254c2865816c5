"""Parts 3 and 4: single-image inference from a canvas drawing, and test-set throughput."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from mnist_core.config import RunConfig
from mnist_core.data import load_split
from mnist_core.fast.precision import configure_math
from mnist_core.infer import predict, predict_batch, preprocess
from mnist_core.models import build_model
from tests.support.synthetic import render_digit

from .timing import timed, timed_in_turn
from .training import TORCH_DEFAULT_PRECISION
from .whole_runs import median_range

INFERENCE_MODELS = {"MLP 784-512-10": RunConfig(), "CNN 32-64": RunConfig(model="cnn", hidden=(128,))}


# -- 3. single-image inference ---------------------------------------------------------
# A "3" as mouse strokes on the 280x280 canvas.
THREE = ((90, 70), (140, 50), (190, 80), (170, 130), (130, 140), (185, 170), (190, 220), (140, 240),
         (85, 215))


def canvas_drawing(points: tuple[tuple[int, int], ...] = THREE, width: int = 20) -> np.ndarray:
    """A 280x280 RGBA array as the Draw page's canvas returns it.

    Black strokes ``width`` px wide (the page's default) on a transparent
    background, so the drawing is in the alpha channel; edges antialiased
    (drawn at twice the size and halved).
    """
    big = Image.new("L", (560, 560), 0)
    ImageDraw.Draw(big).line([(2 * x, 2 * y) for x, y in points], fill=255, width=2 * width, joint="curve")
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[..., 3] = np.asarray(big.reduce(2))
    return canvas


def scan_image(label: int = 3) -> np.ndarray:
    """A 280x280 gray photo-like digit, the harder input: dark ink, unevenly lit paper, noise everywhere."""
    rng = np.random.default_rng(0)
    glyph = Image.fromarray(render_digit(label, rng)).resize((280, 280), Image.Resampling.BILINEAR)
    glyph = np.asarray(glyph, dtype=np.float64)
    light = 190 + 30 * np.linspace(0, 1, 280)[None, :]  # brighter towards the right
    photo = light - 0.6 * glyph + rng.normal(0, 4, (280, 280))
    return np.clip(photo, 1, 254).astype(np.uint8)


def bench_inference(repeats: int = 200) -> list[dict[str, Any]]:
    """Part 3: a canvas drawing to probabilities, and its two halves; a noisy scan beside it, all in turn.

    Runs under PyTorch's default math setting, which a process keeps until
    it first trains (:mod:`mnist_core.fast.precision`), as the Draw page
    predicts in an app that has not trained.
    """
    torch.set_float32_matmul_precision(TORCH_DEFAULT_PRECISION)
    canvas, scan = canvas_drawing(), scan_image()
    rows = []
    for name, cfg in INFERENCE_MODELS.items():
        model = build_model(cfg).eval()
        for _ in range(10):
            predict(model, preprocess(canvas))
            predict(model, preprocess(scan))
        x = preprocess(canvas)
        seconds = timed_in_turn({
            "end_to_end_ms": lambda m=model: predict(m, preprocess(canvas)),
            "preprocess_ms": lambda: preprocess(canvas),
            "predict_ms": lambda m=model, x=x: predict(m, x),
            "scan_end_to_end_ms": lambda m=model: predict(m, preprocess(scan)),
        }, repeats)
        rows.append({"model": name, **{key: _percentiles(v) for key, v in seconds.items()}})
    return rows


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95))}


# -- 4. batch inference throughput -------------------------------------------------------
def bench_throughput(root: Path, repeats: int, batch: int = 1000) -> list[dict[str, Any]]:
    """Images per second classifying the whole test set with :func:`predict_batch`, ``batch`` at a time.

    The models are untrained (the arithmetic does not depend on the weights);
    the test set is loaded before the clock starts.
    """
    configure_math("cpu")
    x, _ = load_split("mnist", False, root).tensors()
    rows = []
    for name, cfg in INFERENCE_MODELS.items():
        model = build_model(cfg).eval()

        def run(m: torch.nn.Module = model) -> None:
            for i in range(0, len(x), batch):
                predict_batch(m, x[i : i + batch])

        run()  # warm-up
        seconds = timed(run, repeats)
        rows.append({
            "model": name, "images": len(x), "batch": batch, "seconds": median_range(seconds),
            "images_per_s": len(x) / statistics.median(seconds),
        })
    return rows
