"""Benchmark: our training engine against the blog's pipeline, and the machine's limit.

``python -m benchmarks [--quick] [--parts N ...] [--repeats N] [--json PATH]``

Everything is measured in one run, on the same data (real MNIST when
``MNIST_DATA_DIR`` has it, else generated data of the same shape), with the
same thread count; each figure is the median over repeats, with min-max.

1. Seconds per epoch: our engine (:func:`mnist_core.train.train`, resident
   tensors, fused optimizer) against a reference written the way the blog did
   it (a torchvision dataset with per-sample ToImage/ToDtype/Normalize, a
   shuffling DataLoader, a plain loop with ``torch.optim.Adam``, PyTorch's
   default math settings). Batch 1 is timed over a few thousand steps and
   extrapolated to an epoch, and its step is split into parts.
2. The machine's limit: sustained float32 matmul GFLOP/s, turned into a lower
   bound on an epoch (training = 3 x the forward FLOPs per image), and the
   memory traffic of the epoch's Adam steps, which no matmul speed removes.
3. Single-image inference end to end, RGBA canvas array -> probabilities.
4. Batch inference throughput over the test set (images/s).
5. Time to 97% test accuracy (default MLP) and to 99% (CNN), data loading
   included.
6. The live view's overhead: the same run with and without the Train page's
   progress wiring.
7. Peak memory of one run, and memory after each of 20 consecutive runs.
8-12. What the user waits on, each against a baseline in the same run
   (:mod:`benchmarks.waits`): the quick model from start to a saved run,
   CNN and MLP-5 training per epoch against the reference, CNN test-set
   throughput, a correction end to end, the study without batch-1 rows
   (projected from timed steps of each row, stated as such).
13. The per-layer statistics' cost: whole trainings (one epoch, batch 64)
   with and without them, in turns (:mod:`benchmarks.layer_stats`).

Parts 1 and 2 run on a CUDA GPU when there is one, with our data resident
there and the reference copying each batch over; parts 3 and 4 on the CPU;
parts 5-7 time whole runs (:mod:`benchmarks.whole_runs`) on a run's default
device. ``--parts`` picks parts by number; ``--quick`` is parts 1-4 at
batch 64, one repeat.
"""

from __future__ import annotations

import argparse
import json
import math
import os
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
from PIL import Image, ImageDraw
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import v2

from mnist_core import fast
from mnist_core.config import RunConfig
from mnist_core.data import NORMALIZATION, data_root, is_available, load_data, load_split
from mnist_core.device import resolve_device, synchronize
from mnist_core.fast.backprop import PlainMLP, back_through
from mnist_core.fast.precision import configure_math
from mnist_core.fast.step import buffered_update
from mnist_core.infer import predict, predict_batch, preprocess
from mnist_core.metrics import count_macs, count_parameters
from mnist_core.models import build_model
from mnist_core.train import make_optimizer, train
from tests.support.synthetic import render_digit, write_dataset

from .report import report
from .whole_runs import live_view_overhead, median_range, memory_profile, time_to_accuracy

MODELS = {"784-512-10": (512,), "784-1024-1024-10": (1024, 1024)}
BATCH_ONE_STEPS = 3000
WARM_UP_STEPS = 200  # untimed steps before an extrapolated measurement
TORCH_DEFAULT_PRECISION = "highest"  # torch.get_float32_matmul_precision() in a fresh process
ADAM_BYTES_PER_PARAM = 28  # a fused Adam step reads weight, gradient, both moments; writes three back
INFERENCE_MODELS = {"MLP 784-512-10": RunConfig(), "CNN 32-64": RunConfig(model="cnn", hidden=(128,))}
# Part 5's targets: the default MLP to 97%, the CNN of part 3 to 99% (test accuracy).
ACCURACY_TARGETS = {"mlp": (RunConfig(), 0.97), "cnn": (RunConfig(model="cnn", hidden=(128,)), 0.99)}
PARTS = {
    1: "training", 2: "bound", 3: "inference", 4: "throughput", 5: "accuracy", 6: "overhead", 7: "memory",
    8: "quick model", 9: "CNN training", 10: "CNN throughput", 11: "correction", 12: "study",
    13: "layer stats",
}
QUICK_PARTS = (1, 2, 3, 4)
WAIT_PARTS = (8, 9, 10, 11, 12)  # what the user waits on (:mod:`benchmarks.waits`)


