"""Pure measurement functions that run a model: accuracy, latency and throughput.

Every function takes a model that maps normalised float32 images ``(N, 1, 28, 28)``
to logits ``(N, 10)`` and *measures* it; none trains, moves or switches the mode of
the caller's model, because the app shares one cached model between threads.
Functions that run the model refuse one in training mode instead of calling
``model.eval()`` on it.

What the architecture costs (parameters, MACs, FLOPs, fp32 weight size, the
per-process :func:`~mnist_core.costs.cost_report` cache) lives in
:mod:`mnist_core.costs`. **Energy and CO2** come from codecarbon's offline tracker
(:mod:`mnist_core.energy`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .device import synchronize
from .errors import MnistLabError
from .models import for_inference

__all__ = [
    "EVAL_BATCH",
    "FAST_EVAL_BATCH",
    "NUM_CLASSES",
    "EvalResult",
    "LatencyReport",
    "MetricsInputError",
    "evaluate",
    "inference_plan",
    "latency_report",
    "measure_latency",
    "measure_throughput",
]

NUM_CLASSES = 10
EVAL_BATCH = 1000  # images a batch when evaluating the model as trained
# With the fast path's module (CNN 32-64, 10,000 test images, one thread, CPU seconds):
# batch 128: 1.12, 256: 1.15, 500: 1.81, 1000: 2.18; in oneDNN's layout (issue 28)
# 128: 0.88, 256: 0.88, 512: 1.36, 1000: 1.76. Smaller batches keep the first
# convolution's output (100 kB an image) in the caches. On 2 threads (load 3, best of 6
# in turns, wall s): 128: 0.51, 256: 0.48, 512: 0.78.
FAST_EVAL_BATCH = 256


class MetricsInputError(MnistLabError, ValueError):
    """A model or tensor handed to a measurement cannot be measured as given."""


# ---------------------------------------------------------------- helpers


def _require_eval_mode(model: nn.Module) -> None:
    """Refuse a training-mode model: switching it here would race other threads."""
    if model.training:
        raise MetricsInputError(
            "The model is in training mode; call model.eval() on your own copy before "
            "measuring it (dropout and batch-norm statistics would change the result)."
        )


def _model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer; CPU for a stateless model."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _resolve_device(model: nn.Module, device: torch.device | str | None) -> torch.device:
    """The device to send inputs to; the model itself is never moved (it may be shared)."""
    own = _model_device(model)
    if device is None:
        return own
    wanted = torch.device(device)
    has_state = any(True for _ in (*model.parameters(), *model.buffers()))
    if has_state and wanted.type != own.type:
        raise MetricsInputError(
            f"The model lives on {own} but device={wanted} was asked; move your own copy "
            "of the model first (this function never moves a possibly shared model)."
        )
    return wanted


# ---------------------------------------------------------------- accuracy


@dataclass(frozen=True)
class EvalResult:
    """Accuracy of a model on one labelled set.

    ``per_class_accuracy[c]`` is 0.0 for a class absent from the labels; read
    ``class_counts[c]`` (0 there) to tell "absent" from "always wrong". Everything is
    a plain float/int tuple so the result is JSON-ready through :meth:`to_dict`.
    """

    accuracy: float  # fraction correct, 0..1
    loss: float  # mean cross-entropy in nats
    per_class_accuracy: tuple[float, ...]  # 10 entries, recall of each true class
    class_counts: tuple[int, ...]  # 10 entries, how many labels of each class
    confusion: tuple[tuple[int, ...], ...]  # 10x10, rows = true label, cols = predicted
    misclassified: tuple[int, ...]  # indices into the evaluated tensors, ascending
    predictions: tuple[int, ...] = field(default=(), repr=False)  # (N,) predicted labels
    confidences: tuple[float, ...] = field(default=(), repr=False)  # (N,) top softmax probability

    @property
    def n(self) -> int:
        """Number of evaluated samples."""
        return sum(self.class_counts)

    def to_dict(self, include_predictions: bool = False) -> dict[str, Any]:
        """JSON-ready dict; predictions (N ints) are left out unless asked for."""
        out = dataclasses.asdict(self)
        if not include_predictions:
            del out["predictions"], out["confidences"]
        return out


def _check_eval_inputs(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
    """Reject shapes and dtypes that would give a silently wrong accuracy."""
    if x.ndim != 4 or not x.is_floating_point():
        raise MetricsInputError(
            f"x must be a float tensor (N, 1, 28, 28) of normalised images, got {x.dtype} {tuple(x.shape)}"
        )
    if y.ndim != 1 or y.shape[0] != x.shape[0] or y.is_floating_point():
        raise MetricsInputError(
            f"y must be integer labels (N,) with N = {x.shape[0]}, got {y.dtype} {tuple(y.shape)}"
        )
    if x.shape[0] == 0:
        raise MetricsInputError("Cannot evaluate on an empty set (N = 0).")
    if int(y.min()) < 0 or int(y.max()) >= NUM_CLASSES:
        raise MetricsInputError(f"Labels must lie in 0..{NUM_CLASSES - 1}.")
    if batch_size < 1:
        raise MetricsInputError(f"batch_size must be at least 1, got {batch_size}")


def _logits(model: nn.Module, xb: torch.Tensor) -> torch.Tensor:
    """Run one batch and check the model honours the (B, 10) logits contract."""
    out = model(xb)
    if out.ndim != 2 or out.shape != (xb.shape[0], NUM_CLASSES):
        raise MetricsInputError(
            f"The model must return logits ({xb.shape[0]}, {NUM_CLASSES}), got {tuple(out.shape)}"
        )
    return out


def _predict_all(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Predicted labels (N,), their softmax probability (N,) on the CPU, and the summed cross-entropy.

    Everything stays on the device until the last batch is done: one host
    sync per call, not one per batch (a GPU would otherwise wait each time).
    """
    preds: list[torch.Tensor] = []
    confs: list[torch.Tensor] = []
    losses: list[torch.Tensor] = []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size].to(device)
        yb = y[start : start + batch_size].to(device)
        logits = _logits(model, xb).float()
        losses.append(F.cross_entropy(logits, yb, reduction="sum"))
        pred = logits.argmax(dim=1)  # from the logits, as before: softmax may round near-ties together
        preds.append(pred)
        confs.append(torch.softmax(logits, dim=1).gather(1, pred[:, None]).squeeze(1))
    loss_sum = float(torch.stack(losses).double().sum())
    return torch.cat(preds).cpu(), torch.cat(confs).cpu(), loss_sum


