"""The "my handwriting" set: every drawing a user corrected, with its true label, on disk.

The only module that knows this layout::

    <handwriting>/                     $MNIST_LAB_HANDWRITING, else <checkpoints>/../handwriting
        <id>.png                       28x28 8-bit gray: what the model saw (white ink on black)
        <id>.json                      {"label": 7, "created": ISO 8601, "run_id": ..., "predicted": 1}

``<id>`` is ``<UTC timestamp>-<label>-<random hex>``. The image is written
before its JSON, each through a temporary file and a rename, and a sample
exists only when both files do: a crash leaves at worst an orphan PNG that
listings ignore. Deleting removes the JSON first for the same reason.

The images are the preprocessed 28x28 inputs (:func:`infer.preprocess_pixels`),
so they go straight back into a model: :func:`tensors` normalises them as in
training.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import os
import re
import secrets
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from . import memory
from .data import normalize
from .errors import MnistLabError
from .fsutil import atomic_write
from .infer import predict_batch
from .runs import default_runs_dir

log = logging.getLogger(__name__)

ENV = "MNIST_LAB_HANDWRITING"
_ID_RE = re.compile(r"^\d{8}-\d{6}-\d{6}-\d-[0-9a-f]{6}$")
MAX_JSON_BYTES = 64 * 1024


class HandwritingError(MnistLabError):
    """A sample cannot be saved, found or read."""


@dataclass(frozen=True)
class Sample:
    """One saved drawing and its true label."""

    id: str
    label: int
    created: str  # ISO 8601, UTC
    run_id: str | None  # the run that misread (or read) it when it was saved
    predicted: int | None  # what that run said


def default_dir() -> Path:
    """``$MNIST_LAB_HANDWRITING``, else ``handwriting/`` beside the checkpoints folder."""
    value = os.environ.get(ENV)
    if value:
        return Path(value)
    return default_runs_dir().absolute().parent / "handwriting"


def _dir(root: str | os.PathLike[str] | None) -> Path:
    return Path(root) if root is not None else default_dir()


def add(
    pixels: np.ndarray,
    label: int,
    root: str | os.PathLike[str] | None = None,
    *,
    run_id: str | None = None,
    predicted: int | None = None,
) -> Sample:
    """Save a preprocessed drawing ``pixels`` (float ``(28, 28)`` in [0, 1]) with its true ``label``."""
    pixels = np.asarray(pixels)
    if pixels.shape != (28, 28) or not np.issubdtype(pixels.dtype, np.floating):
        raise HandwritingError(
            f"A sample is a float (28, 28) image in [0, 1], got {pixels.dtype} {pixels.shape}."
        )
    if not np.isfinite(pixels).all() or float(pixels.max()) <= 0:
        raise HandwritingError("A sample must hold a drawing (finite values, some ink).")
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= int(label) <= 9:
        raise HandwritingError(f"A label is a digit 0-9, got {label!r}.")
    folder = _dir(root)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HandwritingError(f"Cannot create the handwriting folder {folder}: {exc.strerror}.") from exc
    now = dt.datetime.now(dt.UTC)
    sample = Sample(
        id=f"{now:%Y%m%d-%H%M%S-%f}-{int(label)}-{secrets.token_hex(3)}",
        label=int(label),
        created=now.isoformat(timespec="seconds"),
        run_id=run_id,
        predicted=None if predicted is None else int(predicted),
    )
    image = Image.fromarray((np.clip(pixels, 0.0, 1.0) * 255.0).round().astype(np.uint8), mode="L")
    meta = {"label": sample.label, "created": sample.created, "run_id": run_id, "predicted": sample.predicted}
    try:
        with atomic_write(folder / f"{sample.id}.png") as f:
            image.save(f, "PNG")
        with atomic_write(folder / f"{sample.id}.json") as f:
            f.write(json.dumps(meta, indent=1).encode())
    except OSError as exc:
        raise HandwritingError(f"Cannot save the sample in {folder}: {exc.strerror or exc}.") from exc
    return sample


def list_samples(root: str | os.PathLike[str] | None = None) -> list[Sample]:
    """Every readable sample, newest first; broken ones are skipped with a warning."""
    folder = _dir(root)
    if not folder.is_dir():
        return []
    out = []
    for path in folder.glob("*.json"):
        sample_id = path.stem
        if not _ID_RE.match(sample_id) or not (folder / f"{sample_id}.png").is_file():
            continue
        try:
            out.append(_read_meta(sample_id, path))
        except HandwritingError as exc:
            log.warning("Skipping broken handwriting sample %s: %s", path, exc)
    return sorted(out, key=lambda s: s.id, reverse=True)


def _read_meta(sample_id: str, path: Path) -> Sample:
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise HandwritingError(f"{path.name} is too large")
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HandwritingError(f"{path.name} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise HandwritingError(f"{path.name} is not a JSON object")
    label = meta.get("label")
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label <= 9:
        raise HandwritingError(f"{path.name} has no valid label")
    predicted = meta.get("predicted")
    run_id = meta.get("run_id")
    return Sample(
        id=sample_id,
        label=label,
        created=str(meta.get("created", "")),
        run_id=run_id if isinstance(run_id, str) else None,
        predicted=predicted if isinstance(predicted, int) and not isinstance(predicted, bool) else None,
    )


def _png(sample_id: str, root: str | os.PathLike[str] | None) -> Path:
    if not isinstance(sample_id, str) or not _ID_RE.match(sample_id):
        raise HandwritingError(f"{sample_id!r} is not a handwriting sample id")
    return _dir(root) / f"{sample_id}.png"


def load_pixels(sample_id: str, root: str | os.PathLike[str] | None = None) -> np.ndarray:
    """A sample's image as float32 ``(28, 28)`` in [0, 1] (white ink on black)."""
    path = _png(sample_id, root)
    try:
        with Image.open(path, formats=["PNG"]) as im:
            im.load()
            array = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    except FileNotFoundError as exc:
        raise HandwritingError(f"No handwriting sample {sample_id}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise HandwritingError(f"{path.name} is not a readable PNG: {exc}") from exc
    if array.shape != (28, 28):
        raise HandwritingError(f"{path.name} is {array.shape[1]}x{array.shape[0]}, not 28x28")
    return array


def delete(sample_id: str, root: str | os.PathLike[str] | None = None) -> None:
    """Remove one sample (its JSON first, so it never half-exists in a listing)."""
    png = _png(sample_id, root)
    meta = png.with_suffix(".json")
    if not meta.exists():
        raise HandwritingError(f"No handwriting sample {sample_id}")
    meta.unlink(missing_ok=True)
    png.unlink(missing_ok=True)


def tensors(
    root: str | os.PathLike[str] | None = None, dataset: str = "mnist"
) -> tuple[torch.Tensor, torch.Tensor]:
    """All samples as model inputs: float32 ``(N, 1, 28, 28)`` normalised as in training, labels ``(N,)``."""
    samples = list_samples(root)
    if not samples:
        return torch.zeros((0, 1, 28, 28)), torch.zeros(0, dtype=torch.int64)
    pixels = np.stack([load_pixels(s.id, root) for s in samples])
    x = normalize(torch.from_numpy(pixels), dataset).unsqueeze(1)
    return x.contiguous(), torch.tensor([s.label for s in samples], dtype=torch.int64)


@dataclass(frozen=True)
class Score:
    """A model's reading of the handwriting set, and how much of it the model remembers.

    A corrected version's memory of drawings (:mod:`memory`) reads the drawings
    it was taught as taught, so its accuracy on the whole set is flattering:
    ``remembered`` counts them, and ``accuracy_unseen`` is the accuracy on the others.
    """

    total: int
    right: int
    remembered: int = 0  # drawings the model's memory decides (those it was taught, or close to them)
    right_unseen: int = 0  # right among the drawings it does not remember

    @property
    def accuracy(self) -> float | None:
        return self.right / self.total if self.total else None

    @property
    def unseen(self) -> int:
        return self.total - self.remembered

    @property
    def accuracy_unseen(self) -> float | None:
        return self.right_unseen / self.unseen if self.unseen else None


def score(model: nn.Module, root: str | os.PathLike[str] | None = None) -> Score:
    """How ``model`` (in eval mode, with its memory if any) reads the handwriting set in ``root``."""
    x, y = tensors(root)
    if len(y) == 0:
        return Score(0, 0)
    right = predict_batch(model, x).argmax(1) == y
    mem = memory.memory_of(model)
    remembered = torch.zeros_like(right) if mem is None else mem.nearest(x).cpu() >= 0
    unseen = right & ~remembered
    return Score(len(y), int(right.sum()), int(remembered.sum()), int(unseen.sum()))


def export_zip(root: str | os.PathLike[str] | None = None) -> bytes:
    """A zip of the set: ``<label>/<id>.png`` per sample and ``labels.csv`` (id, label, created, ...)."""
    samples = list_samples(root)
    folder = _dir(root)
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["id", "file", "label", "created", "run_id", "predicted"])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for s in samples:
            name = f"{s.label}/{s.id}.png"
            zf.write(folder / f"{s.id}.png", name)
            predicted = "" if s.predicted is None else s.predicted
            writer.writerow([s.id, name, s.label, s.created, s.run_id or "", predicted])
        zf.writestr("labels.csv", table.getvalue())
        zf.writestr("README.txt", _README)
    return buffer.getvalue()


_README = """My handwriting, exported from MNIST Lab.

Each <label>/<id>.png is a 28x28 8-bit gray image framed like MNIST (white
ink on black, digit in a 20x20 box, centred by mass): exactly what the model
saw. labels.csv lists every file with its true label, when it was saved, and
which run read it as what.
"""


def summary(samples: list[Sample]) -> dict[str, Any]:
    """How many samples per label (0..9), for a caption."""
    counts = [0] * 10
    for s in samples:
        counts[s.label] += 1
    return {"total": len(samples), "per_label": counts}
