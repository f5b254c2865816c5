"""The training loop. Progress leaves it only through callbacks.

``train(cfg, data, on_progress=..., should_stop=..., on_checkpoint=...)``
prints nothing and knows nothing of any UI. Stopping is a flag checked
between two steps. Batches are rows of the resident data tensor taken by a
seeded per-epoch permutation, so a run resumed at (epoch, step) sees exactly
the batches it would have seen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from . import fast
from .config import RunConfig
from .data import DataBundle, Split, augment_batch
from .device import resolve_device
from .errors import ConfigError
from .layerstats import LayerStatsRecorder
from .metrics import evaluate
from .models import build_model, for_training
from .runs.state import TrainState  # what the storage saves to resume (mnist_core.runs)
from .train_step import make_optimizer, make_scheduler, make_step

__all__ = [
    "GATHER_ROWS",
    "PROGRESS_INTERVAL_S",
    "CheckpointFn",
    "ProgressEvent",
    "ProgressFn",
    "StopFn",
    "TrainResult",
    "epoch_permutation",
    "train",
]

PROGRESS_INTERVAL_S = 0.25  # a live chart redraws twice a second; events come faster
GATHER_ROWS = 4096  # images gathered at once for small batches (12.8 MB of MNIST)


@dataclass(frozen=True)
class ProgressEvent:
    """A point of the learning curve.

    ``kind`` is "step" (every ``progress_every`` steps or ~0.25 s) or "epoch"
    (end of an epoch, with validation). ``loss`` and ``train_acc`` are means
    over the steps since the previous event of the same kind.
    """

    kind: str
    epoch: int  # 1-based epoch this event belongs to
    epochs: int
    step: int  # optimizer steps done in the whole run
    total_steps: int
    samples: int  # training images seen in the whole run
    loss: float
    train_acc: float
    lr: float
    elapsed_s: float  # wall time of the whole run so far, validation included
    samples_per_s: float
    eta_s: float
    val_loss: float | None = None
    val_acc: float | None = None
    layers: list[dict[str, Any]] | None = None  # step points: per weight layer, layerstats.LayerStat

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    status: str  # "completed" or "stopped"
    model: nn.Module  # in eval mode
    state: TrainState
    history: list[dict[str, Any]]
    device: str
    matmul_precision: str
    # Epochs trained, the unfinished one as a fraction (1.5 = stopped halfway through the second):
    # what a stopped run's time per epoch divides by. A resumed run counts its earlier segments too.
    epochs_run: float = 0.0


ProgressFn = Callable[[ProgressEvent], None]
StopFn = Callable[[], bool]
CheckpointFn = Callable[[TrainState], None]


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of epoch ``epoch`` (0-based): the same on every resume."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def train(
    cfg: RunConfig,
    data: DataBundle,
    *,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    on_checkpoint: CheckpointFn | None = None,
    resume: TrainState | None = None,
    progress_every: int | None = None,
    layer_stats: bool = True,
) -> TrainResult:
    """Train ``cfg`` on ``data``; returns the model, final state and history.

    ``on_progress`` gets a :class:`ProgressEvent` every ``progress_every``
    steps (default: about every 0.25 s) and at each epoch end.
    ``should_stop`` is polled between steps; when it returns True the run ends
    as "stopped" with its current weights. ``on_checkpoint`` gets a
    :class:`TrainState` after every epoch and on stop, to be saved.
    ``layer_stats``: each step point carries per-layer figures (:mod:`.layerstats`).
    """
    device = resolve_device(cfg.device)
    n_train = len(data.train)
    if cfg.batch_size > n_train:
        raise ConfigError("batch_size", f"{cfg.batch_size} is larger than the training set ({n_train})")
    precision = fast.ensure_math(device.type)  # once per process: see mnist_core.fast.precision
    data = data.to(device)
    model = build_model(cfg).to(device)
    optimizer = make_optimizer(cfg, model)
    steps_per_epoch = math.ceil(n_train / cfg.batch_size)
    loop = _Loop(cfg, data, model, optimizer, steps_per_epoch, on_progress, progress_every)
    loop.stats = LayerStatsRecorder(model) if layer_stats else None
    if resume is not None:
        loop.load(resume)
    status = loop.run(should_stop or (lambda: False), on_checkpoint or (lambda _s: None))
    model.eval()
    epochs_run = loop.epoch + loop.step_in_epoch / steps_per_epoch
    return TrainResult(status, model, loop.state(), loop.history, str(device), precision, epochs_run)


class _Loop:
    """The state of one training run; ``run`` is the loop itself."""

    def __init__(
        self,
        cfg: RunConfig,
        data: DataBundle,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        steps_per_epoch: int,
        on_progress: ProgressFn | None,
        progress_every: int | None,
    ) -> None:
        self.cfg, self.data, self.model, self.optimizer = cfg, data, model, optimizer
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = steps_per_epoch * cfg.epochs
        self.scheduler = make_scheduler(cfg, optimizer, self.total_steps)
        self.emit = on_progress or (lambda _e: None)
        self.every = progress_every
        self.epoch, self.step_in_epoch, self.elapsed_before = 0, 0, 0.0
        self.history: list[dict[str, Any]] = []
        self._last_window_steps = 0
        self.device = next(model.parameters()).device
        self.augment_gen = torch.Generator().manual_seed(cfg.seed + 7)
        self.step = make_step(cfg, for_training(model), optimizer)  # the same modules, maybe reordered
        self.stats: LayerStatsRecorder | None = None

    def load(self, state: TrainState) -> None:
        self.model.load_state_dict(state.model)
        self.optimizer.load_state_dict(state.optimizer)
        if self.scheduler is not None and state.scheduler is not None:
            self.scheduler.load_state_dict(state.scheduler)
        self.epoch, self.step_in_epoch = state.epoch, state.step_in_epoch
        self.elapsed_before = state.elapsed_s
        self.history = list(state.history)

    def state(self) -> TrainState:
        return TrainState(
            epoch=self.epoch,
            step_in_epoch=self.step_in_epoch,
            model={k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            optimizer=_to_cpu(self.optimizer.state_dict()),
            scheduler=None if self.scheduler is None else self.scheduler.state_dict(),
            elapsed_s=self.elapsed(),
            history=list(self.history),
        )

    def elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self.t0)

    def run(self, should_stop: StopFn, on_checkpoint: CheckpointFn) -> str:
        self.t0 = time.perf_counter()
        x_val, y_val = self.data.val.tensors()
        while self.epoch < self.cfg.epochs:
            if not self._epoch(should_stop):
                on_checkpoint(self.state())
                return "stopped"
            self._end_epoch(x_val, y_val)
            on_checkpoint(self.state())
        return "completed"

    def _epoch(self, should_stop: StopFn) -> bool:
        """Train the rest of the current epoch; False when stopped first."""
        cfg, bs = self.cfg, self.cfg.batch_size
        perm = epoch_permutation(len(self.data.train), cfg.seed, self.epoch).to(self.device)
        self.model.train()
        batches = _Batches(self.data.train, perm, bs)
        window = _Window()
        last_emit = time.perf_counter()
        for i in range(self.step_in_epoch, self.steps_per_epoch):
            if should_stop():
                self._flush(window)
                return False
            x, y = batches.get(i)
            if cfg.augment:
                x = augment_batch(x, self.augment_gen)
            if self.stats is not None:
                self.stats.before_step()
            loss, logits = self.step(x, y)
            if self.stats is not None:
                self.stats.after_step(x)
            if self.scheduler is not None:
                self.scheduler.step()
            window.add(loss, logits, y)
            self.step_in_epoch = i + 1
            if self.every:
                due = (i + 1) % self.every == 0
            else:
                due = time.perf_counter() - last_emit >= PROGRESS_INTERVAL_S
            if due:
                self._flush(window)
                window, last_emit = _Window(), time.perf_counter()
        self._epoch_window = window
        return True

    def _end_epoch(self, x_val: torch.Tensor, y_val: torch.Tensor) -> None:
        self.model.eval()
        val = evaluate(self.model, x_val, y_val) if len(y_val) else None
        self.model.train()
        tail = self._epoch_window
        train_loss, train_acc = self._epoch_train_means(tail)
        if tail.steps * 2 >= self._last_window_steps:
            self._flush(tail)  # a tail of a step or two would be a noisy spike on the curve
        self.epoch, self.step_in_epoch = self.epoch + 1, 0
        event = self._event("epoch", None, train_loss, train_acc)
        if val is not None:
            event = _with(event, val_loss=val.loss, val_acc=val.accuracy)
        self._record(event)

    def _epoch_train_means(self, tail: _Window) -> tuple[float, float]:
        """Image-weighted mean loss/accuracy of this epoch: its step points plus the tail."""
        points = [
            (p["loss"], p["train_acc"], p["n"])
            for p in self.history
            if p["kind"] == "step" and p["epoch"] == self.epoch + 1
        ]
        if tail.n:
            points.append((*tail.means(), tail.n))
        n = sum(w for _, _, w in points) or 1
        return sum(loss * w for loss, _, w in points) / n, sum(acc * w for _, acc, w in points) / n

    def _event(
        self, kind: str, window: _Window | None, loss: float = 0.0, acc: float = 0.0
    ) -> ProgressEvent:
        if window is not None:
            loss, acc = window.means()  # the only host sync: once per event
        step = self.epoch * self.steps_per_epoch + self.step_in_epoch
        if kind == "epoch":
            step = self.epoch * self.steps_per_epoch
        elapsed = self.elapsed()
        samples = self.epoch_samples(step)
        rate = samples / elapsed if elapsed > 0 else 0.0
        steps_left = self.total_steps - step
        eta = steps_left * self.cfg.batch_size / rate if rate > 0 else float("nan")
        return ProgressEvent(
            kind=kind, epoch=self.epoch + (kind == "step"), epochs=self.cfg.epochs, step=step,
            total_steps=self.total_steps, samples=samples, loss=loss, train_acc=acc,
            lr=self.optimizer.param_groups[0]["lr"], elapsed_s=elapsed, samples_per_s=rate, eta_s=eta,
        )

    def epoch_samples(self, step: int) -> int:
        """Images seen after ``step`` steps (the last batch of an epoch may be short)."""
        n = len(self.data.train)
        full, rest = divmod(step, self.steps_per_epoch)
        return full * n + min(rest * self.cfg.batch_size, n)

    def _flush(self, window: _Window) -> None:
        """Record the steps of ``window`` as one point of the curve (if any)."""
        if window.n:
            self._last_window_steps = window.steps
            self._record(self._event("step", window), n=window.n)

    def _record(self, event: ProgressEvent, n: int | None = None) -> None:
        if self.stats is not None and event.kind == "step":
            event = _with(event, layers=self.stats.take())
        entry = event.to_dict()
        if n is not None:
            entry["n"] = n  # images behind this point, to weight epoch means
        self.history.append(entry)
        self.emit(event)


class _Batches:
    """An epoch's batches in its shuffled order, gathered :data:`GATHER_ROWS` images at a time.

    A small batch is then a slice of the last gather: one gather per image
    cost a batch-1 step 40 us in the loop, 6% of 784-512-10's. Big batches
    are gathered one at a time, as before.
    """

    def __init__(self, split: Split, perm: torch.Tensor, batch_size: int) -> None:
        self.split, self.perm, self.bs = split, perm, batch_size
        self.per_gather = max(1, GATHER_ROWS // batch_size)  # batches
        self.gathered = -1
        self.x, self.y = torch.empty(0), torch.empty(0)

    def get(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``i`` of the epoch."""
        g, j = divmod(i, self.per_gather)
        if g != self.gathered:
            rows = self.per_gather * self.bs
            self.x, self.y = self.split.rows(self.perm[g * rows : (g + 1) * rows])
            self.gathered = g
        return self.x[j * self.bs : (j + 1) * self.bs], self.y[j * self.bs : (j + 1) * self.bs]


class _Window:
    """The steps since the last point of the curve: each step's loss, logits and labels, as they came.

    Nothing is computed per step (a running sum on the device cost a batch-1
    step 30-60 us, 5-10% of 784-512-10's); :meth:`means` reduces them all
    at once, with the only host sync, when the point is made.
    """

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []
        self.logits: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []
        self.n = 0

    @property
    def steps(self) -> int:
        return len(self.losses)

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        self.losses.append(loss)
        self.logits.append(logits)
        self.labels.append(y)
        self.n += len(y)

    def means(self) -> tuple[float, float]:
        """Mean step loss and the share of images predicted right."""
        if not self.losses:
            return float("nan"), float("nan")
        loss = torch.stack(self.losses).mean().item()
        correct = (torch.cat(self.logits).argmax(1) == torch.cat(self.labels)).sum().item()
        return loss, correct / self.n


def _with(event: ProgressEvent, **changes: Any) -> ProgressEvent:
    return ProgressEvent(**{**event.to_dict(), **changes})


def _to_cpu(obj: Any) -> Any:
    """A deep copy of an optimizer state with every tensor moved to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj
