"""Learning from a corrected prediction without wrecking the model.

A user draws a digit, the model misreads it, the user says what it really
is. Fine-tuning on that one image alone moves the decision boundaries for
every image like it, and test accuracy falls. So every step here mixes the
example with a *replay* batch drawn afresh from the real training split:
the example moves the model, the replay holds it in place. By default the
replay term is a distillation loss (stay close to what the original model
said on those images), which holds far better than cross-entropy with the
labels. The example is learned together with re-drawings of it
(:mod:`redraw`: the same digit drawn again a little differently), and
fine-tuning stops once the example is read correctly and 9 in 10 of its
re-drawings are: a correction then teaches the user's habit, not only the
exact pixels (fresh re-drawings read right: 44% -> 78% in the study).

By default, though, nothing is fine-tuned (``steps`` 0): the corrected copy
*remembers* the drawing and 32 re-drawings of it beside the network
(:mod:`memory`), which reads fresh re-drawings right far more often (19% ->
95% in the study) and leaves test accuracy where it was (mean drop under
0.01 points). Fine-tuning stays a setting, and the two combine.

Everything runs on a deep copy: the caller's model (typically cached and
shared by every browser tab) is never touched. Batch norm and dropout stay
in eval mode while fine-tuning: with a batch that is mostly one image,
batch statistics would be garbage, and the running statistics learned on
60 000 images are better than anything a few steps could estimate.

The result carries the before -> after figures a user needs to judge the
change: the drawing's probability of the true label, test accuracy on the
evaluation set (the full test set by default) and how many test images
flipped from right to wrong (and from wrong to right).

Default settings were chosen by measurement on the real MNIST; see
``scripts/correction_study.py`` and the README.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config import RunConfig, check_float, check_int
from .data import Split
from .errors import ConfigError
from .memory import Memory, attach, detach, memory_of, merged, remember
from .metrics import EvalResult, evaluate
from .redraw import redraw_inputs
from .train_step import make_optimizer

STRATEGIES = ("distill", "replay", "example")
LAYERS = ("all", "last")
OPTIMIZERS = ("adam", "sgd")
TEMPERATURE = 2.0  # softens the original model's predictions for distillation


@dataclass(frozen=True)
class CorrectionSettings:
    """How a correction remembers and/or fine-tunes (defaults measured, see the module doc)."""

    memory: bool = True  # remember the drawing and its views beside the network (mnist_core.memory)
    reach: float = 0.9  # a remembered key reads inputs within this share of its distance to other classes
    strategy: str = "distill"  # "distill", "replay" or "example": see fine_tune
    steps: int = 0  # at most this many optimizer steps (Adam); 0: no fine-tuning (the memory alone)
    stop_at: float = 0.6  # stop once every example's true label has this probability (1: never)
    lr: float = 3e-5  # Adam learning rate: its first steps move every weight by ~lr, so keep it small
    replay_size: int = 512  # training images mixed into each step ("distill" and "replay")
    replay_weight: float = 16.0  # weight of the replay term against the example's
    views: int = 32  # re-drawings of each example (mnist_core.redraw) remembered and learned with it
    view_share: float = 0.9  # with views: also stop only once this share of them is read right
    layers: str = "all"  # "all", or "last": only the last linear layer learns
    optimizer: str = "adam"  # "adam", or "sgd" (momentum 0.9): moves each weight by its gradient
    eval_size: int = 0  # test images for before/after (0: the whole test set, else >= 2000)
    seed: int = 0  # replay batches and augmentation are seeded: the same inputs give the same model

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError("strategy", f"{self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        check_int("steps", self.steps, 0, 1000)
        check_float("reach", self.reach, 0.0, 1.0, lo_open=True)
        check_int("replay_size", self.replay_size, 1, 4096)
        check_int("views", self.views, 0, 256)
        check_float("view_share", self.view_share, 0.0, 1.0)
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError("optimizer", f"{self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if self.layers not in LAYERS:
            raise ConfigError("layers", f"{self.layers!r} is not one of {', '.join(LAYERS)}")
        check_int("seed", self.seed, 0, 2**31 - 1)
        if not isinstance(self.memory, bool):
            raise ConfigError("memory", f"expected true or false, got {self.memory!r}")
        if self.eval_size != 0:
            check_int("eval_size", self.eval_size, 2000, 1_000_000)
        check_float("replay_weight", self.replay_weight, 0.0, 100.0)
        check_float("lr", self.lr, 0.0, 1.0, lo_open=True)
        check_float("stop_at", self.stop_at, 0.0, 1.0, lo_open=True)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Correction:
    """A fine-tuned copy's weights and what changed, before -> after."""

    state_dict: dict[str, torch.Tensor]  # CPU tensors of the fine-tuned copy
    labels: tuple[int, ...]  # the true labels taught, one per example
    prob_before: tuple[float, ...]  # each example's probability of its true label
    prob_after: tuple[float, ...]
    predicted_before: tuple[int, ...]
    predicted_after: tuple[int, ...]
    before: EvalResult  # on the evaluation set
    after: EvalResult
    flipped: int  # evaluation images right before and wrong after
    fixed: int  # wrong before, right after
    seconds: float  # fine-tuning and both evaluations
    settings: CorrectionSettings
    steps: int  # optimizer steps taken (fewer than settings.steps when stopped early)
    memory: Memory | None = None  # what the copy remembers: the parent's memory and these examples

    def model(self, network: nn.Module) -> nn.Module:
        """The corrected model: a copy of ``network`` (same architecture) with these weights and memory."""
        tuned = detach(copy.deepcopy(network))
        tuned.load_state_dict(self.state_dict)
        return attach(tuned.eval(), self.memory)

    @property
    def accuracy_drop_points(self) -> float:
        """Test accuracy lost, in percentage points (negative: it improved)."""
        return 100.0 * (self.before.accuracy - self.after.accuracy)

    @property
    def learned(self) -> bool:
        """Every taught example is now read as its true label."""
        return self.predicted_after == self.labels

    def details(self) -> dict[str, Any]:
        """JSON-ready record of the correction, for the saved version's ``details``."""
        single = len(self.labels) == 1
        out: dict[str, Any] = {
            "settings": self.settings.to_dict(),
            "examples": len(self.labels),
            "steps_taken": self.steps,
            "remembered": 0 if self.memory is None else len(self.memory),
            "accuracy_before": self.before.accuracy,
            "accuracy_after": self.after.accuracy,
            "eval_size": self.before.n,
            "flipped_right_to_wrong": self.flipped,
            "flipped_wrong_to_right": self.fixed,
            "seconds": self.seconds,
        }
        if single:
            out |= {
                "label": self.labels[0],
                "predicted_before": self.predicted_before[0],
                "predicted_after": self.predicted_after[0],
                "prob_before": self.prob_before[0],
                "prob_after": self.prob_after[0],
            }
        else:
            out |= {
                "learned": sum(a == t for a, t in zip(self.predicted_after, self.labels, strict=True)),
                "known_before": sum(b == t for b, t in zip(self.predicted_before, self.labels, strict=True)),
            }
        return out

    def summary(self, parent: dict[str, Any]) -> dict[str, Any]:
        """The new version's summary: the parent's cost figures, this model's accuracy.

        Accuracy fields are replaced when the evaluation covered the whole test
        set; otherwise they are left out rather than copied from the parent.
        """
        out = dict(parent)
        full = self.settings.eval_size == 0
        for key in ("test_accuracy", "test_loss", "per_class_accuracy", "confusion", "misclassified"):
            out.pop(key, None)
        if full:
            out |= {
                "test_accuracy": self.after.accuracy,
                "test_loss": self.after.loss,
                "per_class_accuracy": list(self.after.per_class_accuracy),
                "confusion": [list(row) for row in self.after.confusion],
                "misclassified": list(self.after.misclassified),
            }
        else:
            out["sample_accuracy"] = self.after.accuracy
        out["val_accuracy"] = None  # not measured again: the parent's figure would mislead
        out["correction_s"] = self.seconds
        return out


