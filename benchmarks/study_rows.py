"""Where a study row's training step goes on one thread, and the row's bound at this core's peak rates.

For each distinct MLP row of the study without batch 1 (:func:`mnist_core.study.rows`),
the fast path's hand-made step (:class:`~mnist_core.fast.backprop.PlainMLP`
and :func:`~mnist_core.fast.step.buffered_update`) is timed in its three
parts on ONE thread by CPU time (so a shared machine's other work counts
less): the forward, the backward (loss and gradients) and the optimizer's
update. Beside them: the step's matrix-product arithmetic (2 x batch x
(3 x MACs - the first layer's input gradient, which is not computed)) and
the rate it ran at, Adam's traffic (28 bytes a parameter: parameter,
gradient and both moments read, parameter and moments written) and its
rate, the row's two epochs of steps in seconds, and its bound: the products
at ``--gflops`` plus Adam's traffic at ``--gbs`` (defaults: the best
single-core rates measured on the 2-core AMD host, 2026-12-05).

    MNIST_DATA_DIR=../shared/data .venv/bin/python -m benchmarks.study_rows

The images are random (the arithmetic does not depend on them); steps only:
no data gathering, validation or run-end work (part 12 has those).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import time
from collections.abc import Iterator
from typing import Any

import torch

from mnist_core import fast, study
from mnist_core.config import RunConfig
from mnist_core.fast.backprop import PlainMLP
from mnist_core.fast.step import buffered_update
from mnist_core.models import build_model
from mnist_core.train_step import make_optimizer

PEAK_GFLOPS = 100.0  # one core, float32 products at batch 256 in cache (oneDNN), 2026-12-05: 102-104
PEAK_ADAM_GBS = 52.0  # one core, the fused Adam over 1M parameters, 2026-12-05
ADAM_BYTES = 28  # a parameter's bytes per Adam step: 4 read and 3 written float32 values
TRAIN_IMAGES = 54_000  # 60,000 less the 10% validation split
WARM_UP = 60


def row_parts(
    cfg: RunConfig, steps: int, gflops: float = PEAK_GFLOPS, gbs: float = PEAK_ADAM_GBS
) -> dict[str, Any]:
    """One row's step on this thread: mean ms of forward, backward and update, its arithmetic and bound."""
    bs = cfg.batch_size
    gen = torch.Generator().manual_seed(0)
    x_all = torch.randn(8 * max(bs, 128), 1, 28, 28, generator=gen)
    y_all = torch.randint(0, 10, (len(x_all),), generator=gen)
    model = build_model(cfg).train()
    optimizer = make_optimizer(cfg, model)
    mlp = PlainMLP.of(model)
    if mlp is None:
        raise ValueError(f"{cfg.label()} is not a plain ReLU MLP")
    update = buffered_update(optimizer)
    ms: dict[str, list[float]] = {"forward": [], "backward": [], "update": []}
    for i in range(WARM_UP + steps):
        j = (i * bs) % (len(x_all) - bs)
        x, y = x_all[j : j + bs], y_all[j : j + bs]
        t0 = time.process_time()
        acts = mlp.forward(x)
        t1 = time.process_time()
        mlp.backward(acts, y)
        t2 = time.process_time()
        update()
        t3 = time.process_time()
        if i >= WARM_UP:
            for key, seconds in zip(ms, (t1 - t0, t2 - t1, t3 - t2), strict=True):
                ms[key].append(seconds * 1e3)
    parts = {key: statistics.mean(v) for key, v in ms.items()}
    step_ms = sum(parts.values())
    first = mlp.linears[0]
    macs = sum(layer.in_features * layer.out_features for layer in mlp.linears)
    flops = 2 * bs * (3 * macs - first.in_features * first.out_features)
    adam_bytes = ADAM_BYTES * sum(p.numel() for p in model.parameters())
    run_steps = cfg.epochs * math.ceil(TRAIN_IMAGES / bs)
    bound_ms = flops / gflops / 1e6 + adam_bytes / gbs / 1e6
    return {
        "row": cfg.label(), "batch": bs, "run_steps": run_steps, "ms": parts, "step_ms": step_ms,
        "mflop_step": flops / 1e6, "products_gflops": flops / (parts["forward"] + parts["backward"]) / 1e6,
        "adam_mb_step": adam_bytes / 1e6, "adam_gbs": adam_bytes / parts["update"] / 1e6,
        "run_s": run_steps * step_ms / 1e3, "bound_s": run_steps * bound_ms / 1e3,
    }  # fmt: skip


@contextlib.contextmanager
def fast_on() -> Iterator[None]:
    """The fast path on for this process while the block runs; then back to the environment."""
    fast.set_enabled(True)
    try:
        yield
    finally:
        fast.set_enabled(None)


def study_rows(steps: int, gflops: float = PEAK_GFLOPS, gbs: float = PEAK_ADAM_GBS) -> dict[str, Any]:
    """:func:`row_parts` of every distinct MLP row of the study without batch 1, on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with fast_on():
        fast.ensure_math("cpu")  # as a training run sets it: the matmul precision, glibc's heap thresholds
    try:
        labels: dict[RunConfig, str] = {}
        for r in study.rows(batch_one=False):
            if r.config.model == "mlp":
                labels.setdefault(r.config, r.label)  # a row in two experiments is trained once
        rows = [{**row_parts(cfg, steps, gflops, gbs), "row": label} for cfg, label in labels.items()]
    finally:
        torch.set_num_threads(before)
    return {"rows": rows, "run_s": sum(r["run_s"] for r in rows), "bound_s": sum(r["bound_s"] for r in rows),
            "peak_gflops": gflops, "peak_adam_gbs": gbs, "steps": steps, "load_average": os.getloadavg()}


def report_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"{'row':<34} {'batch':>5} {'fwd ms':>7} {'bwd ms':>7} {'adam ms':>7} {'GFLOP/s':>7} "
             f"{'GB/s':>5} {'run s':>6} {'bound s':>7}"]
    for r in result["rows"]:
        ms = r["ms"]
        lines.append(f"{r['row']:<34} {r['batch']:>5} {ms['forward']:7.3f} {ms['backward']:7.3f} "
                     f"{ms['update']:7.3f} {r['products_gflops']:7.0f} {r['adam_gbs']:5.0f} "
                     f"{r['run_s']:6.2f} {r['bound_s']:7.2f}")
    lines.append(f"MLP rows, steps only, one thread: {result['run_s']:.1f} s; "
                 f"bound {result['bound_s']:.1f} s (products at {result['peak_gflops']:.0f} GFLOP/s, "
                 f"Adam at {result['peak_adam_gbs']:.0f} GB/s); load average {result['load_average'][0]:.1f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="timed steps a row (after 60 untimed)")
    parser.add_argument("--gflops", type=float, default=PEAK_GFLOPS, help="the bound's product rate")
    parser.add_argument("--gbs", type=float, default=PEAK_ADAM_GBS, help="the bound's Adam traffic rate")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    result = study_rows(args.steps, args.gflops, args.gbs)
    print("\n".join(report_lines(result)))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
