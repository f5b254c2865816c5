"""Single-image inference latency while a training job runs in the same process (issue #8: p95 < 50 ms).

What the Draw page does for every stroke, ``infer.preprocess`` on a 280x280
RGBA canvas drawing then ``infer.predict``, timed ``--samples`` times:

- ``idle``: nothing else runs;
- ``training``: a :class:`mnist_core.jobs.JobRegistry` trains on a worker
  thread of this process, as the server does while other tabs draw.

The drawing is the benchmark's (:func:`benchmarks.bench.canvas_drawing`): a
"3" in 20 px strokes as the canvas sends it (the alpha channel carrying the ink). Models: the quick default
CNN (what the Home page trains) and the blog's MLP 784-512-10, untrained
(latency does not depend on the weights). Percentiles over all samples; the
machine may be shared, so run it more than once.

    .venv/bin/python scripts/inference_under_load.py
    MNIST_DATA_DIR=/path/to/data .venv/bin/python scripts/inference_under_load.py --train cnn

Without ``MNIST_DATA_DIR`` the training job uses a generated MNIST in a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ at the repository root
# Before numpy and torch: it sets how OpenMP threads wait, read only when OpenMP loads (without it,
# on a shared 2-core machine idle inference measured 78 ms instead of 5 ms).
import mnist_core  # noqa: F401

# isort: split
import numpy as np
import torch

from benchmarks.inference import canvas_drawing
from mnist_core import infer
from mnist_core.config import RunConfig, quick_default
from mnist_core.jobs import JobRegistry
from mnist_core.models import build_model
from tests.support.synthetic import write_dataset

# What trains meanwhile: a long run, stopped once the measurement is done.
TRAIN = {
    "mlp": RunConfig(hidden=(512,), epochs=1000, batch_size=64),
    "cnn": quick_default().replace(epochs=1000, schedule="none"),
}


def measure(model: torch.nn.Module, drawing: np.ndarray, samples: int, pause_s: float) -> list[float]:
    """Milliseconds of preprocess + predict, one drawing at a time."""
    out = []
    for _ in range(samples):
        start = time.perf_counter()
        infer.predict(model, infer.preprocess(drawing))
        out.append((time.perf_counter() - start) * 1000)
        time.sleep(pause_s)  # a user draws between two predictions; lets the trainer run too
    return out


def percentiles(ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return f"p50 {q[49]:6.2f} ms  p95 {q[94]:6.2f} ms  max {max(ms):6.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--pause", type=float, default=0.01, help="seconds between two predictions")
    parser.add_argument("--train", choices=sorted(TRAIN), default="cnn", help="what trains meanwhile")
    args = parser.parse_args()

    data_root = os.environ.get("MNIST_DATA_DIR")
    tmp = None
    if not data_root:
        tmp = tempfile.TemporaryDirectory()
        data_root = str(write_dataset(Path(tmp.name), n_train=6000, n_test=1000))
    runs_dir = tempfile.TemporaryDirectory()
    drawing = canvas_drawing()
    models = {"CNN 16-32 (quick default)": quick_default(), "MLP 784-512-10": RunConfig(hidden=(512,))}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.samples} samples each; "
          f"training meanwhile: {TRAIN[args.train].label()}")  # fmt: skip
    for name, cfg in models.items():
        model = build_model(cfg).eval()
        measure(model, drawing, 20, 0.0)  # warm-up
        idle = measure(model, drawing, args.samples, args.pause)
        registry = JobRegistry()
        job = registry.submit(TRAIN[args.train], runs_dir=runs_dir.name, data_root=data_root)
        while job.snapshot().step == 0 and job.state in ("queued", "running"):
            time.sleep(0.05)  # until the first training steps are done (data loaded, tracker started)
        busy = measure(model, drawing, args.samples, args.pause)
        steps = job.snapshot().step
        job.stop()
        registry.wait(timeout=120)
        print(f"{name:28s} idle:     {percentiles(idle)}")
        print(f"{'':28s} training: {percentiles(busy)}   ({steps} training steps meanwhile)")
    runs_dir.cleanup()
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