def _confusion(y: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """10x10 int64 counts, rows = true label, cols = prediction, via one bincount."""
    flat = y.to(torch.int64) * NUM_CLASSES + pred.to(torch.int64)
    return torch.bincount(flat, minlength=NUM_CLASSES * NUM_CLASSES).reshape(NUM_CLASSES, NUM_CLASSES)


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
) -> EvalResult:
    """Accuracy, loss, per-class accuracy and confusion of ``model`` on ``(x, y)``.

    ``x`` is ``(N, 1, 28, 28)`` float, ``y`` is ``(N,)`` integer labels 0..9. Batches
    go to ``device`` (default: the model's own device); the model must already be in
    eval mode and is neither moved nor switched, so a cached model shared between
    threads can be evaluated safely. Raises :class:`MetricsInputError` otherwise.
    The images go through :func:`inference_plan`'s module, by default in its batches.
    """
    _require_eval_mode(model)
    engine, planned = inference_plan(model)
    batch_size = planned if batch_size is None else batch_size
    _check_eval_inputs(x, y, batch_size)
    target = _resolve_device(model, device)
    with torch.inference_mode():
        pred, conf, loss_sum = _predict_all(engine, x, y, batch_size, target)
        labels = y.cpu().to(torch.int64)
        confusion = _confusion(labels, pred)
    counts = confusion.sum(dim=1).tolist()
    correct = confusion.diagonal().tolist()
    per_class = [c / n if n > 0 else 0.0 for c, n in zip(correct, counts, strict=True)]
    return EvalResult(
        accuracy=sum(correct) / x.shape[0],
        loss=loss_sum / x.shape[0],
        per_class_accuracy=tuple(per_class),
        class_counts=tuple(counts),
        confusion=tuple(tuple(row) for row in confusion.tolist()),
        misclassified=tuple(torch.nonzero(pred != labels).flatten().tolist()),
        predictions=tuple(pred.tolist()),
        confidences=tuple(conf.tolist()),
    )


