"""Headline figures of a run, or of a configuration before training, as labelled text.

Pure formatting for any front end: the Train page renders these items as
metrics, a CLI or a report could print them. Units are spelled out and the
conventions behind MACs/FLOPs and energy are stated in each item's help.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .config import RunConfig
from .costs import CostReport
from .estimate import EpochEstimate
from .jobs import JobSnapshot
from .runs import RunInfo, resumable

DASH = "—"
MACS_HELP = "Multiply-accumulates for one 28x28 image, counted by fvcore (one multiply-add = 1)."
FLOPS_HELP = "Floating-point operations for one image: 2 x MACs, the convention most blog posts quote."
TOO_FEW = "too few runs"  # a metric's value: "not enough runs to predict" is cut short on a phone
TOO_VAGUE = "too uncertain"  # the fit's 95% interval is wider than MAX_INTERVAL
MAX_INTERVAL = 0.2  # accuracy (20 points): a wider interval is no prediction
WEIGHTS_HELP = "Every parameter and buffer stored as float32: what inference loads."


@dataclass(frozen=True)
class Item:
    """One labelled figure: ``value`` is already formatted for display."""

    label: str
    value: str
    help: str | None = None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def count(n: Any) -> str:
    """``407050`` -> ``407.1 k``; ``120725514`` -> ``120.7 M``."""
    value = _number(n)
    if value is None:
        return DASH
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f} {suffix}"
    return f"{value:.0f}"


def size(n_bytes: Any) -> str:
    """Decimal units: ``1628200`` -> ``1.6 MB``."""
    value = _number(n_bytes)
    if value is None:
        return DASH
    for limit, suffix in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if value >= limit:
            return f"{value / limit:.1f} {suffix}"
    return f"{value:.0f} B"


def seconds(s: Any) -> str:
    """``0.574`` -> ``0.57 s``; ``65`` -> ``1 min 05 s``; ``3720`` -> ``1 h 02 min``."""
    value = _number(s)
    if value is None or value < 0:
        return DASH
    if value < 10:
        return f"{value:.2g} s" if value < 1 else f"{value:.1f} s"
    if value < 60:
        return f"{value:.0f} s"
    total = round(value)
    if total < 3600:
        return f"{total // 60} min {total % 60:02d} s"
    return f"{total // 3600} h {total % 3600 // 60:02d} min"


def percent(fraction: Any, digits: int = 2) -> str:
    value = _number(fraction)
    return DASH if value is None else f"{value:.{digits}%}"


def millis(ms: Any) -> str:
    value = _number(ms)
    return DASH if value is None else f"{value:.3g} ms"


def energy(kwh: Any) -> str:
    """kWh in the unit that suits it: ``0.00042`` -> ``0.42 Wh``."""
    value = _number(kwh)
    if value is None:
        return DASH
    wh = value * 1000
    if wh >= 1000:
        return f"{value:.3g} kWh"
    return f"{wh:.3g} Wh" if wh >= 0.01 else f"{wh * 1000:.3g} mWh"


def mass_co2(kg: Any) -> str:
    """kg in the unit that suits it: ``0.00016`` -> ``0.16 g``; ``2.3e-7`` -> ``0.23 mg``."""
    value = _number(kg)
    if value is None:
        return DASH
    if value >= 1:
        return f"{value:.3g} kg"
    grams = value * 1000
    return f"{grams:.3g} g" if grams >= 0.01 else f"{grams * 1000:.3g} mg"


ENERGY_UNITS = (("kWh", 1.0), ("Wh", 1e3), ("mWh", 1e6))  # from kWh
CO2_UNITS = (("kg", 1.0), ("g", 1e3), ("mg", 1e6))  # from kg
ESTIMATED = "≈ "  # before a value codecarbon could only estimate (a run shorter than two samples)


def unit_for(values: Iterable[Any], units: tuple[tuple[str, float], ...]) -> tuple[str, float]:
    """One unit for a column of values, the one :func:`energy` and :func:`mass_co2` give its largest value.

    The largest unit when the largest value is at least 1 in it, else the
    largest in which it is at least 0.01 (0.42 Wh, not 420 mWh).

    Runs shown side by side then read in the same unit (0.42 Wh next to
    0.0006 Wh, not next to 0.62 mWh). ``units`` go from large to small, as
    (name, factor from the stored unit).
    """
    present = [abs(v) for v in map(_number, values) if v is not None and v != 0]
    if not present:
        return units[1] if len(units) > 1 else units[0]
    top = max(present)
    if top * units[0][1] >= 1:
        return units[0]
    return next(((name, f) for name, f in units[1:] if top * f >= 0.01), units[-1])


def in_unit(value: Any, unit: tuple[str, float]) -> str:
    number = _number(value)
    return DASH if number is None else f"{number * unit[1]:.3g} {unit[0]}"


def cost_items(cost: CostReport, estimate: EpochEstimate | None, epochs: int) -> list[Item]:
    """What a configuration will cost: size, compute per image, and time."""
    items = [
        Item("Parameters", count(cost.parameters), f"{cost.parameters:,} trainable and fixed parameters."),
        Item("MACs / image", count(cost.macs), MACS_HELP),
        Item("FLOPs / image", count(cost.flops), FLOPS_HELP),
        Item("Weights (fp32)", size(cost.weights_bytes), WEIGHTS_HELP),
    ]
    if estimate is not None:
        total = estimate.seconds * epochs
        items.append(Item("Per epoch (est.)", seconds(estimate.seconds), estimate.detail))
        items.append(Item(f"{epochs} epoch{'s' if epochs != 1 else ''} (est.)", seconds(total), None))
    return items


def spread(value: float, interval: tuple[float, float]) -> str:
    """``±0.3`` (points) around ``value``, or ``-11.0/+0.8`` when the interval is lopsided.

    An interval clipped at 0% or 100% is lopsided: a symmetric ``±`` would
    claim accuracies over 100%.
    """
    down, up = (value - interval[0]) * 100, (interval[1] - value) * 100
    if abs(up - down) < 0.1:
        return f"±{max(down, up):.1f}"
    return f"-{down:.1f}/+{up:.1f}"


CHANCE_MARGIN = 0.1  # accuracy within this of chance (1 / classes): the network learned next to nothing


def did_not_learn(run: RunInfo, history: Sequence[Mapping[str, Any]] = ()) -> str | None:
    """Why a finished run's accuracy is no better than guessing, in words a learner can act on; else None.

    A run at chance (10% on 10 classes; a loss that became NaN ends there too)
    most often diverged: its learning rate was too high for its optimizer and
    batch size.
    """
    acc = _number(run.summary.get("test_accuracy"))
    nan_loss = any(isinstance(h.get("loss"), float) and not math.isfinite(h["loss"]) for h in history)
    classes = 10
    if acc is None or acc > 1 / classes + CHANCE_MARGIN:
        return None
    cfg = run.config
    what = f"its test accuracy, {acc:.1%}, is what guessing scores"
    if nan_loss:
        what += ", and its loss became NaN"
    return (
        f"This network did not learn: {what} (1 in {classes}). With a learning rate of {cfg.lr:g} "
        f"({cfg.optimizer}, batch {cfg.batch_size}) training most likely diverged: try one 10x smaller."
    )


def prediction_item(cfg: RunConfig, cost: CostReport, runs: Iterable[RunInfo]) -> Item:
    """The test accuracy a scaling fit over the saved runs predicts for ``cfg``, before training it.

    The fit (``mnist_core.scaling``) is over the completed runs of ``cfg``'s
    family on its dataset, test error against parameters; below 5 such runs
    the value says there are not enough.
    """
    from . import compare, scaling  # compare reads the whole table: only when a preview asks

    try:
        pred, fit = scaling.predict_config(cfg, cost, compare.table(runs))
    except scaling.NotEnoughRuns as exc:
        return Item("Predicted accuracy", TOO_FEW, str(exc))  # "Not enough runs to predict: ..."
    interval = pred.accuracy_interval
    value = percent(pred.accuracy, 1)  # short: a metric's value is cut at a phone's width
    if interval is not None:
        value += " " + spread(pred.accuracy, interval)
    lo, hi = fit.x_range
    where = "inside" if lo <= cost.parameters <= hi else "outside (an extrapolation)"
    bounds = (
        f"95% interval {percent(interval[0], 1)} to {percent(interval[1], 1)}."
        if interval is not None
        else "The fit cannot bound its error here."
    )
    vague = interval is None or interval[1] - interval[0] > MAX_INTERVAL
    if vague:  # "57.0% -57.0/+43.0" is no prediction: say so, not a number
        value = TOO_VAGUE
        bounds += (f" Wider than {MAX_INTERVAL:.0%}: no figure is given. Train sizes near this one "
                   "(or more runs of this family) to narrow it.")  # fmt: skip
    return Item(
        "Predicted accuracy",
        value,
        f"From a fit of test error = a · N^-b + c (b = {fit.b:.2f}, c = {fit.c:.2%}) over the {fit.n} "
        f"completed {scaling.family_label(fit.family)} runs on {fit.dataset}, N = parameters. {bounds} "
        f"This size is {where} the range of those runs ({count(lo)} to {count(hi)} parameters). "
        "Settings other than size (epochs, batch, learning rate) are not in the fit.",
    )


def summary_items(summary: Mapping[str, Any], peers: Iterable[Mapping[str, Any]] = ()) -> list[Item]:
    """The end-of-run figures of a ``summary.json``; missing ones show a dash.

    ``peers`` are the summaries of the runs shown with this one: energy and
    CO2 take one unit for all of them (:func:`unit_for`), and keep their
    labels whether measured or estimated (an estimate's value starts with ``≈``).
    """
    s = summary
    column = [s, *peers]
    energy_unit = unit_for((p.get("energy_kwh") for p in column), ENERGY_UNITS)
    co2_unit = unit_for((p.get("co2_kg") for p in column), CO2_UNITS)
    estimated = ESTIMATED if s.get("energy_estimated") and _number(s.get("energy_kwh")) is not None else ""
    how = "Estimated: the run was shorter than two of codecarbon's power samples. " if estimated else ""
    country = s.get("co2_country")
    return [
        Item("Test accuracy", percent(s.get("test_accuracy")), "On the dataset's whole test split."),
        Item(
            "Training time",
            seconds(s.get("train_time_s")),
            "Wall time of the training loop, validation included.",
        ),
        Item(
            "Time / epoch",
            seconds(s.get("time_per_epoch_s")),
            "Training time over the epochs run; a stopped run's unfinished epoch counts as a fraction.",
        ),
        Item("Parameters", count(s.get("parameters"))),
        Item("MACs / image", count(s.get("macs")), MACS_HELP),
        Item("FLOPs / image", count(s.get("flops")), FLOPS_HELP),
        Item("Weights (fp32)", size(s.get("weights_bytes")), WEIGHTS_HELP),
        Item("Checkpoint", size(s.get("checkpoint_bytes")), "Weights plus optimizer state, to resume."),
        Item("Latency p50", millis(s.get("latency_p50_ms")), "One image at a time, median of 200 passes."),
        Item("Latency p95", millis(s.get("latency_p95_ms"))),
        Item(
            "Energy",
            estimated + in_unit(s.get("energy_kwh"), energy_unit),
            (how + str(s.get("energy_method") or "")) or None,
        ),
        Item(
            "CO2",
            estimated + in_unit(s.get("co2_kg"), co2_unit),
            (how + (f"CO2-equivalent at the grid intensity of {country}." if country else "")) or None,
        ),
    ]


FINISHING = "Evaluating on the test set and measuring costs…"


def steps_caption(label: str, steps_per_epoch: int, epochs: int, n_train: int) -> str:
    """The preview's step counts, per epoch and for the whole run, as the live progress counts them."""
    if epochs == 1:
        return f"{label}: {steps_per_epoch:,} steps in its one epoch, on {n_train:,} training images."
    total = f"{steps_per_epoch * epochs:,} in the whole run ({epochs} epochs)"
    return f"{label}: {steps_per_epoch:,} steps per epoch, {total}, on {n_train:,} training images."


def progress_line(snap: JobSnapshot) -> tuple[float, str]:
    """A job's progress bar: its fill (0-1) and its text, which says what the job is doing.

    The step counter counts the whole run ("step 120 of 1,688 in all"), as the
    preview's caption does. Before the first step it says it is starting (or
    resuming) rather than "step 0/0"; after the last one, that it is testing
    and measuring, which takes seconds while the training's ETA reads 0.
    """
    fraction = min(max(snap.fraction, 0.0), 1.0)
    if snap.phase == "queued" or snap.state == "queued":
        return 0.0, "Waiting to start…"
    elapsed = f"{seconds(snap.elapsed_s)} elapsed"
    if snap.phase == "starting":
        what = "Resuming from its last checkpoint…" if snap.resuming else "Starting: loading the data…"
        return fraction, what
    if snap.phase == "finishing":
        return 1.0, f"{FINISHING} · {elapsed}"
    text = f"Epoch {max(snap.epoch, 1)}/{snap.epochs} · step {snap.step:,} of {snap.total_steps:,} in all"
    if snap.stopping:
        return fraction, f"{text} · stopping, then {FINISHING[0].lower()}{FINISHING[1:]}"
    text += f" · {elapsed}"
    if snap.eta_s is not None:
        text += f", about {seconds(snap.eta_s)} left"
    return fraction, text


def epochs_done(run: RunInfo, history: list[dict[str, Any]] | None = None) -> int:
    """Finished epochs: from the summary, else from the saved history."""
    done = run.summary.get("epochs_done")
    if isinstance(done, int):
        return done
    return sum(1 for h in history or () if h.get("kind") == "epoch")


def can_resume(run: RunInfo) -> bool:
    """Whether the run may continue (from its checkpoint, or from the start if it has none).

    Never a saved version without a checkpoint: it would train a fresh model (see ``runs.resumable``).
    """
    return resumable(run)