def eval_subset(test: Split, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The evaluation images: the whole split (``size`` 0) or a fixed, seeded sample of ``size``."""
    x, y = test.tensors()
    if size == 0 or size >= len(y):
        return x, y
    rows = torch.randperm(len(y), generator=torch.Generator().manual_seed(1234))[:size].sort().values
    return x.index_select(0, rows), y.index_select(0, rows)


def learn(
    model: nn.Module,
    x: torch.Tensor,
    labels: int | list[int] | torch.Tensor,
    replay: Split,
    test: Split,
    settings: CorrectionSettings | None = None,
    before: EvalResult | None = None,
    dataset: str = "mnist",
) -> Correction:
    """Fine-tune a copy of ``model`` on the example(s) ``x`` ``(N, 1, 28, 28)`` with ``labels``.

    ``replay`` is the training split to mix in (``data.load_data(...).train``),
    ``test`` the split to measure before/after on. ``model`` is deep-copied
    first and never modified. Returns the copy's weights and the figures.
    ``before``: the model's :func:`metrics.evaluate` result on
    ``eval_subset(test, settings.eval_size)``, when the caller has it cached.
    ``dataset``: how the examples were preprocessed (for their re-drawn views).
    With ``settings.memory`` the copy also remembers the examples and their
    views (:mod:`memory`) on top of what ``model`` remembered; both figures,
    before and after, are measured with each model's memory.
    """
    settings = settings or CorrectionSettings()
    x, y = _examples(x, labels)
    uses_replay = settings.steps > 0 and settings.strategy != "example"
    if (uses_replay or settings.memory) and len(replay) == 0:
        raise ConfigError("replay", "the replay set is empty: load the training data first")
    start = time.perf_counter()
    x_eval, y_eval = eval_subset(test, settings.eval_size)
    if before is None or before.n != len(y_eval):
        before = evaluate(model, x_eval, y_eval)
    probs_before = _probabilities(model, x)
    views = _views(x, settings, dataset)
    tuned, steps = fine_tune(model, x, y, replay, settings, dataset, views=views)
    memory = memory_of(model)
    if settings.memory:
        taught_x, taught_y = torch.cat([x.cpu(), views]), torch.cat([y, y.repeat_interleave(settings.views)])
        memory = merged(memory, remember(taught_x, taught_y, *replay.tensors(), settings.reach))
    attach(tuned, memory)
    after = evaluate(tuned, x_eval, y_eval)
    probs_after = _probabilities(tuned, x)
    right_before = torch.tensor(before.predictions) == y_eval
    right_after = torch.tensor(after.predictions) == y_eval
    return Correction(
        state_dict={k: v.detach().cpu().clone() for k, v in tuned.state_dict().items()},
        labels=tuple(int(v) for v in y),
        prob_before=tuple(float(p[t]) for p, t in zip(probs_before, y, strict=True)),
        prob_after=tuple(float(p[t]) for p, t in zip(probs_after, y, strict=True)),
        predicted_before=tuple(int(v) for v in probs_before.argmax(1)),
        predicted_after=tuple(int(v) for v in probs_after.argmax(1)),
        before=before,
        after=after,
        flipped=int((right_before & ~right_after).sum()),
        fixed=int((~right_before & right_after).sum()),
        seconds=time.perf_counter() - start,
        settings=settings,
        steps=steps,
        memory=memory,
    )


def _views(x: torch.Tensor, settings: CorrectionSettings, dataset: str) -> torch.Tensor:
    """The re-drawings of each example (made once, seeded), ``(N * views, 1, 28, 28)``, on the CPU."""
    if not settings.views:
        return x[:0].cpu()
    return redraw_inputs(x.cpu(), settings.views, settings.seed, dataset)


def fine_tune(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    replay: Split,
    settings: CorrectionSettings,
    dataset: str = "mnist",
    views: torch.Tensor | None = None,
) -> tuple[nn.Module, int]:
    """A fine-tuned deep copy of ``model`` (eval mode, without a memory) and the steps taken.

    ``model`` is untouched. ``views``: the examples' re-drawings, when the caller made them already.

    Each step sees the examples, their ``views`` re-drawings (made once,
    seeded: :func:`redraw.redraw_inputs`) and, unless the strategy is
    "example", ``replay_size`` random training images. Loss = mean
    cross-entropy on the examples and views + a replay term: cross-entropy
    with the true labels ("replay"), or the KL divergence from the original
    model's own predictions at temperature :data:`TEMPERATURE` ("distill").
    Distillation holds the model in place far better: a replay image the
    model already gets right has almost no cross-entropy gradient, but any
    change of its output costs KL. Stops early once every example's true
    label reaches ``stop_at`` (and, with ``view_share``, that share of the
    views is read right).
    """
    tuned = detach(copy.deepcopy(model)).eval()  # eval: batch norm keeps its statistics, dropout is off
    learning = _learning_parameters(tuned, settings.layers)
    for p in learning:
        p.requires_grad_(True)
    device = next(tuned.parameters()).device
    optimizer = make_optimizer(
        RunConfig(lr=float(settings.lr), optimizer=settings.optimizer), tuned
    )  # parameters without grad: skipped
    gen = torch.Generator().manual_seed(settings.seed)
    x, y = x.to(device), y.to(device)
    views = (_views(x, settings, dataset) if views is None else views).to(device)
    taught_x, taught_y = torch.cat([x, views]), torch.cat([y, y.repeat_interleave(settings.views)])
    steps = 0
    with torch.enable_grad():
        while steps < settings.steps and not _reached(tuned, taught_x, taught_y, len(y), settings):
            loss = F.cross_entropy(tuned(taught_x), taught_y)
            if settings.strategy != "example":
                rows = torch.randint(len(replay), (settings.replay_size,), generator=gen)
                xr, yr = replay.rows(rows)
                replay_loss = _replay_loss(model, tuned, xr.to(device), yr.to(device), settings.strategy)
                loss = loss + settings.replay_weight * replay_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
    for p in tuned.parameters():
        p.requires_grad_(False)
    return tuned.eval(), steps


def _learning_parameters(model: nn.Module, layers: str) -> list[nn.Parameter]:
    """Every parameter, or only the last linear layer's (``layers="last"``); the rest frozen."""
    for p in model.parameters():
        p.requires_grad_(False)
    if layers == "last":
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if linears:
            return list(linears[-1].parameters())
    return list(model.parameters())


def _replay_loss(
    original: nn.Module, tuned: nn.Module, xr: torch.Tensor, yr: torch.Tensor, strategy: str
) -> torch.Tensor:
    logits = tuned(xr)
    if strategy == "replay":
        return F.cross_entropy(logits, yr)
    with torch.no_grad():  # the original model is only read (it may be shared and cached)
        target = F.log_softmax(original(xr).float() / TEMPERATURE, dim=1)
    current = F.log_softmax(logits.float() / TEMPERATURE, dim=1)
    kl = F.kl_div(current, target, log_target=True, reduction="batchmean")
    return kl * TEMPERATURE**2  # keeps the gradient scale independent of the temperature


def _reached(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, n: int, settings: CorrectionSettings
) -> bool:
    """Whether the first ``n`` rows of ``x`` (the examples) have their true label at ``stop_at`` or more,
    and at least ``view_share`` of the rest (their views) are read right; never for ``stop_at`` 1.0."""
    if settings.stop_at >= 1.0:
        return False
    with torch.inference_mode():
        probs = torch.softmax(model(x).float(), dim=1)
    if not bool((probs[:n].gather(1, y[:n].view(-1, 1)) >= settings.stop_at).all()):
        return False
    if settings.view_share <= 0 or len(y) == n:
        return True
    return float((probs[n:].argmax(1) == y[n:]).float().mean()) >= settings.view_share


def _examples(x: torch.Tensor, labels: int | list[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28) or x.shape[0] == 0:
        raise ConfigError("examples", f"expected images (N, 1, 28, 28), got {tuple(x.shape)}")
    y = torch.as_tensor([labels] if isinstance(labels, int) else labels, dtype=torch.int64).reshape(-1)
    if y.shape[0] != x.shape[0]:
        raise ConfigError("labels", f"{x.shape[0]} images but {y.shape[0]} labels")
    if int(y.min()) < 0 or int(y.max()) > 9:
        raise ConfigError("labels", "a label must be a digit 0-9")
    return x.detach().to(torch.float32), y


def _probabilities(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    device = next(model.parameters()).device
    with torch.inference_mode():
        return torch.softmax(model(x.to(device)).float(), dim=1).cpu()
