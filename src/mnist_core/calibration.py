"""What each run records of its test, so that runs can be compared later: hits and calibration.

Every run keeps in its ``summary.json`` (:data:`FIELDS`): ``test_correct_bits``,
which test images it classifies correctly, one bit per image
(``numpy.packbits``, base64; 10 000 images take 1 668 characters) and
``test_n``, the number of images; ``ece`` and ``reliability``, a 15-bin
reliability diagram of the top softmax probability against the accuracy in
each bin and the expected calibration error (the bin-count-weighted mean gap).
The training pipeline writes them (:func:`summary_fields`);
:mod:`mnist_core.significance` reads them to test differences between runs.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import CorruptRun, MnistLabError
from .metrics import EvalResult

N_BINS = 15
FIELDS = ("test_correct_bits", "test_n", "ece", "reliability")


class SignificanceError(MnistLabError):
    """Runs that cannot be compared (different test sets, nothing recorded, too few runs)."""


# -- per run ---------------------------------------------------------------------


@dataclass(frozen=True)
class Reliability:
    """A reliability diagram: per bin of top-class confidence, how often the model was right.

    ``edges`` has ``bins + 1`` entries from 0 to 1; ``confidence[i]`` and
    ``accuracy[i]`` are ``None`` for an empty bin. ``ece`` is
    ``sum(count_i / n * |accuracy_i - confidence_i|)``.
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    confidence: tuple[float | None, ...]
    accuracy: tuple[float | None, ...]
    ece: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": list(self.counts),
            "confidence": list(self.confidence),
            "accuracy": list(self.accuracy),
        }

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any]) -> Reliability | None:
        """The diagram stored in a (schema-checked) summary, or None if it has none."""
        rel, ece = summary.get("reliability"), summary.get("ece")
        if not isinstance(rel, Mapping) or ece is None:
            return None
        counts = tuple(rel["counts"])
        edges = tuple(float(e) for e in np.linspace(0.0, 1.0, len(counts) + 1))
        return cls(edges, counts, tuple(rel["confidence"]), tuple(rel["accuracy"]), float(ece))


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = N_BINS) -> Reliability:
    """Reliability diagram and ECE of top-class probabilities ``confidence`` (N,) and hits ``correct`` (N,).

    Bins are equal-width on [0, 1], right-closed (a confidence of exactly 1.0
    falls in the last bin), as in Guo et al. 2017.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=bool)
    if conf.shape != hit.shape or conf.ndim != 1 or conf.size == 0:
        raise SignificanceError(f"Need as many confidences as hits (N > 0), got {conf.shape} and {hit.shape}")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    conf_sum = np.bincount(which, weights=conf, minlength=bins)
    hit_sum = np.bincount(which, weights=hit.astype(np.float64), minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf, mean_acc = conf_sum / counts, hit_sum / counts
    ece = float(np.sum(np.abs(hit_sum - conf_sum)) / conf.size)
    return Reliability(
        edges=tuple(float(e) for e in edges),
        counts=tuple(int(c) for c in counts),
        confidence=tuple(float(v) if n else None for v, n in zip(mean_conf, counts, strict=True)),
        accuracy=tuple(float(v) if n else None for v, n in zip(mean_acc, counts, strict=True)),
        ece=min(1.0, max(0.0, ece)),
    )


def pack_correct(correct: np.ndarray) -> str:
    """``correct`` (N,) bools as base64 of ``numpy.packbits`` (N/8 bytes)."""
    return base64.b64encode(np.packbits(np.asarray(correct, dtype=bool)).tobytes()).decode("ascii")


def unpack_correct(text: str, n: int) -> np.ndarray:
    """The (N,) bool vector written by :func:`pack_correct`; CorruptRun if it does not hold ``n`` bits."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise CorruptRun("test_correct_bits in summary.json is not base64") from None
    if len(raw) != (n + 7) // 8:
        raise CorruptRun(f"test_correct_bits holds {len(raw) * 8} bits, not the {n} of test_n")
    return np.unpackbits(np.frombuffer(raw, dtype=np.uint8), count=n).astype(bool)


def summary_fields(result: EvalResult, labels: Sequence[int] | np.ndarray) -> dict[str, Any]:
    """The new summary keys from one test evaluation (no second pass over the test set)."""
    pred = np.asarray(result.predictions, dtype=np.int64)
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    if pred.shape != y.shape or len(result.confidences) != y.size:
        raise SignificanceError("The evaluation holds no per-image predictions to record.")
    correct = pred == y
    rel = reliability(np.asarray(result.confidences), correct)
    return {
        "test_correct_bits": pack_correct(correct),
        "test_n": int(y.size),
        "ece": rel.ece,
        "reliability": rel.to_dict(),
    }