def timed(fn: Callable[[], Any], repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn``."""
    return timed_in_turn({"fn": fn}, repeats)["fn"]


def timed_in_turn(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each call of each of ``fns``, called in turn ``repeats`` times.

    Taking turns, every function meets the same moments of a host whose speed
    drifts: blocks of one function after another made a half (preprocessing)
    slower than the whole it is part of.
    """
    out: dict[str, list[float]] = {key: [] for key in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            out[key].append(time.perf_counter() - start)
    return out


# -- 1. training: ours against the reference ----------------------------------------
def bench_device() -> torch.device:
    """Where parts 1 and 2 run: a CUDA GPU when there is one (data resident there), else the CPU."""
    return resolve_device("auto")


def model_config(model: tuple[int, ...] | RunConfig) -> RunConfig:
    """The configuration of a row: an MLP's hidden widths, or a whole configuration (a CNN's)."""
    return model if isinstance(model, RunConfig) else RunConfig(hidden=model)


def ours_epoch_s(
    hidden: tuple[int, ...] | RunConfig, batch: int, root: Path, steps: int | None, amp: bool = False
) -> float:
    """One epoch of our engine on all 60k training images (no validation split); ``amp``: bfloat16.

    ``hidden``: an MLP's widths, or the configuration of any model (a CNN).

    With ``steps``, the epoch is extrapolated from ``steps`` steps timed after
    :data:`WARM_UP_STEPS` untimed ones, so one-off costs (building the
    model, the first kernel calls) are not multiplied by the extrapolation.
    """
    cfg = model_config(hidden).replace(batch_size=batch, epochs=1, val_fraction=0.0, amp=amp)
    data = load_data(root=root, val_fraction=0.0)
    per_epoch = math.ceil(len(data.train) / batch)
    warm = _warm_up(steps, per_epoch)
    count, clock = {"n": 0}, {"start": 0.0, "end": 0.0}

    def stop() -> bool:  # polled before each step
        count["n"] += 1
        if count["n"] == warm + 1:
            clock["start"] = time.perf_counter()
        if steps is not None and count["n"] > warm + steps:
            clock["end"] = time.perf_counter()
            return True
        return False

    start = time.perf_counter()
    train(cfg, data, should_stop=stop)
    if steps is None:
        return time.perf_counter() - start
    timed_steps = min(steps, count["n"] - warm)  # fewer when the epoch is shorter than the ask
    end = clock["end"] or time.perf_counter()
    return (end - clock["start"]) / max(timed_steps, 1) * per_epoch


def _warm_up(steps: int | None, per_epoch: int) -> int:
    """Untimed steps before ``steps`` timed ones: :data:`WARM_UP_STEPS`, or what an epoch leaves room for."""
    return 0 if steps is None else max(0, min(WARM_UP_STEPS, per_epoch - steps - 1))


def reference_epoch_s(
    hidden: tuple[int, ...] | RunConfig, batch: int, root: Path, steps: int | None
) -> float:
    """The blog's way: per-sample transforms, a DataLoader, a plain Adam loop, PyTorch's defaults.

    The blog set no math options, so the reference runs on PyTorch's default
    float32 matmul precision ("highest"), whatever our engine set before it,
    and its model is built as plain PyTorch lays it out (the fast path off).
    """
    torch.set_float32_matmul_precision(TORCH_DEFAULT_PRECISION)
    device = bench_device()
    loader = reference_loader(root, batch)
    fast.set_enabled(False)
    try:
        model = build_model(model_config(hidden)).to(device)
    finally:
        fast.set_enabled(None)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    warm = _warm_up(steps, len(loader))
    start = time.perf_counter()
    for i, (x, y) in enumerate(loader):
        if steps is not None and i == warm:
            synchronize(device)
            start = time.perf_counter()  # as for ours: one-off costs are not extrapolated
        if steps is not None and i >= warm + steps:
            break
        x, y = x.to(device), y.to(device)  # each batch copied to the device, as the blog's loop did
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    synchronize(device)
    elapsed = time.perf_counter() - start
    return elapsed if steps is None else elapsed / steps * len(loader)


def reference_loader(root: Path, batch: int) -> DataLoader:
    """The blog's data path: torchvision's MNIST, per-sample ToImage/ToDtype/Normalize, shuffled."""
    mean, std = NORMALIZATION["mnist"]
    transform = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize([mean], [std])])
    dataset = datasets.MNIST(str(root), train=True, download=False, transform=transform)
    return DataLoader(dataset, batch_size=batch, shuffle=True)


