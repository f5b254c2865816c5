"""How unlike the digits a model learned from an input is, in the model's own features.

The shape rules of :mod:`notadigit` refuse taps, blobs, dashes and most
scribbles, and the model's confidence catches little more: a drawn letter
"A" was read as a 4 at 99.7%, a "#" as a 4 at 86%, a scribble that passed
the shape rules as a 4 at 91%. A softmax says which digit an input is most
like, not whether it is like any digit.

This check measures the second: deep nearest neighbours (Sun et al., "Out-of-
distribution detection with deep nearest neighbors", ICML 2022). The input's
features at the last layer's input (the network's own description of it,
L2-normalised) are compared with those of :data:`REFERENCE_IMAGES` training
images; its distance is 1 - the cosine similarity of its :data:`K`-th nearest
one. A threshold is set per model, at the :data:`QUANTILE` of the same
distance over :data:`CALIBRATION_IMAGES` test digits, so it means the same for
an MLP and a CNN: about 1 real digit in 100 is warned about.

Measured on the quick default model (CNN 8-32, seed 0, real MNIST,
2026-12-05, ``scripts/novelty_check.py``: each set drawn on the canvas and
read as the Draw page reads it; the share of those read, not refused by the
shape rules, that were warned about): MNIST test digits 0.2% of 400 (of the
calibration set itself), drawn
digits 0.5% of 200, small drawn 2.0%, against the edges 0.5%, font glyphs
1.0%; letters drawn as strokes (40 each) "A" 80%, "E" 78%, "F" and "X" 100%,
"N" 75%, "K" 68%, "#" 30%, "M" "R" "W" 15-18%, "H" 8%, "Y" none (a "Y" is
a fair 4 or 9); scribbles 77% and random strokes 61% of those that passed
the shape rules. A warning, not a refusal: the prediction is still shown,
since a real digit is sometimes warned about.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import RunConfig
from .data import load_data
from .errors import DatasetUnavailable
from .memory import memory_of

K = 10  # the neighbour whose distance counts (the k-th nearest)
REFERENCE_IMAGES = 5_000  # training images the input is compared with
CALIBRATION_IMAGES = 2_000  # test digits that set the threshold
QUANTILE = 0.99  # of their distances: about 1 real digit in 100 is warned about
BATCH = 500


@dataclass(frozen=True)
class NoveltyIndex:
    """A model's reference features (``(n, d)``, unit length) and the distance beyond which it warns."""

    features: torch.Tensor
    threshold: float

    def distance(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """1 - cosine similarity to the :data:`K`-th nearest reference, per image of ``x`` (N, 1, 28, 28)."""
        return _distances(features(model, x), self.features)

    def warning(self, model: nn.Module, x: torch.Tensor) -> str | None:
        """The message for one input ``x`` ``(1, 1, 28, 28)`` beyond the threshold, else None.

        None too for an input the model's memory reads (a drawing the user taught).
        """
        remembered = memory_of(model)
        if remembered is not None and bool((remembered.nearest(x.flatten(1)) >= 0).any()):
            return None
        far = float(self.distance(model, x)[0])
        if far <= self.threshold:
            return None
        return (
            "This does not look much like the digits the model learned from (it is further from them than "
            f"{QUANTILE:.0%} of real test digits are), so its answer is likely a guess. If it is a digit, "
            "draw it again, one digit, large and plain."
        )


def features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input of ``model``'s last layer (a Linear) for each image, L2-normalised: ``(N, d)``.

    The model's layers but the last, run as a new ``nn.Sequential`` over the
    same modules: no hook is put on the model, which other sessions may be
    running at the same time, and its memory (a hook on the whole model) is
    left out.
    """
    if not isinstance(model, nn.Sequential) or len(model) < 2 or not isinstance(model[-1], nn.Linear):
        raise ValueError("the model is not a sequence of layers ending in a Linear layer")
    body = nn.Sequential(*list(model)[:-1])  # not model[:-1]: a subclass may not rebuild from a dict
    with torch.inference_mode():
        out = torch.cat([body(chunk).flatten(1) for chunk in x.split(BATCH)])
    return F.normalize(out.float(), dim=1)


def build(model: nn.Module, train_x: torch.Tensor, test_x: torch.Tensor) -> NoveltyIndex:
    """The index of ``model`` (in eval mode): references from ``train_x``, the threshold from ``test_x``.

    The first :data:`REFERENCE_IMAGES` and :data:`CALIBRATION_IMAGES` of each
    are used (the splits are already shuffled, or the caller picks).
    """
    reference = features(model, train_x[:REFERENCE_IMAGES])
    calibration = _distances(features(model, test_x[:CALIBRATION_IMAGES]), reference)
    return NoveltyIndex(reference, float(torch.quantile(calibration, QUANTILE)))


def for_run(model: nn.Module, cfg: RunConfig, root: str | None = None) -> NoveltyIndex | None:
    """:func:`build` on the run's own training and test splits; None where it cannot be built.

    That is a model that does not end in a Linear layer, or data that cannot
    be loaded: the prediction is then shown with its confidence warning only.
    """
    try:
        data = load_data(cfg.dataset, cfg.val_fraction, cfg.seed, root)
        train_x, _ = data.train.tensors()
        test_x, _ = data.test.tensors()
        return build(model, train_x, test_x)
    except (DatasetUnavailable, ValueError):
        return None


def _distances(query: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    k = min(K, len(reference))
    out = [1.0 - (chunk @ reference.T).topk(k, dim=1).values[:, -1] for chunk in query.split(BATCH)]
    return torch.cat(out)
