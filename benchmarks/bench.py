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
   CNN and MLP-5 training per epoch against the reference (and MLP-5 and
   LeNet-5 trained whole as the blog did: test accuracy against its), CNN test-set
   throughput, a correction end to end, the study without batch-1 rows
   (projected from timed steps of each row, stated as such).
13. The per-layer statistics' cost: whole trainings (one epoch, batch 64)
   with and without them, in turns (:mod:`benchmarks.layer_stats`).

Parts 1 and 2 run on a CUDA GPU when there is one, with our data resident
there and the reference copying each batch over; parts 3 and 4 on the CPU;
parts 5-7 time whole runs (:mod:`benchmarks.whole_runs`) on a run's default
device. ``--parts`` picks parts by number; ``--quick`` is parts 1-4 at
batch 64, one repeat.

The parts live by concern: :mod:`benchmarks.training` (1), :mod:`benchmarks.limits` (2),
:mod:`benchmarks.inference` (3, 4), :mod:`benchmarks.whole_runs` (5-7),
:mod:`benchmarks.waits` (8-12), :mod:`benchmarks.layer_stats` (13); this module is the driver.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from mnist_core.config import RunConfig
from mnist_core.data import data_root, is_available
from tests.support.synthetic import write_dataset

from .inference import INFERENCE_MODELS, bench_inference, bench_throughput, canvas_drawing, scan_image
from .limits import (
    ADAM_BYTES_PER_PARAM,
    copy_gb_s,
    epoch_bound_s,
    machine_limits,
    matmul_gflops,
    optimizer_floor_s,
    parameter_count,
)
from .report import report
from .timing import timed, timed_in_turn
from .training import (
    BATCH_ONE_STEPS,
    MODELS,
    WARM_UP_STEPS,
    batch_one_parts,
    bench_device,
    bench_training,
    model_config,
    ours_epoch_s,
    reference_epoch_s,
)
from .whole_runs import live_view_overhead, median_range, memory_profile, time_to_accuracy

__all__ = [  # the parts' names, importable from here as before the split
    "ADAM_BYTES_PER_PARAM", "BATCH_ONE_STEPS", "INFERENCE_MODELS", "MODELS", "WARM_UP_STEPS",
    "batch_one_parts", "bench_device", "bench_inference", "bench_throughput", "bench_training",
    "canvas_drawing", "copy_gb_s", "epoch_bound_s", "machine_limits", "main", "matmul_gflops",
    "median_range", "model_config", "optimizer_floor_s", "ours_epoch_s", "parameter_count",
    "reference_epoch_s", "report", "scan_image", "timed", "timed_in_turn",
]

# Part 5's targets: the default MLP to 97%, the CNN of part 3 to 99% (test accuracy).
ACCURACY_TARGETS = {"mlp": (RunConfig(), 0.97), "cnn": (RunConfig(model="cnn", hidden=(128,)), 0.99)}
PARTS = {
    1: "training", 2: "bound", 3: "inference", 4: "throughput", 5: "accuracy", 6: "overhead", 7: "memory",
    8: "quick model", 9: "CNN training", 10: "CNN throughput", 11: "correction", 12: "study",
    13: "layer stats",
}
QUICK_PARTS = (1, 2, 3, 4)
WAIT_PARTS = (8, 9, 10, 11, 12)  # what the user waits on (:mod:`benchmarks.waits`)


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
