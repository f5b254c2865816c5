"""One training job end to end: load data, train, measure, save.

The app's job registry and the CLI both call :func:`run_training`, so a run
made from the browser and one made from the shell are the same on disk.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

from .calibration import summary_fields
from .config import RunConfig
from .costs import cost_report, file_bytes
from .data import DataBundle, load_data
from .energy import EnergyMeter, EnergyReport, warm_up
from .errors import ConfigError, MnistLabError
from .metrics import evaluate, latency_report
from .runs import RunInfo, RunWriter, has_checkpoint, load_run, load_train_state
from .train import ProgressFn, StopFn, TrainResult, train

PathLike = str | os.PathLike[str]
log = logging.getLogger(__name__)


def run_training(
    cfg: RunConfig | None = None,
    *,
    runs_dir: PathLike | None = None,
    data_root: PathLike | None = None,
    name: str | None = None,
    tags: tuple[str, ...] = (),
    resume_id: str | None = None,
    on_start: Callable[[str], None] | None = None,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    progress_every: int | None = None,
) -> RunInfo:
    """Train a new run (``cfg``) or resume one (``resume_id``) and save it.

    ``on_start`` gets the run id as soon as the folder exists. The run ends
    "completed" or "stopped" (both with a full summary), or "failed" with the
    error recorded before it is raised again. A configuration that cannot
    train on this data (a batch larger than the training split) is refused
    before any run folder is made.
    """
    if resume_id is not None:
        cfg = load_run(resume_id, runs_dir).config
    elif cfg is None:
        raise ValueError("run_training needs a config or a run id to resume")
    warm_up()  # codecarbon's slow first start, in the background while the data load
    # Data first: a missing dataset is an error to fix, not a failed run to keep.
    data = load_data(cfg.dataset, cfg.val_fraction, cfg.seed, data_root)
    if cfg.batch_size > len(data.train):
        raise ConfigError(
            "batch_size", f"{cfg.batch_size} is larger than the training set ({len(data.train)} images)"
        )
    if resume_id is not None:
        writer = RunWriter.reopen(resume_id, runs_dir)
    else:
        writer = RunWriter.create(cfg, runs_dir, name=name, tags=tags)
    try:
        if on_start is not None:
            on_start(writer.id)
        # A run that died before its first checkpoint starts again from step 0.
        resumable = resume_id is not None and has_checkpoint(resume_id, runs_dir)
        resume = load_train_state(resume_id, runs_dir) if resumable else None
        with EnergyMeter() as meter:
            result = train(
                cfg, data, on_progress=on_progress, should_stop=should_stop,
                on_checkpoint=writer.save_checkpoint, resume=resume, progress_every=progress_every,
            )
        previous = load_run(resume_id, runs_dir).summary if resume_id is not None else {}
        summary = summarize(result, data, meter.report, writer.path / "checkpoint.pt", previous)
    except BaseException as exc:
        missing = writer.folder_missing(exc)  # the folder was removed meanwhile (rm -rf): say so
        _finish_failed(writer, missing or exc)
        if missing is not None:
            raise missing from exc
        raise
    writer.finish(result.status, summary)
    return load_run(writer.id, writer.path.parent)


def failure_message(exc: BaseException) -> str:
    """What the run's record and the page show: our errors speak for themselves, others get their type."""
    return str(exc) if isinstance(exc, MnistLabError) else f"{type(exc).__name__}: {exc}"


def _finish_failed(writer: RunWriter, exc: BaseException) -> None:
    """Mark the run failed; if even that cannot be written (full disk), keep the original error.

    The lock is dropped either way, so a run whose status could not be saved
    is listed as interrupted and can be resumed from its last checkpoint.
    """
    try:
        writer.finish("failed", error=failure_message(exc))
    except MnistLabError as second:
        log.warning("Could not record the failure of run %s: %s", writer.id, second)


def summarize(
    result: TrainResult,
    data: DataBundle,
    energy: EnergyReport | None,
    checkpoint: PathLike,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every headline metric of a trained model, flat and JSON-ready.

    ``previous`` is the summary of the same run before a resume: its energy
    is added so a run's cost covers all of its segments.
    """
    model = result.model
    x_test, y_test = data.test.tensors()
    with ThreadPoolExecutor(1, thread_name_prefix="cost") as pool:
        # fvcore traces the model in Python while the test set runs in torch's kernels (GIL released);
        # its figures depend only on the architecture, so a config seen before costs nothing.
        counting = pool.submit(cost_report, model)
        start = time.perf_counter()
        test = evaluate(model, x_test, y_test)
        evaluated_s = time.perf_counter() - start
        cost = counting.result()
    # The test evaluation was the pass over the test set: its rate is the throughput (done once).
    latency = latency_report(model, x_test, throughput=len(y_test) / max(evaluated_s, 1e-9))
    epochs = [h for h in result.history if h["kind"] == "epoch"]
    elapsed = result.state.elapsed_s
    previous = previous or {}
    summary: dict[str, Any] = {
        "epochs_done": result.state.epoch,
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        "val_accuracy": epochs[-1]["val_acc"] if epochs else None,
        "per_class_accuracy": list(test.per_class_accuracy),
        "confusion": [list(row) for row in test.confusion],
        "misclassified": list(test.misclassified),
        "train_time_s": elapsed,
        # Over the epochs actually run, a stopped run's unfinished one as a fraction (issue 21).
        "time_per_epoch_s": elapsed / result.epochs_run if result.epochs_run else None,
        "samples_per_s": result.history[-1]["samples_per_s"] if result.history else None,
        "parameters": cost.parameters,
        "macs": cost.macs,
        "flops": cost.flops,
        "weights_bytes": cost.weights_bytes,
        "checkpoint_bytes": file_bytes(checkpoint),
        "latency_p50_ms": latency.p50_ms,
        "latency_p95_ms": latency.p95_ms,
        "throughput_images_s": latency.batch_throughput,
        "threads": latency.threads,
        "device": result.device,
        "matmul_precision": result.matmul_precision,
        "torch_version": torch.__version__,
    }
    summary |= summary_fields(test, y_test.cpu().numpy())  # per-image hits, calibration (issue 24)
    if energy is not None:
        summary |= {
            "energy_kwh": energy.energy_kwh + float(previous.get("energy_kwh") or 0.0),
            "co2_kg": energy.co2_kg + float(previous.get("co2_kg") or 0.0),
            "co2_country": energy.country,
            "energy_estimated": energy.estimated or bool(previous.get("energy_estimated")),
            "energy_method": energy.method,
        }
    return summary
