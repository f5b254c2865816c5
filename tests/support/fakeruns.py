"""Generated runs with plausible numbers, written through the real run layout.

For tests and benchmarks of what reads runs (the Runs page, listings,
charts): a few hundred runs in seconds, without training anything. The
folders are written by :class:`~mnist_core.runs.RunWriter` and
:func:`~mnist_core.runs.write_json`, so they are exactly what a real run
looks like on disk. The figures follow the blog study's trends (wider and
deeper help a little, batch size 1 is very slow) with seeded noise; they are
not measurements.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mnist_core.calibration import pack_correct, reliability
from mnist_core.config import RunConfig
from mnist_core.models import build_model
from mnist_core.runs import RunWriter, write_json, write_torch

PathLike = str | os.PathLike[str]
WIDTHS = (32, 64, 128, 256, 512, 1024)
DEPTHS = (1, 2, 3, 4)
BATCH_SIZES = (1, 16, 64, 256)
TAGS = ("baseline", "sweep", "study", "keep")


def fake_config(rng: random.Random, max_width: int | None = None) -> RunConfig:
    """A random MLP configuration from the study's grid (depth, width, batch size, epochs)."""
    widths = [w for w in WIDTHS if max_width is None or w <= max_width] or [min(WIDTHS)]
    depth, width = rng.choice(DEPTHS), rng.choice(widths)
    return RunConfig(
        hidden=(width,) * depth,
        batch_size=rng.choice(BATCH_SIZES),
        epochs=rng.choice((1, 2, 3)),
        lr=rng.choice((1e-3, 3e-4, 3e-3)),
        seed=rng.randrange(1000),
    )


def parameter_count(cfg: RunConfig) -> int:
    """Parameters of the configuration's model, counted without allocating it."""
    with torch.device("meta"):
        return sum(p.numel() for p in build_model(cfg).parameters())


def fake_history(cfg: RunConfig, rng: random.Random, accuracy: float, epoch_s: float) -> list[dict[str, Any]]:
    """Step points (10 per epoch) and epoch ends shaped like a real ``history.json``."""
    n_train = 54_000
    per_epoch = math.ceil(n_train / cfg.batch_size)
    total = per_epoch * cfg.epochs
    history: list[dict[str, Any]] = []
    for epoch in range(1, cfg.epochs + 1):
        for k in range(1, 11):
            step = (epoch - 1) * per_epoch + per_epoch * k // 10
            progress = step / total
            acc = accuracy - (accuracy - 0.1) * math.exp(-8 * progress) - 0.01 + rng.gauss(0, 0.004)
            history.append(_point("step", cfg, epoch, step, total, n_train, per_epoch, acc, epoch_s, n=1))
        acc = accuracy + rng.gauss(0, 0.003)
        point = _point("epoch", cfg, epoch, epoch * per_epoch, total, n_train, per_epoch, acc, epoch_s)
        point |= {"val_acc": min(acc, 0.999), "val_loss": max(0.02, 1.2 * (1 - acc))}
        history.append(point)
    return history


