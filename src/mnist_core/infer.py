"""Turn a drawing, photo or upload into the model's input, and predict.

MNIST digits were made in a precise way: white ink on black, the digit scaled
to fit a 20x20 box keeping its aspect ratio (antialiased), pasted into 28x28
and shifted so that its centre of mass sits at pixel (14, 14). A model only
recognises digits that look like that, so every input goes through the same
steps here: decode -> "ink" map in [0, 1] -> crop to the digit -> fit -> centre
-> :func:`data.normalize`, exactly as in training.

What counts as ink, and where the digit is, is decided from the image itself
(:mod:`mnist_core.ink`): the canvas, scans and photos with dark or light ink,
shadows and specks all work.

For speed, the analysis (ink, blobs, the digit's box) runs on the image
area-averaged to at most :data:`ANALYSIS_SIDE` pixels per side (a 280x280
canvas at 140x140); a digit found small there is read again from the
original pixels around it, so the fit always gets enough of them.

Fashion-MNIST images are product photos, not strokes: for ``"fashion"`` the
object is measured against the image border, scaled to 28 px and centred by
its bounding box, as Zalando's were.

Inputs that hold no digit raise :class:`EmptyImageError`; unreadable ones
raise :class:`InvalidImageError`. Garbage is never turned into a tensor.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from .data import NORMALIZATION, normalize
from .errors import ConfigError, ImageError, NotADigitError
from .explain import method_for, saliency
from .images import ImageSource, decode
from .ink import digit_box, ink_map, refuse_several_digits, refuse_small_drawing
from .notadigit import confidence_warning, refuse_non_digit, stroke_width

if TYPE_CHECKING:
    from .novelty import NoveltyIndex

MAX_DRAWN_COVER = 0.6  # share of the canvas inked; a 0 as large as the canvas with the widest pen covers 0.37
MAX_SOLID_FILL = 0.75  # a compact shape whose box is filled more than this is a blob, not a stroke
_OVERSAMPLE = 4  # stroke width is measured and adjusted at 4x the final resolution
# Images are analysed (ink, blobs, box) area-averaged to at most about this side: a 280x280
# canvas at 140x140 costs a quarter of the work, and a digit drawn across most of it still
# spans 80-100 px, the fit's working size (20 px box x _OVERSAMPLE). Images up to this side are
# read as they are, pixel for pixel (a smaller side would make a 1 px shift of such an image
# change its reading: tests/unit/test_infer_properties.py).
ANALYSIS_SIDE = 160
_DETAIL = 2  # a digit narrower there than this many times its box is read again in more detail


@dataclass(frozen=True)
class _Geometry:
    """How a dataset's images were made, and so what an input must be turned into."""

    box: int  # the longer side of the object is scaled to this many pixels
    centre_of_mass: bool  # centre by mass (MNIST) or by bounding box
    strokes: bool  # thin lines (local background, thickening, blobs refused) or filled objects
    min_stroke: float = 0.0  # stroke width (px at 28x28) below which strokes are thickened
    target_stroke: float = 0.0


# MNIST: 20x20 box, centre of mass at (14, 14) (the real test set's mean is
# (13.99, 14.01)); its stroke width (2 * area / boundary of the >0.5 mask) is
# 2.1 px at the 5th percentile and 2.9 px at the median, so thinner strokes are
# thickened to 2.5 px. Fashion-MNIST: product photos, longer side scaled to 28,
# centred by box; objects are filled, so they are measured against the border.
_GEOMETRY = {
    "mnist": _Geometry(box=20, centre_of_mass=True, strokes=True, min_stroke=2.0, target_stroke=2.5),
    "fashion": _Geometry(box=28, centre_of_mass=False, strokes=False),
}


# ---------------------------------------------------------------- public API


def preprocess(image: ImageSource, dataset: str = "mnist", *, drawn: bool = False) -> torch.Tensor:
    """The model input for ``image``: float32 ``(1, 1, 28, 28)``, normalised as in training.

    ``image`` may be a numpy array ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``
    (uint8, or float in [0, 1]), a PIL image, PNG/JPEG bytes, a binary file
    object (e.g. Streamlit's ``UploadedFile``) or a path. Raises
    :class:`EmptyImageError` when there is no digit to see,
    :class:`NotADigitError` when the ink is not shaped like a digit (a tap, a
    scribble, a dash) and :class:`InvalidImageError` when the input cannot be
    read. ``drawn``: the image is a drawing on the Draw page's canvas, where
    a digit spans at least :data:`~.ink.MIN_DRAWN_FRACTION` of it (a smaller
    mark is a flick of the pen; a photo's digit may be small in it).
    """
    pixels = preprocess_pixels(image, dataset, drawn=drawn)
    return normalize(torch.from_numpy(pixels), dataset).reshape(1, 1, 28, 28)


