"""How unlike the digits a model learned from an input is, in the model's own features.

The shape rules of :mod:`notadigit` refuse taps, blobs, dashes and most
scribbles, and the model's confidence catches little more: a drawn letter
"A" was read as a 4 at 99.7%, a "#" as a 4 at 86%, a scribble that passed
the shape rules as a 4 at 91%. A softmax says which digit an input is most
like, not whether it is like any digit.

This check measures the second: deep nearest neighbours (Sun et al., "Out-of-
distribution detection with deep nearest neighbors", ICML 2022), in every
layer. An input's features in a layer (the output of each activation, and
the last layer's input; a convolution's maps averaged down to 4x4,
L2-normalised) are compared with those of :data:`REFERENCE_IMAGES` training
images; its distance there is 1 - the cosine similarity of its :data:`K`-th
nearest one, and its rank the share of :data:`CALIBRATION_IMAGES` test
digits that are nearer. Its score is its highest rank over the layers; it
is warned about beyond :data:`QUANTILE`: further from the digits than 99% of
real test digits in at least one layer. That means the same for an MLP and
a CNN. As the layers mostly agree, it warns about 1-3% of real test
digits, not 1% per layer added up: of the 2,000 it was set on and of 2,000
others, 2.4% and 2.4% (the quick default), 2.9% and 3.3% (LeNet-5), 2.0%
and 1.8% (MLP 784-512-512-512-10), 1.0% and 0.8% (MLP 784-512-10, one
layer); the last layer alone warned about 1%. That is the price of
catching most drawn letters and stars on a CNN (below).

The last layer alone (the first version) misses much of what a deep model
sees: LeNet-5 ends in an 84-unit tanh layer in which a drawn star or an "X"
sits among the digits, while its convolutions tell them apart. Measured
2026-12-06 (real MNIST, the study's runs and the quick default model, seed
0; each set drawn on the canvas and read as the Draw page reads it; the
share of those the shape rules let through that were warned about, the
last layer alone in brackets; 20 of each letter, 100 digits of each set;
``scripts/novelty_check.py --per-kind 20``, with ``--runs-dir`` and
``--run`` for the study's runs):

- LeNet-5: MNIST test digits 1.0% (0.0%), drawn digits 1.0 (1.0), small
  drawn 0 (0), against the edges 0 (0), font glyphs 1.0 (1.0); letters
  "A" 70% (20), "X" 80 (0), "E" 100 (15), "H" 90 (0), a star 90 (5), "#"
  45 (20), "Y" 0 (0); scribbles 44 (28), random strokes 68 (44).
- the quick default (CNN 8-32): digits 1.0 / 2.0 / 0 / 2.0 / 0% (0.5 /
  1.0 / 0 / 2.0 / 0); "A" 95 (95), "X" 100 (100), "H" 75 (30), "Y" 65
  (5), a star 75 (75); scribbles 67 (56), random strokes 83 (67).
- MLP 784-512-512-512-10: digits 1.0 / 3.0 / 8.1 / 4.0 / 2.0% (0.5 / 0 /
  4.0 / 3.0 / 3.0); "A" 60 (25), "X" 75 (75), a star 95 (0), "#" 75 (25),
  "E" 0 (0); scribbles 61 (28), random strokes 33 (19).

An MLP with one hidden layer has one layer to look in, as before. A warning,
not a refusal: the prediction is still shown, since a real digit is
sometimes warned about (a small one, to a deep MLP, more often).
"""

from __future__ import annotations

import functools
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
QUANTILE = 0.99  # a rank beyond this in any layer warns (1-3% of real test digits: see above)
BATCH = 500
POOL = 4  # a convolution's maps are averaged down to POOL x POOL
MAX_DIMS = 2048  # features of all the layers together, per image (5,000 references: 41 MB)
ACTIVATIONS = (nn.ReLU, nn.Tanh, nn.GELU, nn.Sigmoid, nn.LeakyReLU, nn.ELU, nn.SiLU)
SAME_IN_EVAL = (nn.Dropout, nn.Flatten, nn.Identity)  # after the last activation: its output again