def batch_one_parts(hidden: tuple[int, ...], root: Path, steps: int = 300) -> dict[str, dict[str, float]]:
    """Where a batch-1 step goes: median ms of each part, for our engine and for the reference.

    Forward, backward and the optimizer step are timed one image at a time,
    each side with its own math setting, optimizer and backward (ours:
    :func:`configure_math` for batch 1, :func:`make_optimizer` and the
    hand-derived :class:`PlainMLP` step, whose backward includes the loss,
    with the engine's update (:func:`mnist_core.fast.step.buffered_update`: the
    fused kernel called directly, its state kept out of the subnormal range);
    the reference: PyTorch's defaults, a plain Adam, autograd with the loss
    in the forward and zero_grad in the backward). The reference's "data" is
    one item of its DataLoader.
    """
    device = bench_device()
    x_all, y_all = (t.to(device) for t in load_split("mnist", True, root).tensors())
    out: dict[str, dict[str, float]] = {}
    for side in ("ours", "reference"):
        cfg = RunConfig(hidden=hidden, batch_size=1)
        model = build_model(cfg).to(device).train()
        if side == "ours":
            configure_math(device.type, batch_size=1)
            optimizer = make_optimizer(cfg, model)
        else:
            torch.set_float32_matmul_precision(TORCH_DEFAULT_PRECISION)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        forward, backward = _ours_halves(model) if side == "ours" else _reference_halves(model, optimizer)
        update = buffered_update(optimizer) if side == "ours" else optimizer.step
        parts: dict[str, list[float]] = {"forward": [], "backward": [], "optimizer": []}
        warm_up = 50
        for i in range(warm_up + steps):
            x, y = x_all[i : i + 1], y_all[i : i + 1]
            t0 = time.perf_counter()
            carried = forward(x, y)
            synchronize(device)
            t1 = time.perf_counter()
            backward(carried, y)
            synchronize(device)
            t2 = time.perf_counter()
            update()
            synchronize(device)
            t3 = time.perf_counter()
            if i >= warm_up:
                for key, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2), strict=True):
                    parts[key].append(seconds)
        out[side] = {key: statistics.median(v) * 1000 for key, v in parts.items()}
    items = iter(reference_loader(root, 1))
    next(items)
    out["reference"]["data"] = statistics.median(timed(lambda: next(items), steps)) * 1000
    return out


_Halves = tuple[Callable[[torch.Tensor, torch.Tensor], Any], Callable[[Any, torch.Tensor], Any]]


def _ours_halves(model: torch.nn.Module) -> _Halves:
    """Our engine's forward and backward of a plain MLP (hand-derived; the loss is in the backward)."""
    mlp = PlainMLP.of(model)
    assert mlp is not None, "our engine trains these MLPs by hand"
    return (lambda x, _y: mlp.forward(x)), mlp.backward