def _point(
    kind: str,
    cfg: RunConfig,
    epoch: int,
    step: int,
    total: int,
    n_train: int,
    per_epoch: int,
    acc: float,
    epoch_s: float,
    n: int | None = None,
) -> dict[str, Any]:
    samples = min(step * cfg.batch_size, n_train * (step // per_epoch + 1))
    elapsed = epoch_s * step / per_epoch
    point = {
        "kind": kind,
        "epoch": epoch,
        "epochs": cfg.epochs,
        "step": step,
        "total_steps": total,
        "samples": samples,
        "loss": max(0.01, 1.5 * (1 - acc)),
        "train_acc": min(max(acc, 0.0), 1.0),
        "lr": cfg.lr,
        "elapsed_s": elapsed,
        "samples_per_s": samples / elapsed if elapsed else 0.0,
        "eta_s": epoch_s * (total - step) / per_epoch,
        "val_loss": None,
        "val_acc": None,
    }
    if n is not None:
        point["n"] = cfg.batch_size * per_epoch // 10
    return point


def fake_summary(cfg: RunConfig, rng: random.Random, n_test: int) -> dict[str, Any]:
    """A ``summary.json`` with every key the pipeline writes, consistent with itself."""
    params = parameter_count(cfg)
    macs = params - sum(cfg.hidden) - 10  # an MLP multiplies each weight once per image
    capacity = math.log2(max(cfg.hidden)) + 0.6 * (cfg.depth - 1) + 0.5 * cfg.epochs
    accuracy = min(0.995, 0.90 + 0.009 * capacity + rng.gauss(0, 0.004))
    epoch_s = 0.3 + params * 2e-7 + 25.0 * params / 4e5 / cfg.batch_size
    wrong = sorted(rng.sample(range(n_test), round((1 - accuracy) * n_test)))
    labels = [i % 10 for i in range(n_test)]
    confusion = [[0] * 10 for _ in range(10)]
    wrong_set = set(wrong)
    for i, true in enumerate(labels):
        confusion[true][(true + 1 + rng.randrange(9)) % 10 if i in wrong_set else true] += 1
    per_class = [row[c] / max(1, sum(row)) for c, row in enumerate(confusion)]
    train_time = epoch_s * cfg.epochs
    energy = train_time * 25 / 3.6e6
    correct = np.ones(n_test, dtype=bool)
    correct[wrong] = False
    # Slightly overconfident, as real networks are: right images near 1, wrong ones spread lower.
    noise = np.random.default_rng(rng.randrange(2**32)).random(n_test)
    calibration = reliability(np.where(correct, 1 - 0.05 * noise**3, 0.35 + 0.6 * noise), correct)
    return {
        "epochs_done": cfg.epochs,
        "test_accuracy": 1 - len(wrong) / n_test,
        "test_loss": 1.2 * (1 - accuracy),
        "val_accuracy": accuracy,
        "per_class_accuracy": per_class,
        "confusion": confusion,
        "misclassified": wrong,
        "train_time_s": train_time,
        "time_per_epoch_s": epoch_s,
        "samples_per_s": 54_000 / epoch_s,
        "parameters": params,
        "macs": macs,
        "flops": 2 * macs,
        "weights_bytes": 4 * params,
        "checkpoint_bytes": 12 * params + 2000,
        "latency_p50_ms": 0.02 + params * 5e-8,
        "latency_p95_ms": 0.03 + params * 7e-8,
        "throughput_images_s": 1e9 / max(macs, 1),
        "threads": 2,
        "device": "cpu",
        "matmul_precision": "medium",
        "torch_version": torch.__version__,
        "energy_kwh": energy,
        "co2_kg": energy * 0.4,
        "co2_country": "USA",
        "energy_estimated": True,
        "energy_method": "fake",
        "test_correct_bits": pack_correct(correct),
        "test_n": n_test,
        "ece": calibration.ece,
        "reliability": calibration.to_dict(),
    }


def make_fake_runs(
    runs_dir: PathLike,
    n: int,
    seed: int = 0,
    *,
    n_test: int = 10_000,
    weights: bool = False,
    max_width: int | None = None,
) -> list[str]:
    """Write ``n`` completed (and a few stopped or failed) runs; returns their ids, oldest first.

    ``n_test`` is the size of the test split the misclassified indices point
    into (10 000 for MNIST, smaller for a generated dataset). ``weights`` also
    saves the untrained model's state_dict as ``weights.pt`` (costly for wide
    models: use ``max_width``), so a gallery can run it.
    """
    rng = random.Random(seed)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ids = []
    for i in range(n):
        cfg = fake_config(rng, max_width)
        summary = fake_summary(cfg, rng, n_test)
        writer = RunWriter.create(cfg, runs_dir, tags=tuple(rng.sample(TAGS, rng.randrange(3))))
        history = fake_history(cfg, rng, summary["test_accuracy"], summary["time_per_epoch_s"])
        write_json(writer.path / "history.json", history)
        if weights:
            write_torch(writer.path / "weights.pt", build_model(cfg).state_dict())
        status = rng.choices(("completed", "stopped", "failed"), (90, 7, 3))[0]
        if status == "failed":
            writer.finish("failed", error="RuntimeError: fake failure")
        else:
            writer.finish(status, summary)
        created = (start + dt.timedelta(minutes=7 * i)).isoformat(timespec="seconds")
        write_json(writer.path / "run.json", writer.meta | {"created": created, "updated": created})
        ids.append(writer.id)
    return ids


def corrupt_run(runs_dir: PathLike, name: str = "20260101-000000-mlp-broken-000000") -> Path:
    """A run folder whose config.json is not JSON: listings must report it as broken."""
    path = Path(runs_dir) / name
    path.mkdir(parents=True)
    (path / "config.json").write_text("{not json", encoding="utf-8")
    write_json(path / "run.json", {"id": name, "name": "broken", "status": "completed"})
    return path