def preprocess_pixels(
    image: ImageSource, dataset: str = "mnist", *, digit_check: bool = True, drawn: bool = False
) -> np.ndarray:
    """What the model sees, before normalisation: float32 ``(28, 28)`` ink in [0, 1].

    White (1) is ink, black (0) background, framed like the dataset's own
    images. Shown in the UI so users understand a surprising prediction.
    ``digit_check=False`` skips :func:`notadigit.refuse_non_digit` (for
    ``scripts/not_a_digit_study.py``, which measures it). ``drawn``: as in :func:`preprocess`.
    """
    geometry = _geometry(dataset)
    gray, alpha = decode(image)
    if drawn and alpha is not None and float(np.mean(alpha > 0.5)) > MAX_DRAWN_COVER:
        # Ink everywhere leaves no background to tell it from: it would be called blank.
        raise NotADigitError("This does not look like a digit: the canvas is almost all ink. Clear it and "
                             "draw one digit with a line.")
    factor = math.ceil(max(gray.shape) / ANALYSIS_SIDE)
    crop, box = _digit_crop(_reduce(gray, factor), _reduce(alpha, factor), geometry, factor)
    if factor > 1 and max(crop.shape) < _DETAIL * geometry.box:
        crop = _detailed_crop(gray, alpha, box, factor, geometry, fallback=crop)
    patch = _fit(crop, geometry)
    height, width = patch.shape
    compact = min(height, width) > max(height, width) / 2
    if geometry.strokes and compact and float(patch.mean()) > MAX_SOLID_FILL:
        what = "This does not look like a digit: it is a filled shape, not a line. "
        raise NotADigitError(what + "Draw the digit with a line.", photo=what + "Photograph a digit written "
                             "with a pen or a marker.")
    pixels = _place(patch, geometry)
    if geometry.strokes and digit_check:
        refuse_non_digit(pixels)  # a tap, a scribble, a dash: NotADigitError
    if drawn:  # after the shape rules: a tap is a dot, whatever its size
        refuse_small_drawing(box, factor, max(gray.shape))
    return pixels


def _reduce(plane: np.ndarray | None, factor: int) -> np.ndarray | None:
    """``plane`` ``(H, W)`` area-averaged by ``factor`` (``(ceil(H / f), ceil(W / f))``)."""
    if plane is None or factor <= 1:
        return plane
    height, width = plane.shape
    if factor <= 3 and height % factor == 0 and width % factor == 0:
        # The mean of the factor^2 strided sub-grids: the same values, 2.5x faster than PIL (a canvas).
        grids = [plane[dy::factor, dx::factor] for dy in range(factor) for dx in range(factor)]
        total = grids[0] + grids[1]  # summed in place after the first two: fewer temporaries
        for grid in grids[2:]:
            total += grid
        total *= 1.0 / factor**2
        return total
    return np.asarray(Image.fromarray(plane).reduce(factor), dtype=np.float32)