def _reference_halves(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> _Halves:
    """The blog's forward (with the loss) and backward (with zero_grad), through autograd."""

    def backward(loss: torch.Tensor, _y: torch.Tensor) -> None:
        optimizer.zero_grad()
        loss.backward()

    return (lambda x, y: F.cross_entropy(model(x), y)), backward


def bench_training(root: Path, batches: list[int], repeats: int, bf16: bool = False) -> list[dict[str, Any]]:
    """Part 1's rows; with ``bf16``, our engine once more in mixed precision (``RunConfig.amp``)."""
    rows = []
    for name, hidden in MODELS.items():
        for batch in batches:
            steps = BATCH_ONE_STEPS if batch == 1 else None
            ours, ref, mixed = [], [], []
            for _ in range(repeats):  # alternated, so a slow spell of a shared host hits every side
                ours.append(ours_epoch_s(hidden, batch, root, steps))
                ref.append(reference_epoch_s(hidden, batch, root, steps))
                if bf16:
                    mixed.append(ours_epoch_s(hidden, batch, root, steps, amp=True))
            rows.append({
                "model": name, "batch": batch, "ours_s": median_range(ours), "reference_s": median_range(ref),
                "speedup": statistics.median(ref) / statistics.median(ours),
                "ours_samples_per_s": 60_000 / statistics.median(ours),
                "extrapolated_from_steps": steps,
            })
            if batch == 1:
                rows[-1]["parts_ms"] = batch_one_parts(hidden, root)
            if mixed:
                rows[-1]["ours_bf16_s"] = median_range(mixed)
    return rows


# -- 2. the machine's limit ------------------------------------------------------------
def matmul_gflops(
    size: int = 1024, bursts: int = 10, per_burst: int = 5, dtype: torch.dtype = torch.float32
) -> float:
    """Sustained GFLOP/s of a square matmul (2 n^3 FLOPs each) in ``dtype``: the best of ``bursts``.

    Each burst times ``per_burst`` matmuls back to back (sustained, not one
    lucky call); the best burst is the machine's limit, since a busy
    neighbour can only make a burst slower. (A median under load once gave
    96 GFLOP/s where the quiet machine does 400+, and every "ours/bound"
    ratio came out flattering.) Bursts of torch's ``a @ b`` and of the
    engine's product (:func:`~mnist_core.fast.backprop.back_through`, oneDNN's
    kernel on a CPU) take turns, and the best of either counts: the bound
    is the fastest matmul this torch has, not just the one we use.
    """
    device = bench_device()
    configure_math(device.type)
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))

    def bursts_of(product: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        def burst() -> None:
            for _ in range(per_burst):
                product(a, b)
            synchronize(device)

        return burst

    products = {"torch": bursts_of(torch.mm), "engine": bursts_of(back_through)}
    for burst in products.values():
        burst()  # warm-up
    seconds = timed_in_turn(products, bursts)
    return 2 * size**3 * per_burst / min(min(s) for s in seconds.values()) / 1e9


def copy_gb_s(nbytes: int, bursts: int = 10, per_burst: int = 5) -> float:
    """Best sustained memory traffic, GB/s read + written, copying between two buffers of ``nbytes`` in all.

    Sized like an optimizer's working set, this says whether that set is
    served from the caches or from main memory, and how fast.
    """
    device = bench_device()
    src = torch.ones(max(1, nbytes // 8), device=device)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)

    def burst() -> None:
        for _ in range(per_burst):
            dst.copy_(src)
        synchronize(device)

    return 2 * src.nbytes * per_burst / min(timed(burst, bursts)) / 1e9


def machine_limits(bf16: bool = False) -> dict[str, Any]:
    """Float32 matmul GFLOP/s ("gflops"), the copy speed of each model's Adam working set in GB/s
    ("adam_gb_s": 16 bytes a parameter: weights, gradients, two moments), and with ``bf16`` the
    bfloat16 matmul's GFLOP/s ("gflops_bf16"). Part 1 measures them before and after training
    and keeps the best.
    """
    limits: dict[str, Any] = {"gflops": matmul_gflops()}
    limits["adam_gb_s"] = {name: copy_gb_s(16 * parameter_count(h)) for name, h in MODELS.items()}
    if bf16:
        limits["gflops_bf16"] = matmul_gflops(dtype=torch.bfloat16)
    return limits


def parameter_count(hidden: tuple[int, ...]) -> int:
    return count_parameters(build_model(RunConfig(hidden=hidden)))


def optimizer_floor_s(hidden: tuple[int, ...], batch: int, gb_s: float, images: int = 60_000) -> float:
    """The memory traffic of an epoch's Adam steps alone, at ``gb_s``: a floor the matmul bound ignores.

    Each step reads every weight, its gradient and both moments, and writes
    three of them back (:data:`ADAM_BYTES_PER_PARAM` bytes per parameter),
    however small the batch.
    """
    return math.ceil(images / batch) * ADAM_BYTES_PER_PARAM * parameter_count(hidden) / (gb_s * 1e9)


def epoch_bound_s(hidden: tuple[int, ...], gflops: float, images: int = 60_000) -> float:
    """Training does ~3x the forward FLOPs (forward, grad of inputs, grad of weights)."""
    forward_flops = 2 * count_macs(build_model(RunConfig(hidden=hidden)))
    return 3 * forward_flops * images / (gflops * 1e9)


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


# -- 5. time to accuracy -------------------------------------------------------------------
def bench_accuracy(root: Path, which: list[str], max_epochs: int) -> list[dict[str, Any]]:
    """Part 5 for the models in ``which`` (keys of :data:`ACCURACY_TARGETS`); one run each (minutes)."""
    return [time_to_accuracy(ACCURACY_TARGETS[k][0], root, ACCURACY_TARGETS[k][1], max_epochs) for k in which]


# -- driver ------------------------------------------------------------------------------
def dataset_root(tmp: Path) -> tuple[Path, str]:
    root = data_root()
    if is_available("mnist", root):
        return root, f"real MNIST in {root}"
    write_dataset(tmp, n_train=60_000, n_test=10_000)
    return tmp, "generated data of MNIST's shape (set MNIST_DATA_DIR for the real one)"


def _describe(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def _load_average() -> float | None:
    """The machine's 1-minute load average (None where the OS has none): shared machines skew timings."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", type=int, nargs="+", choices=sorted(PARTS),
                        help="parts to run, by number (default: all; with --quick: 1-4)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per measurement (median reported)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 128, 512])
    parser.add_argument("--bf16", action="store_true",
                        help="part 1: also time our engine in mixed precision (bfloat16 products), "
                        "against a bfloat16 matmul bound too")
    parser.add_argument("--quick", action="store_true", help="parts 1-4, batch 64, 1 repeat: a smoke run")
    parser.add_argument("--accuracy-models", nargs="+", choices=sorted(ACCURACY_TARGETS),
                        default=sorted(ACCURACY_TARGETS), help="part 5: which targets to time")
    parser.add_argument("--max-epochs", type=int, default=5, help="part 5: give up after this many epochs")
    parser.add_argument("--memory-runs", type=int, default=20, help="part 7: consecutive runs in one process")
    parser.add_argument("--steps", type=int, default=100,
                        help="parts 9 and 12: training steps timed per row, extrapolated to its epochs")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.repeats = [64], 1
    if args.parts is None:
        args.parts = list(QUICK_PARTS if args.quick else PARTS)
    return args


def run_parts(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Run the selected parts on the data in ``root``; the results keyed by part name."""
    parts = set(args.parts)
    results: dict[str, Any] = {}
    if parts & {1, 2}:
        bf16 = args.bf16 and 1 in parts
        limits = [machine_limits(bf16)]
        if 1 in parts:
            results["training"] = bench_training(root, args.batches, args.repeats, bf16)
            limits.append(machine_limits(bf16))  # a slow minute at the start must not lower the bound
        bounds = [("gflops", "bound_s")] + ([("gflops_bf16", "bound_bf16_s")] if bf16 else [])
        for key, bound in bounds:
            results[f"{key}_measured"] = [limit[key] for limit in limits]
            gflops = results[key] = max(results[f"{key}_measured"])
            results[bound] = {name: epoch_bound_s(hidden, gflops) for name, hidden in MODELS.items()}
        results["adam_gb_s_measured"] = [limit["adam_gb_s"] for limit in limits]  # how far the host drifted
        results["adam_gb_s"] = {name: max(limit["adam_gb_s"][name] for limit in limits) for name in MODELS}
        results["adam_bytes_per_param"] = ADAM_BYTES_PER_PARAM
        for row in results.get("training", []):
            gb_s = results["adam_gb_s"][row["model"]]
            row["optimizer_floor_s"] = optimizer_floor_s(MODELS[row["model"]], row["batch"], gb_s)
    if 3 in parts:
        results["inference"] = bench_inference()
    if 4 in parts:
        results["throughput"] = bench_throughput(root, max(args.repeats, 5))
    if 5 in parts:
        results["accuracy"] = bench_accuracy(root, args.accuracy_models, args.max_epochs)
    if 6 in parts:
        results["overhead"] = live_view_overhead(RunConfig(), root, args.repeats)
    if 7 in parts:
        results["memory"] = memory_profile(RunConfig(epochs=1), root, args.memory_runs)
    if 13 in parts:
        from .layer_stats import layer_stats_overhead

        results["layer_stats"] = layer_stats_overhead(root, repeats=max(args.repeats, 5))
    if parts & set(WAIT_PARTS):
        from .waits import run_waits  # here: the waits reuse this module's epoch timers

        results |= run_waits(sorted(parts & set(WAIT_PARTS)), root, args.repeats, args.steps)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root, described = dataset_root(Path(tmp))
        results = {"data": described, "device": _describe(bench_device()),
                   "threads": torch.get_num_threads(), "torch": torch.__version__,
                   "parts": sorted(args.parts), "load_average_start": _load_average()}
        results |= run_parts(args, root)
        results["load_average_end"] = _load_average()
    print(report(results))
    print(json.dumps(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
