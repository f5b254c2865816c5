"""Benchmark: our training engine against the blog's pipeline, and the machine's limit.

``python -m mnist_core.bench [--quick] [--repeats N] [--json PATH]``

Everything is measured in one run, on the same data (real MNIST when
``MNIST_DATA_DIR`` has it, else generated data of the same shape), with the
same thread count; each figure is the median over repeats, with min-max.

1. Seconds per epoch: our engine (:func:`mnist_core.train.train`, resident
   tensors, fused optimizer) against a reference written the way the blog did
   it (a torchvision dataset with per-sample ToImage/ToDtype/Normalize, a
   shuffling DataLoader, a plain loop with ``torch.optim.Adam``). Batch 1 is
   timed over a few thousand steps and extrapolated to an epoch.
2. The machine's limit: sustained float32 matmul GFLOP/s, turned into a lower
   bound on an epoch (training = 3 x the forward FLOPs per image).
3. Single-image inference end to end, RGBA canvas array -> probabilities.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import v2

from .config import RunConfig
from .data import NORMALIZATION, data_root, is_available, load_data
from .device import configure_math
from .infer import predict, preprocess
from .metrics import count_macs
from .models import build_model
from .synthetic import render_digit, write_dataset
from .train import train

MODELS = {"784-512-10": (512,), "784-1024-1024-10": (1024, 1024)}
BATCH_ONE_STEPS = 3000


def median_range(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def timed(fn: Callable[[], Any], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


# -- 1. training: ours against the reference ----------------------------------------
def ours_epoch_s(hidden: tuple[int, ...], batch: int, root: Path, steps: int | None) -> float:
    """One epoch of our engine on all 60k training images (no validation split)."""
    cfg = RunConfig(hidden=hidden, batch_size=batch, epochs=1, val_fraction=0.0)
    data = load_data(root=root, val_fraction=0.0)
    count = {"n": 0}

    def stop() -> bool:
        count["n"] += 1
        return steps is not None and count["n"] > steps

    start = time.perf_counter()
    train(cfg, data, should_stop=stop)
    elapsed = time.perf_counter() - start
    return elapsed if steps is None else elapsed / steps * math.ceil(len(data.train) / batch)


def reference_epoch_s(hidden: tuple[int, ...], batch: int, root: Path, steps: int | None) -> float:
    """The blog's way: per-sample transforms, a DataLoader, a plain Adam loop."""
    mean, std = NORMALIZATION["mnist"]
    transform = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize([mean], [std])])
    dataset = datasets.MNIST(str(root), train=True, download=False, transform=transform)
    loader = DataLoader(dataset, batch_size=batch, shuffle=True)
    model = build_model(RunConfig(hidden=hidden))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    start = time.perf_counter()
    for i, (x, y) in enumerate(loader):
        if steps is not None and i >= steps:
            break
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    elapsed = time.perf_counter() - start
    return elapsed if steps is None else elapsed / steps * len(loader)


def bench_training(root: Path, batches: list[int], repeats: int) -> list[dict[str, Any]]:
    rows = []
    for name, hidden in MODELS.items():
        for batch in batches:
            steps = BATCH_ONE_STEPS if batch == 1 else None
            ours = [ours_epoch_s(hidden, batch, root, steps) for _ in range(repeats)]
            ref = [reference_epoch_s(hidden, batch, root, steps) for _ in range(repeats)]
            rows.append({
                "model": name, "batch": batch, "ours_s": median_range(ours), "reference_s": median_range(ref),
                "speedup": statistics.median(ref) / statistics.median(ours),
                "ours_samples_per_s": 60_000 / statistics.median(ours),
                "extrapolated_from_steps": steps,
            })
    return rows


# -- 2. the machine's limit ------------------------------------------------------------
def matmul_gflops(size: int = 1024, repeats: int = 20) -> float:
    """Sustained float32 GFLOP/s of a square matmul (2 n^3 FLOPs each)."""
    configure_math("cpu")
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    times = timed(lambda: a @ b, repeats)
    return 2 * size**3 / statistics.median(times) / 1e9