def _digit_crop(
    gray: np.ndarray, alpha: np.ndarray | None, geometry: _Geometry, scale: int = 1
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The digit's ink, cropped, and its box ``(top, bottom, left, right)`` in ``gray``'s pixels.

    ``scale``: how many original pixels one pixel of ``gray`` stands for, so
    that "too small to be a digit" means the same at any working resolution.
    Raises :class:`EmptyImageError` / :class:`SeveralDigitsError` when there
    is no single digit to read.
    """
    ink = ink_map(gray, alpha, geometry.strokes)
    (top, bottom, left, right), blobs = digit_box(ink, scale)
    if geometry.strokes:
        refuse_several_digits(blobs)
    return ink[top:bottom, left:right], (top, bottom, left, right)


def _detailed_crop(
    gray: np.ndarray,
    alpha: np.ndarray | None,
    box: tuple[int, int, int, int],
    factor: int,
    geometry: _Geometry,
    fallback: np.ndarray,
) -> np.ndarray:
    """A digit found small in the reduced image, read again from the original pixels around it.

    A small digit in a big photo would otherwise reach the fit with fewer
    pixels than the fit needs. The region is the reduced box grown by half its
    side on every side (some paper around the ink for the background and
    threshold estimates), taken from the original planes and reduced only as
    far as keeps the digit at least as large as the fit's working size. The
    decision that there is one digit was made on the whole image; if the
    region alone cannot be read (too little paper left to tell ink from
    background), the reduced crop ``fallback`` is used.
    """
    top, bottom, left, right = box
    side = max(bottom - top, right - left)
    margin = side // 2 + 1
    rows = slice(max(0, (top - margin) * factor), min(gray.shape[0], (bottom + margin) * factor))
    cols = slice(max(0, (left - margin) * factor), min(gray.shape[1], (right + margin) * factor))
    detail = max(1, side * factor // (geometry.box * _OVERSAMPLE))
    region_alpha = None if alpha is None else _reduce(alpha[rows, cols], detail)
    try:
        crop, _ = _digit_crop(_reduce(gray[rows, cols], detail), region_alpha, geometry, detail)
    except ImageError:
        return fallback
    return crop


def to_display(x: torch.Tensor, dataset: str = "mnist") -> np.ndarray:
    """Undo normalisation of one input (784 values, e.g. ``(1, 1, 28, 28)``) -> uint8 ``(28, 28)``."""
    if x.numel() != 28 * 28:
        raise ValueError(f"to_display expects one 28x28 image, got a tensor of shape {tuple(x.shape)}.")
    mean, std = NORMALIZATION[_geometry_name(dataset)]
    pixels = x.detach().to("cpu", torch.float32).reshape(28, 28) * std + mean
    return (pixels.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).numpy()


@dataclass(frozen=True)
class Prediction:
    """One image's prediction: class probabilities (10), the argmax and its probability.

    ``warning`` says when the model is unsure (``notadigit.confidence_warning``):
    shown beside the prediction, as the input may not be a digit at all.
    """

    probabilities: tuple[float, ...]
    label: int
    confidence: float
    seconds: float  # wall time of the forward pass, device transfers included
    warning: str | None = None


def predict(model: torch.nn.Module, x: torch.Tensor) -> Prediction:
    """Classify one preprocessed image ``x`` of shape ``(1, 1, 28, 28)``.

    ``model`` must already be in eval mode: cached models are shared between
    threads, so flipping their mode here would race with other users.
    """
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(
            f"predict takes one image of shape (1, 1, 28, 28), got {tuple(x.shape)}; "
            "use predict_batch for several."
        )
    start = time.perf_counter()
    probs = predict_batch(model, x)[0].tolist()  # one conversion, not ten (10-20 us of a 0.1 ms predict)
    seconds = time.perf_counter() - start
    label = max(range(len(probs)), key=probs.__getitem__)  # the first of equal maxima, as torch.argmax
    return Prediction(tuple(probs), label, probs[label], seconds, confidence_warning(probs[label]))


def predict_batch(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class probabilities, float32 ``(N, 10)`` on the CPU, for images ``x`` ``(N, 1, 28, 28)``.

    Runs under ``torch.inference_mode()`` on the model's device; the model is
    neither moved nor switched between train and eval.
    """
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(
            f"Expected images of shape (N, 1, 28, 28), got {tuple(x.shape)}; run preprocess first."
        )
    if any(m.training for m in model.modules()):
        raise ValueError(
            "The model is in training mode: call model.eval() once before caching it for predictions."
        )
    tensor = next(iter(model.parameters()), None)
    if tensor is None:
        tensor = next(iter(model.buffers()), None)
    device = tensor.device if tensor is not None else torch.device("cpu")
    dtype = tensor.dtype if tensor is not None and tensor.is_floating_point() else torch.float32
    with torch.inference_mode():
        logits = model(x.to(device=device, dtype=dtype))
        if logits.ndim != 2 or tuple(logits.shape) != (x.shape[0], 10):
            raise ValueError(
                f"The model returned shape {tuple(logits.shape)}; expected ({x.shape[0]}, 10) logits."
            )
        probs = torch.softmax(logits.float(), dim=1).cpu()
    if not torch.isfinite(probs).all():
        raise ValueError("The model produced NaN or infinite outputs; its weights are probably corrupt.")
    return probs


@dataclass(frozen=True, eq=False)
class Reading:
    """One image read by one model: the user action "read my drawing" (the Draw page, ``predict``).

    ``x`` is the model input ``(1, 1, 28, 28)`` and ``pixels`` what the model
    sees, float32 ``(28, 28)`` ink in [0, 1] (shown beside the prediction).
    ``prediction`` is None when the model cannot read it (NaN outputs, a wrong
    shape): ``error`` says why, and ``x`` still serves other runs. ``saliency``
    (the predicted class's map, :func:`explain.saliency`) and its ``method``
    only when asked for.
    """

    x: torch.Tensor
    pixels: np.ndarray
    prediction: Prediction | None = None
    saliency: np.ndarray | None = None
    method: str = ""
    error: str = ""


def read(
    model: torch.nn.Module, image: ImageSource, dataset: str = "mnist", *, explain: bool = False,
    drawn: bool = False, novelty: Callable[[], NoveltyIndex | None] | None = None,
) -> Reading:
    """Prepare ``image`` for ``dataset`` and read it with ``model`` (in eval mode); one call per drawing.

    Raises :class:`ImageError` (with its message for the user) when the image
    holds no digit to read; a model that cannot read it is a :class:`Reading`
    without a prediction, not an exception. ``drawn``: a canvas drawing (:func:`preprocess`).
    ``novelty`` gives the model's :class:`~.novelty.NoveltyIndex` (called once
    the image holds a digit to read, as building one takes a second); an input
    unlike the digits it learned from then gets its warning (instead of the
    confidence one).
    """
    x = preprocess(image, dataset, drawn=drawn)
    pixels = to_display(x, dataset).astype(np.float32) / 255.0
    try:
        pred = predict(model, x)
        index = novelty() if novelty is not None else None
        unlike = index.warning(model, x) if index is not None else None
        if unlike is not None:
            pred = dataclasses.replace(pred, warning=unlike)
        heat = saliency(model, x, pred.label) if explain else None
    except ValueError as exc:  # a model that returns NaN or the wrong shape
        return Reading(x, pixels, error=str(exc))
    return Reading(x, pixels, pred, heat, method_for(model) if explain else "")


# ------------------------------------------------------------------ geometry


def _geometry_name(dataset: str) -> str:
    if dataset not in _GEOMETRY or dataset not in NORMALIZATION:
        raise ConfigError("dataset", f"unknown dataset {dataset!r}; choose one of {', '.join(_GEOMETRY)}.")
    return dataset


def _geometry(dataset: str) -> _Geometry:
    return _GEOMETRY[_geometry_name(dataset)]


# -------------------------------------------------------------- fit and place


def _resize(patch: np.ndarray, fit: int) -> np.ndarray:
    """Scale ``patch`` so its longer side is ``fit``, keeping the aspect ratio (area-averaged)."""
    height, width = patch.shape
    scale = fit / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    out = np.asarray(Image.fromarray(np.asarray(patch, np.float32)).resize(size, method), dtype=np.float32)
    out = np.clip(out, 0.0, 1.0)
    return out / max(float(out.max()), 1e-6)


def _stroke_width(patch: np.ndarray) -> float:
    """Mean stroke width in pixels: 2 * area / boundary length of the >0.5 mask."""
    return stroke_width(patch > 0.5)


def _dilate(patch: np.ndarray, radius: int) -> np.ndarray:
    """Grey dilation by a disk of ``radius``; the result is ``2 * radius`` larger per axis."""
    height, width = patch.shape
    out = np.zeros((height + 2 * radius, width + 2 * radius), patch.dtype)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            if (dy - radius) ** 2 + (dx - radius) ** 2 <= radius * radius + radius:
                window = out[dy : dy + height, dx : dx + width]  # a view: no copy per offset
                np.maximum(window, patch, out=window)
    return out


def _tight(patch: np.ndarray) -> np.ndarray:
    """``patch`` cropped to its non-zero pixels."""
    rows, cols = np.flatnonzero(patch.any(axis=1)), np.flatnonzero(patch.any(axis=0))
    return patch[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _fit(crop: np.ndarray, geometry: _Geometry) -> np.ndarray:
    """The cropped digit scaled into the dataset's box, thin strokes thickened; max 1."""
    fine = _resize(crop, geometry.box * _OVERSAMPLE)
    width = _stroke_width(fine) / _OVERSAMPLE
    if width < geometry.min_stroke:
        radius = max(1, round((geometry.target_stroke - width) * _OVERSAMPLE / 2))
        fine = _tight(_dilate(fine, radius))
    return _resize(fine, geometry.box)


def _place(patch: np.ndarray, geometry: _Geometry) -> np.ndarray:
    """Paste ``patch`` into 28x28: centre of mass at (14, 14) or box centred, never clipped."""
    height, width = patch.shape
    if geometry.centre_of_mass:
        total = float(patch.sum())
        cy = float((patch.sum(axis=1) * np.arange(height)).sum()) / total
        cx = float((patch.sum(axis=0) * np.arange(width)).sum()) / total
        top, left = round(14 - cy), round(14 - cx)
    else:
        top, left = (28 - height) // 2, (28 - width) // 2
    top, left = min(max(top, 0), 28 - height), min(max(left, 0), 28 - width)
    out = np.zeros((28, 28), np.float32)
    out[top : top + height, left : left + width] = patch
    return out