def inference_plan(model: nn.Module) -> tuple[nn.Module, int]:
    """What runs many images through ``model`` (eval mode), and in batches of how many.

    The fast path's module (:func:`mnist_core.models.for_inference`) in
    batches of :data:`FAST_EVAL_BATCH`, whose activations stay in the CPU's
    caches; else the model itself in batches of :data:`EVAL_BATCH`.
    """
    engine = for_inference(model)
    return engine, (EVAL_BATCH if engine is model else FAST_EVAL_BATCH)


# ---------------------------------------------------------------- latency


@dataclass(frozen=True)
class LatencyReport:
    """Single-image latency percentiles plus batched throughput, with their context.

    Threads and device are recorded because the same model is 40x slower on a
    contended CPU: a latency without them cannot be compared.
    """

    p50_ms: float
    p95_ms: float
    mean_ms: float
    repeats: int
    warmup: int
    threads: int  # torch.get_num_threads() at measurement time
    device: str
    batch_throughput: float  # images per second at the measured batch size

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the fields."""
        return dataclasses.asdict(self)


def measure_latency(
    model: nn.Module, sample: torch.Tensor, warmup: int = 20, repeats: int = 200
) -> list[float]:
    """Wall-clock milliseconds of ``repeats`` single-image forward passes.

    ``sample`` is one image ``(1, 1, 28, 28)``; it is sent to the model's device and
    the ``warmup`` passes (allocator, caches, CUDA kernels) are not timed.
    """
    _require_eval_mode(model)
    if warmup < 0 or repeats < 1:
        raise MetricsInputError(f"Need warmup >= 0 and repeats >= 1, got {warmup} and {repeats}")
    device = _model_device(model)
    xb = sample.to(device)
    timings: list[float] = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            start = time.perf_counter()
            model(xb)
            synchronize(device)
            if i >= warmup:
                timings.append((time.perf_counter() - start) * 1000.0)
    return timings


def measure_throughput(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> float:
    """Images per second over one pass through ``x`` ``(N, 1, 28, 28)`` in batches.

    One batch is run first, untimed, so the figure excludes first-call overheads.
    """
    _require_eval_mode(model)
    if x.shape[0] == 0 or batch_size < 1:
        raise MetricsInputError("Need at least one image and batch_size >= 1 for throughput.")
    device = _model_device(model)
    with torch.inference_mode():
        model(x[:batch_size].to(device))
        synchronize(device)
        start = time.perf_counter()
        for i in range(0, x.shape[0], batch_size):
            model(x[i : i + batch_size].to(device))
        synchronize(device)
        elapsed = time.perf_counter() - start
    return x.shape[0] / max(elapsed, 1e-9)


def latency_report(
    model: nn.Module,
    x_test: torch.Tensor,
    warmup: int = 20,
    repeats: int = 200,
    batch_size: int | None = None,
    max_throughput_images: int = 5000,
    throughput: float | None = None,
) -> LatencyReport:
    """Latency of the first test image and throughput on at most ``max_throughput_images``.

    ``x_test`` is ``(N, 1, 28, 28)``; capping it keeps the report under a second.
    Both are measured on what inference runs (:func:`inference_plan`), in its
    batches unless ``batch_size`` is given. ``throughput``: images/s of a pass
    over the test set that was already timed (the run's test evaluation), so
    the images are not run through again.
    """
    if x_test.ndim != 4 or x_test.shape[0] == 0:
        raise MetricsInputError(f"x_test must be (N, 1, 28, 28) with N >= 1, got {tuple(x_test.shape)}")
    _require_eval_mode(model)
    engine, planned = inference_plan(model)
    timings = np.asarray(measure_latency(engine, x_test[:1], warmup=warmup, repeats=repeats))
    if throughput is None:
        images = x_test[:max_throughput_images]
        throughput = measure_throughput(engine, images, batch_size=batch_size or planned)
    return LatencyReport(
        p50_ms=float(np.percentile(timings, 50)),
        p95_ms=float(np.percentile(timings, 95)),
        mean_ms=float(timings.mean()),
        repeats=repeats,
        warmup=warmup,
        threads=torch.get_num_threads(),
        device=str(_model_device(model)),
        batch_throughput=float(throughput),
    )
