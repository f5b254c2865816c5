"""How long a configuration will train: time per epoch from past runs or a probe.

The Train page shows this next to its Start button, the Sweeps page for a
whole grid or study. The sizes it builds on (splits, steps per epoch,
devices, the model's parameters and MACs) come from :mod:`mnist_core.sizing`.
Time per epoch comes from past runs of the same
model and batch size when there are any (their measured images per second),
else from a short probe that times a few real training steps on random data,
scaled by how much longer than its own probe the latest finished run on this
machine took.

Why that scale (issue 21: 0.86 s per epoch estimated, 1.8 s measured). On a
2-core machine under load (load average ~10), default MLP at batch 64 on the
real MNIST, ``run_training`` took 4.2 and 4.5 s per epoch where the probe said
2.0 and 2.3 (1.9-2.1x, as in the issue). In CPU seconds the two agree (probe
2.4-3.2 CPU s per epoch, the bare loop 2.2-3.1, the pipeline with checkpoints
and the energy meter 2.3-2.7): over seconds the run gets a smaller share of
the cores than the 0.3 s probe did (other programs; a browser drawing the
live view on the same cores costs 1.34x, ``scripts/live_view_browser.py``).
The last finished run measured exactly that share on this machine, so its
ratio corrects the probe. The checkpoint each epoch is timed too
(``Probe.epoch_s``, 20-90 ms there): on the 900-image test dataset the
estimate was 4.8x short without it, 1.4-2.4x with it (before calibration).
Probes are kept per server (:class:`ProbeCache`) and not re-taken while a run
trains, so the preview stays put while you watch a run.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from . import fast
from .config import RunConfig
from .costs import CostReport
from .data import augment_batch
from .device import resolve_device, synchronize
from .errors import MnistLabError, ProbeDeferred
from .models import build_model
from .runs import RunInfo, write_torch
from .sizing import SplitSizes, check_fits, cost_preview, split_sizes, steps_per_epoch
from .train_step import make_optimizer, make_step

# A forward pass costs about a third of a training step (forward + backward + update).
FORWARD_SHARE = 1 / 3
TRAIN_FLOPS_PER_MAC = 6  # forward 2 FLOPs per multiply-add, backward about twice that
# A probe step above this (~0.3 s on 2 CPU cores) is extrapolated from two smaller batches instead.
DIRECT_PROBE_FLOPS = 60e9
MIN_PROBE_BATCH = 64  # batches up to this are always timed as they are
PROBE_SPREAD = 8  # the two extrapolation batches differ 8x: their difference is compute, not noise
# A finished run that took this many times its probe's prediction scales the next probes; outside
# this range something else happened (a run shared the CPU with a sweep, a laptop slept).
CALIBRATION_RANGE = (0.5, 4.0)


@dataclass(frozen=True)
class Probe:
    """Measured seconds per training step of one configuration."""

    step_s: float  # seconds per step at the configuration's batch size
    steps: int  # timed steps behind the figure
    device: str
    batches: str  # which batch sizes were timed, e.g. "batch 64" or "batches 32 and 64, extrapolated"
    busy: bool = False  # taken while a run trained in this process: pessimistic
    epoch_s: float = 0.0  # once per epoch: copying the state and saving the checkpoint (wall seconds)


@dataclass(frozen=True)
class EpochEstimate:
    """Expected wall time of one epoch, validation included, and where it comes from."""

    seconds: float
    steps_per_epoch: int
    source: str  # "past runs" or "probe"
    detail: str  # one sentence for the user


def speed_key(cfg: RunConfig) -> tuple[object, ...]:
    """The settings that decide how long a step takes; runs that share it run at the same speed.

    The activation and mixed precision are in it: a ReLU MLP backpropagates
    by hand, other activations through autograd (1.3-1.4x slower at batch
    1), and bfloat16 products changed an epoch by 0.6x to 1.8x.
    """
    return (
        cfg.model,
        cfg.hidden,
        cfg.activation if cfg.model == "mlp" else None,
        cfg.amp,
        cfg.cnn_style if cfg.model == "cnn" else None,
        cfg.cnn_channels if cfg.model == "cnn" else None,
        cfg.crop,
        cfg.batch_size,
        cfg.optimizer,
        cfg.augment,
        cfg.device,
        cfg.batch_norm,
        cfg.dropout > 0,
    )


def from_past_runs(cfg: RunConfig, runs: Iterable[RunInfo], sizes: SplitSizes) -> EpochEstimate | None:
    """Median speed (images/s, validation included) of finished runs with the same speed key."""
    key = speed_key(cfg)
    rates = [
        float(run.summary["samples_per_s"])
        for run in runs
        if run.status in ("completed", "stopped")
        and isinstance(run.summary.get("samples_per_s"), (int, float))
        and run.summary["samples_per_s"] > 0
        and speed_key(run.config) == key
    ]
    if not rates:
        return None
    rate = statistics.median(rates)
    noun = "run" if len(rates) == 1 else "runs"
    return EpochEstimate(
        seconds=sizes.n_train / rate,
        steps_per_epoch=steps_per_epoch(cfg, sizes),
        source="past runs",
        detail=f"from {len(rates)} past {noun} of this model and batch size ({rate:,.0f} images/s)",
    )


def probe_config(cfg: RunConfig) -> RunConfig:
    """``cfg`` with the settings that do not change a step's time set to defaults.

    Two configurations with the same probe config take the same time per step,
    so a cache of probes keyed by it measures each model and batch size once.
    """
    return cfg.replace(
        epochs=1,
        lr=1e-3,
        schedule="none",
        seed=0,
        dataset="mnist",
        val_fraction=0.1,
        weight_decay=0.0,
        momentum=0.9,
        dropout=0.5 if cfg.dropout > 0 else 0.0,
    )


def probe(
    cfg: RunConfig, macs: int | None = None, budget_s: float = 0.3, max_steps: int = 200, warmup: int = 2
) -> Probe:
    """Median time of real training steps of ``cfg`` on random images, for about ``budget_s`` seconds.

    Same model, optimizer, augmentation and device as a run, so a step includes
    forward, backward and update. At least one step is timed, however slow.
    When ``macs`` (per image) says one step at the full batch would do more than
    :data:`DIRECT_PROBE_FLOPS`, two smaller batches are timed instead (see
    :func:`probe_batches`) and the line through them is extended to the batch
    size: 8 x 4096 units at batch 4096 takes ~30 s per step, far too long for a page.
    Runs on the caller's thread.
    """
    device = resolve_device(cfg.device)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = build_model(cfg).to(device).train()
    train_step = make_step(cfg, model, make_optimizer(cfg, model))

    def timed(batch: int, budget: float, warm: int) -> tuple[float, int]:
        x = torch.randn(batch, 1, 28, 28, generator=gen).to(device)
        y = torch.randint(0, 10, (batch,), generator=gen).to(device)

        def step() -> None:
            train_step(augment_batch(x, gen) if cfg.augment else x, y)

        for _ in range(warm):
            step()
        synchronize(device)
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < max_steps and (not times or time.perf_counter() - start < budget):
            begin = time.perf_counter()
            step()
            synchronize(device)
            times.append(time.perf_counter() - begin)
        # The median ignores the odd step slowed by a neighbour (a browser redrawing, a server run).
        return statistics.median(times), len(times)

    batches = probe_batches(cfg.batch_size, macs)
    fast.ensure_math(device.type)  # the math the run itself will use
    if batches is None:
        step_s, steps = timed(cfg.batch_size, budget_s, warmup)
        direct = f"batch {cfg.batch_size}"
        return Probe(step_s, steps, str(device), direct, epoch_s=_epoch_overhead(model))
    small, large = batches
    t_small, n_small = timed(small, budget_s / 2, warmup)
    t_large, n_large = timed(large, budget_s / 2, 0)
    per_image = max(t_large - t_small, 0.0) / (large - small)
    step_s = t_large + per_image * (cfg.batch_size - large)
    extrapolated = f"batches {small} and {large}, extrapolated"
    return Probe(step_s, n_small + n_large, str(device), extrapolated, epoch_s=_epoch_overhead(model))


def _epoch_overhead(model: torch.nn.Module) -> float:
    """Wall seconds a run spends once per epoch besides its steps and validation: its checkpoint.

    After every epoch a run copies its weights and the optimizer's state (about
    twice the weights for Adam) to the CPU and saves them, atomically, with the
    inference weights: 25-60 ms for 784-512-10 on a loaded 2-core machine, which
    is most of an epoch of 900 images. Timed here as a run does it, in a
    temporary folder.
    """
    weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    adam_like = {"state": {k: (v, v.clone()) for k, v in weights.items()}}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mnist-probe-") as folder:
        write_torch(Path(folder) / "checkpoint.pt", {"model": weights, "optimizer": adam_like})
        write_torch(Path(folder) / "weights.pt", weights)
    return time.perf_counter() - start


def probe_batches(batch_size: int, macs: int | None) -> tuple[int, int] | None:
    """The two batch sizes to time instead of ``batch_size``, or None to time it directly.

    Direct when a step is small enough (:data:`DIRECT_PROBE_FLOPS`); else the
    largest power of two under that limit (at least :data:`MIN_PROBE_BATCH`) and
    an eighth of it, whose time difference is per-image compute.
    """
    per_image = TRAIN_FLOPS_PER_MAC * (macs or 0)
    if batch_size <= MIN_PROBE_BATCH or batch_size * per_image <= DIRECT_PROBE_FLOPS:
        return None
    large = max(MIN_PROBE_BATCH, 2 ** math.floor(math.log2(DIRECT_PROBE_FLOPS / per_image)))
    return (large // PROBE_SPREAD, large) if large < batch_size else None


def from_probe(
    cfg: RunConfig,
    measured: Probe,
    sizes: SplitSizes,
    busy: bool = False,
    calibration: Calibration | None = None,
) -> EpochEstimate:
    """Steps per epoch x measured step time, plus validation at a third of a step per image.

    ``busy`` (or ``measured.busy``): the probe ran while another run trained, so it is
    pessimistic; the detail says so. ``calibration`` scales the result by how much
    longer than its probe a finished run on this machine took (:func:`calibrate`).
    """
    steps = steps_per_epoch(cfg, sizes)
    validation = sizes.n_val * measured.step_s / cfg.batch_size * FORWARD_SHARE
    note = " (while another run was training: expect it faster alone)" if busy or measured.busy else ""
    plural = "s" if measured.steps != 1 else ""
    seconds = steps * measured.step_s + validation + measured.epoch_s
    detail = (
        f"measured: {measured.steps} training step{plural} ({measured.batches}) on {measured.device}, "
        f"{_ms(measured.step_s)} per step of batch {cfg.batch_size}{note}"
    )
    if measured.epoch_s:
        detail += f", plus {_ms(measured.epoch_s)} per epoch to save its checkpoint"
    if calibration is not None:
        detail += (
            f"; x{calibration.ratio:.2g}, as the last finished run here ({calibration.label}) took "
            f"{calibration.ratio:.2g} times its probe's estimate (live view, other programs)"
        )
        seconds *= calibration.ratio
    return EpochEstimate(seconds=seconds, steps_per_epoch=steps, source="probe", detail=detail)


@dataclass(frozen=True)
class Calibration:
    """A finished run's measured epoch time over its probe's prediction, on this machine."""

    ratio: float
    run_id: str
    label: str


ProbeFn = Callable[[RunConfig], Probe]


def calibrate(runs: Sequence[RunInfo], probe_fn: ProbeFn, sizes: SplitSizes) -> Calibration | None:
    """How the latest finished run with a measured speed compares with its probe; None without one.

    ``runs`` newest first (as :func:`mnist_core.runs.list_runs` gives them);
    ``sizes`` are the dataset's (MNIST and Fashion-MNIST have the same), cut
    again at the run's own validation share. A run on another device than the
    probe's, or a ratio outside :data:`CALIBRATION_RANGE`, gives None.
    """
    run = next((r for r in runs if r.status in ("completed", "stopped") and _rate(r) is not None), None)
    if run is None:
        return None
    try:
        measured = probe_fn(run.config)
    except (MnistLabError, RuntimeError):  # its device or model cannot be probed here now
        return None
    if run.summary.get("device") not in (None, measured.device):
        return None
    n = sizes.n_train + sizes.n_val
    n_val = round(n * run.config.val_fraction)
    own = SplitSizes(n - n_val, n_val, sizes.measured)
    predicted = from_probe(run.config, measured, own).seconds
    actual = own.n_train / float(_rate(run) or 1.0)
    ratio = actual / predicted if predicted > 0 else math.inf
    low, high = CALIBRATION_RANGE
    if not low <= ratio <= high:
        return None
    return Calibration(ratio=ratio, run_id=run.id, label=run.config.label())


def _rate(run: RunInfo) -> float | None:
    rate = run.summary.get("samples_per_s")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate <= 0:
        return None
    return float(rate)


def epoch_estimate(
    cfg: RunConfig, runs: Sequence[RunInfo], sizes: SplitSizes, probe_fn: ProbeFn
) -> EpochEstimate:
    """The preview's time per epoch: past runs of the same speed, else a calibrated probe.

    ``probe_fn`` measures a configuration (the app passes :meth:`ProbeCache.get`,
    so each one is timed once per server).
    """
    past = from_past_runs(cfg, runs, sizes)
    if past is not None:
        return past
    measured = probe_fn(cfg)
    return from_probe(cfg, measured, sizes, calibration=calibrate(runs, probe_fn, sizes))


def run_seconds(cfg: RunConfig, runs: Sequence[RunInfo], sizes: SplitSizes, probe_fn: ProbeFn) -> float:
    """A whole run of ``cfg`` (all its epochs), estimated as :func:`epoch_estimate` does.

    The Sweeps page's time for a study or a grid: the same past-runs-else-probe
    estimate, calibration included, as the Train page's preview.
    """
    return epoch_estimate(cfg, runs, sizes, probe_fn).seconds * cfg.epochs


class ProbeCache:
    """Probes of this process, one per :func:`probe_config`, shared by every tab.

    A probe is taken once and then reused, also while a run trains, so the
    estimate on the page does not drift as the run it estimates slows the
    machine down. One taken while busy is re-taken once nothing trains.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._probes: dict[RunConfig, Probe] = {}

    def get(self, cfg: RunConfig, busy: bool = False, *, wait_idle: bool = False) -> Probe:
        """The probe of ``cfg``'s model and batch size, taken now if this process has none.

        ``busy``: a run trains here. With ``wait_idle`` nothing is measured
        then (:class:`ProbeDeferred`): a sweep's runs are timed for its table,
        and a probe beside one would slow it and change its figure.
        """
        key = probe_config(cfg)
        with self._lock:
            known = self._probes.get(key)
        if known is not None and (busy or not known.busy):
            return known
        if busy and wait_idle:
            raise ProbeDeferred("not timed while a run trains here (it would slow that run); "
                                "estimated once nothing trains")
        measured = dataclasses.replace(probe(key, cost_preview(key).macs), busy=busy)
        with self._lock:
            self._probes[key] = measured
        return measured


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


@dataclass(frozen=True)
class Preview:
    """What a configuration will cost before it trains: the Train page's preview, in one answer."""

    sizes: SplitSizes  # the splits it trains and validates on
    cost: CostReport  # parameters, MACs, FLOPs, file size
    epoch: EpochEstimate  # time per epoch and where it comes from


def preview(
    cfg: RunConfig,
    runs: Sequence[RunInfo],
    probe_fn: ProbeFn,
    root: str | Path | None = None,
    *,
    cost_fn: Callable[[RunConfig], CostReport] = cost_preview,
) -> Preview:
    """Sizes, cost and time per epoch of ``cfg``: one call for the Train page (issue 25).

    Raises :class:`MnistLabError` subclasses with a message for the user when
    it cannot train (its data is missing, a batch larger than the training
    split). ``probe_fn`` and ``cost_fn`` may come from the app's caches.
    """
    sizes = split_sizes(cfg.dataset, cfg.val_fraction, root)
    check_fits(cfg, sizes)
    return Preview(sizes, cost_fn(cfg), epoch_estimate(cfg, runs, sizes, probe_fn))