def epoch_bound_s(hidden: tuple[int, ...], gflops: float, images: int = 60_000) -> float:
    """Training does ~3x the forward FLOPs (forward, grad of inputs, grad of weights)."""
    forward_flops = 2 * count_macs(build_model(RunConfig(hidden=hidden)))
    return 3 * forward_flops * images / (gflops * 1e9)


# -- 3. single-image inference ---------------------------------------------------------
def canvas_drawing(label: int = 3) -> np.ndarray:
    """A 280x280 RGBA canvas array with a digit in the alpha channel, as the app receives it."""
    glyph = render_digit(label, np.random.default_rng(0))
    from PIL import Image

    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[..., 3] = np.asarray(Image.fromarray(glyph).resize((280, 280)))
    return canvas


def bench_inference(repeats: int = 200) -> list[dict[str, Any]]:
    canvas = canvas_drawing()
    rows = []
    configs = {"MLP 784-512-10": RunConfig(), "CNN 32-64": RunConfig(model="cnn", hidden=(128,))}
    for name, cfg in configs.items():
        model = build_model(cfg).eval()
        for _ in range(10):
            predict(model, preprocess(canvas))
        total = timed(lambda m=model: predict(m, preprocess(canvas)), repeats)
        pre = timed(lambda: preprocess(canvas), repeats)
        x = preprocess(canvas)
        forward = timed(lambda m=model, x=x: predict(m, x), repeats)
        rows.append({
            "model": name,
            "end_to_end_ms": _percentiles(total), "preprocess_ms": _percentiles(pre),
            "predict_ms": _percentiles(forward),
        })
    return rows


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95))}


# -- driver ------------------------------------------------------------------------------
def dataset_root(tmp: Path) -> tuple[Path, str]:
    root = data_root()
    if is_available("mnist", root):
        return root, f"real MNIST in {root}"
    write_dataset(tmp, n_train=60_000, n_test=10_000)
    return tmp, "generated data of MNIST's shape (set MNIST_DATA_DIR for the real one)"


def report(results: dict[str, Any]) -> str:
    lines = [f"data: {results['data']}; threads: {results['threads']}; torch {results['torch']}", ""]
    lines.append(f"{'model':<18} {'batch':>5} {'ours s/epoch':>20} {'reference s/epoch':>20} {'speedup':>8}"
                 f" {'bound s':>8} {'ours/bound':>10}")
    for r in results["training"]:
        o, ref = r["ours_s"], r["reference_s"]
        bound = results["bound_s"][r["model"]]
        lines.append(
            f"{r['model']:<18} {r['batch']:>5} {o['median']:>8.2f} ({o['min']:.2f}-{o['max']:.2f})"
            f" {ref['median']:>8.2f} ({ref['min']:.2f}-{ref['max']:.2f}) {r['speedup']:>7.2f}x"
            f" {bound:>8.2f} {o['median'] / bound:>9.2f}x"
        )
    lines += ["", f"matmul: {results['gflops']:.0f} GFLOP/s float32", ""]
    for r in results["inference"]:
        e, p, f = r["end_to_end_ms"], r["preprocess_ms"], r["predict_ms"]
        lines.append(f"{r['model']:<16} canvas->probabilities p50 {e['p50']:.2f} ms p95 {e['p95']:.2f} ms "
                     f"(preprocess p50 {p['p50']:.2f} ms, predict p50 {f['p50']:.3f} ms)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mnist_core.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="repeats per measurement (median reported)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 128, 512])
    parser.add_argument("--quick", action="store_true", help="batch 64 only, 1 repeat: a smoke run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.repeats = [64], 1
    with tempfile.TemporaryDirectory() as tmp:
        root, described = dataset_root(Path(tmp))
        gflops = matmul_gflops()
        results = {
            "data": described, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "gflops": gflops,
            "bound_s": {name: epoch_bound_s(hidden, gflops) for name, hidden in MODELS.items()},
            "training": bench_training(root, args.batches, args.repeats),
            "inference": bench_inference(),
        }
    print(report(results))
    print(json.dumps(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