@dataclass(frozen=True)
class NoveltyIndex:
    """A model's references and calibration, one entry per layer looked at, and the score that warns.

    ``features[l]``: the reference images' features in layer ``l``, ``(n, d)``,
    unit length. ``calibration[l]``: the test digits' distances there,
    sorted. ``threshold``: the score (a share, 0-1) beyond which it warns.
    """

    features: tuple[torch.Tensor, ...]
    calibration: tuple[torch.Tensor, ...]
    threshold: float

    def score(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Per image of ``x`` (N, 1, 28, 28): the largest share, over the layers, of the test digits
        nearer to the references than it is."""
        ranks = [
            torch.searchsorted(cal, distances(query, ref), right=True).float() / len(cal)
            for query, ref, cal in zip(features(model, x), self.features, self.calibration, strict=True)
        ]
        return torch.stack(ranks).amax(0)

    def warning(self, model: nn.Module, x: torch.Tensor) -> str | None:
        """The message for one input ``x`` ``(1, 1, 28, 28)`` beyond the threshold, else None.

        None too for an input the model's memory reads (a drawing the user taught).
        """
        remembered = memory_of(model)
        if remembered is not None and bool((remembered.nearest(x.flatten(1)) >= 0).any()):
            return None
        if float(self.score(model, x)[0]) <= self.threshold:
            return None
        return (
            "This does not look much like the digits the model learned from (in its layers it is further "
            f"from them than {QUANTILE:.0%} of real test digits are), so its answer is likely a guess. If it "
            "is a digit, draw it again, one digit, large and plain."
        )


def features(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each looked-at layer's features of each image, L2-normalised: ``(N, d)`` per layer.

    The layers: the output of every activation before the last layer, and
    the last layer's input (a Linear) when it is not one of them. A
    convolution's maps are averaged down to :data:`POOL` x :data:`POOL`; a
    layer wider than its share of :data:`MAX_DIMS` is projected down by a
    fixed random matrix (which keeps cosines close). The model's layers but
    the last run as they are, in a loop over the same modules: no hook is
    put on the model, which other sessions may be running at the same time,
    and its memory (a hook on the whole model) is left out.
    """
    if not isinstance(model, nn.Sequential) or len(model) < 2 or not isinstance(model[-1], nn.Linear):
        raise ValueError("the model is not a sequence of layers ending in a Linear layer")
    body = list(model)[:-1]
    taps = _taps(body)
    cap = max(128, MAX_DIMS // len(taps))
    out: list[list[torch.Tensor]] = [[] for _ in taps]
    with torch.inference_mode():
        for chunk in x.split(BATCH):
            h = chunk
            for i, module in enumerate(body):
                h = module(h)
                if i in taps:
                    out[taps.index(i)].append(_describe(h, cap))
    return tuple(F.normalize(torch.cat(parts), dim=1) for parts in out)


def _taps(body: list[nn.Module]) -> list[int]:
    """The positions in ``body`` whose outputs are looked at (see :func:`features`)."""
    taps = [i for i, m in enumerate(body) if isinstance(m, ACTIVATIONS)]
    last = len(body) - 1
    if not taps or not all(isinstance(m, SAME_IN_EVAL) for m in body[taps[-1] + 1 :]):
        taps.append(last)
    return taps


def _describe(h: torch.Tensor, cap: int) -> torch.Tensor:
    """A layer's output as rows of at most ``cap`` numbers (maps pooled, wide layers projected)."""
    if h.dim() == 4 and h.shape[-1] > POOL:
        h = F.adaptive_avg_pool2d(h, POOL)
    flat = h.flatten(1).float()
    if flat.shape[1] > cap:
        flat = flat @ _projection(flat.shape[1], cap)
    return flat


@functools.lru_cache(maxsize=16)
def _projection(d: int, cap: int) -> torch.Tensor:
    """A fixed Gaussian ``(d, cap)`` matrix: the same for the references and every input."""
    return torch.randn(d, cap, generator=torch.Generator().manual_seed(d * 7919 + cap)) / cap**0.5


def build(model: nn.Module, train_x: torch.Tensor, test_x: torch.Tensor) -> NoveltyIndex:
    """The index of ``model`` (in eval mode): references from ``train_x``, the threshold from ``test_x``.

    The first :data:`REFERENCE_IMAGES` and :data:`CALIBRATION_IMAGES` of each
    are used (the splits are already shuffled, or the caller picks).
    """
    reference = features(model, train_x[:REFERENCE_IMAGES])
    queries = features(model, test_x[:CALIBRATION_IMAGES])
    calibration = tuple(torch.sort(distances(q, r)).values for q, r in zip(queries, reference, strict=True))
    return NoveltyIndex(reference, calibration, threshold=QUANTILE)


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


def distances(query: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """1 - the cosine similarity of each row of ``query`` to its :data:`K`-th nearest row of ``reference``."""
    k = min(K, len(reference))
    out = [1.0 - (chunk @ reference.T).topk(k, dim=1).values[:, -1] for chunk in query.split(BATCH)]
    return torch.cat(out)
