"""Turn a drawing, photo or upload into the model's input, and predict.

MNIST digits were made in a precise way: white ink on black, the digit scaled
to fit a 20x20 box keeping its aspect ratio (antialiased), pasted into 28x28
and shifted so that its centre of mass sits at pixel (14, 14). A model only
recognises digits that look like that, so every input goes through the same
steps here: decode -> "ink" map in [0, 1] -> crop to the digit -> fit -> centre
-> :func:`data.normalize`, exactly as in training.

What counts as ink is decided from the image itself, so the canvas (black
stroke on a transparent background, or white on opaque black), scans and
photos (dark ink on light paper, light chalk on a dark board) all work:

* transparency: transparent pixels are background; when most of the image is
  transparent, or its opaque pixels are all one colour, the opacity *is* the
  drawing (this is the canvas default, whose RGB is all zero);
* polarity: the background is the majority of the pixels, so the ink is
  whichever side (darker or lighter) reaches furthest from the median;
* uneven lighting: the background level is estimated per block of an 8x8 grid
  and subtracted, then an Otsu threshold (and the measured pixel noise)
  separates ink from paper grain;
* noise: specks far smaller than the digit are dropped; images whose ink is
  all specks, too faint, too small or one solid blob are refused.

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

import math
import time
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import torch
from PIL import Image

from .data import NORMALIZATION, normalize
from .errors import ConfigError, EmptyImageError, ImageError
from .images import ImageSource, decode

MIN_CONTRAST = 0.15  # ink must differ from the background by this much (0..1 scale)
NOISE_SIGMAS = 6.0  # ... and by this many times the pixel noise
MIN_DIGIT_FRACTION = 0.02  # a digit's bounding box spans at least this share of the larger side
MIN_INK_PIXELS = 4  # fewer strong ink pixels than this is a dot, not a digit
SPECK_FRACTION = 0.05  # blobs lighter than this share of the largest blob are noise
MIN_MAIN_BLOB = 0.25  # the largest blob holds at least this share of all ink (else: specks, texture)
MAX_SOLID_FILL = 0.75  # a compact shape whose box is filled more than this is a blob, not a stroke
MIN_DIGIT_SHARE = 0.12  # a blob with this share of the ink may be a digit of its own...
MIN_DIGIT_HEIGHT = 0.5  # ...when it is at least this tall relative to the tallest blob
_GRID = 8  # blocks per side for the background estimate
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


class SeveralDigitsError(ImageError):
    """The image holds several digits side by side; the model reads one at a time."""


def preprocess(image: ImageSource, dataset: str = "mnist") -> torch.Tensor:
    """The model input for ``image``: float32 ``(1, 1, 28, 28)``, normalised as in training.

    ``image`` may be a numpy array ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``
    (uint8, or float in [0, 1]), a PIL image, PNG/JPEG bytes, a binary file
    object (e.g. Streamlit's ``UploadedFile``) or a path. Raises
    :class:`EmptyImageError` when there is no digit to see and
    :class:`InvalidImageError` when the input cannot be read.
    """
    pixels = preprocess_pixels(image, dataset)
    return normalize(torch.from_numpy(pixels), dataset).reshape(1, 1, 28, 28)


def preprocess_pixels(image: ImageSource, dataset: str = "mnist") -> np.ndarray:
    """What the model sees, before normalisation: float32 ``(28, 28)`` ink in [0, 1].

    White (1) is ink, black (0) background, framed like the dataset's own
    images. Shown in the UI so users understand a surprising prediction.
    """
    geometry = _geometry(dataset)
    gray, alpha = decode(image)
    factor = math.ceil(max(gray.shape) / ANALYSIS_SIDE)
    crop, box = _digit_crop(_reduce(gray, factor), _reduce(alpha, factor), geometry, factor)
    if factor > 1 and max(crop.shape) < _DETAIL * geometry.box:
        crop = _detailed_crop(gray, alpha, box, factor, geometry, fallback=crop)
    patch = _fit(crop, geometry)
    height, width = patch.shape
    compact = min(height, width) > max(height, width) / 2
    if geometry.strokes and compact and float(patch.mean()) > MAX_SOLID_FILL:
        raise EmptyImageError(
            "This looks like a filled shape, not a digit: draw the digit with a line, not a blob."
        )
    return _place(patch, geometry)


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
    ink = _clean(*_ink_signal(gray, alpha, geometry.strokes))
    (top, bottom, left, right), blobs = _digit_box(ink, scale)
    if geometry.strokes:
        _refuse_several_digits(blobs)
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
    """One image's prediction: class probabilities (10), the argmax and its probability."""

    probabilities: tuple[float, ...]
    label: int
    confidence: float
    seconds: float  # wall time of the forward pass, device transfers included


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
    return Prediction(tuple(probs), label, probs[label], seconds)


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


# ------------------------------------------------------------------ geometry


def _geometry_name(dataset: str) -> str:
    if dataset not in _GEOMETRY or dataset not in NORMALIZATION:
        raise ConfigError("dataset", f"unknown dataset {dataset!r}; choose one of {', '.join(_GEOMETRY)}.")
    return dataset


def _geometry(dataset: str) -> _Geometry:
    return _GEOMETRY[_geometry_name(dataset)]


# --------------------------------------------------------------- ink and box


def _ink_signal(gray: np.ndarray, alpha: np.ndarray | None, strokes: bool) -> tuple[np.ndarray, float]:
    """Gray and alpha ``(H, W)`` -> ink strength ``(H, W)`` (background 0) and its noise level.

    ``strokes``: the drawing is thin lines, so the background may be estimated
    locally; otherwise (filled objects) it is the colour of the image border.
    """
    if alpha is not None and float(alpha.min()) < 0.99:
        opaque = alpha >= 0.5
        colours = gray[opaque]
        if opaque.mean() < 0.5 or np.ptp(np.percentile(colours, (1, 99))) < 0.1:
            # Mostly transparent, or all one colour: the opaque shape is the drawing (canvas default).
            return _against_level(alpha) if strokes else _against_border(alpha)
        # Mostly opaque with detail (a scan with transparent margins): fill the holes with paper.
        paper = float(np.median(colours))
        gray = alpha * gray + (1.0 - alpha) * paper
    return _flatten(gray, dark_ink=_is_dark_ink(gray)) if strokes else _against_border(gray)


def _against_level(opacity: np.ndarray) -> tuple[np.ndarray, float]:
    """Ink strength of a drawing made of opacity: above the median level (0 on a transparent canvas).

    Opacity has no shadows or gradients, so the local background estimate of
    :func:`_flatten` (about a quarter of a canvas's preprocessing time) has
    nothing to correct: on a transparent canvas it finds 0 everywhere.
    """
    signal = opacity - _median_nonnegative(opacity)
    return np.clip(signal, 0.0, 1.0, out=signal), _noise(opacity)


def _against_border(plane: np.ndarray) -> tuple[np.ndarray, float]:
    """Ink strength of a filled object: distance from the border's median colour (the backdrop)."""
    border = np.concatenate([plane[0], plane[-1], plane[:, 0], plane[:, -1]])
    return np.abs(plane - float(np.median(border))), _noise(plane)


def _top_mean(values: np.ndarray) -> float:
    """Mean of the largest 0.01% (at least 3) values: a peak that ignores single-pixel noise."""
    flat = values.ravel()
    k = min(flat.size, max(3, flat.size // 10_000))
    if values.ndim == 2 and values.shape[0] >= k:
        # The k largest row maxima are k values at least that large, so the k largest values are
        # among the few pixels above them. (np.partition of the whole plane takes milliseconds
        # when most pixels are equal, as on a canvas; sorting the few candidates takes microseconds.)
        row_max = np.sort(values.max(axis=1))
        flat = flat[flat >= row_max[-k]]
    return float(np.sort(flat)[-k:].mean())


def _is_dark_ink(gray: np.ndarray) -> bool:
    """Whether the ink is darker than the background (the median pixel)."""
    background = float(np.median(gray))
    darkest = -_top_mean(-gray)
    lightest = _top_mean(gray)
    return background - darkest > lightest - background


def _noise(plane: np.ndarray) -> float:
    """Standard deviation of pixel noise, from the median difference of neighbours (robust to edges)."""
    diffs = np.abs(np.diff(plane, axis=1 if plane.shape[1] > 1 else 0))
    return _median_nonnegative(diffs) / 0.954 if diffs.size else 0.0  # median |N(0, 2 s^2)| = 0.954 s


def _median_nonnegative(values: np.ndarray) -> float:
    """``np.median`` of values known to be >= 0, without sorting when most of them are 0.

    On a canvas most opacities and most neighbour differences are exactly 0,
    so both middle values are 0; counting non-zeros is a tenth of the cost
    of the partial sort behind ``np.median`` (two of which were a fifth of a
    canvas's preprocessing).
    """
    if 2 * np.count_nonzero(values) < values.size:
        return 0.0
    return float(np.median(values))


def _flatten(gray: np.ndarray, dark_ink: bool) -> tuple[np.ndarray, float]:
    """Subtract a smooth local background so shadows and gradients do not look like ink.

    The background is the 95th (dark ink) or 5th (light ink) percentile of
    each block of an 8x8 grid, the median of its 3x3 neighbourhood (a block
    filled by a thick stroke is outvoted; a linear gradient is kept), then
    interpolated bilinearly. Returns the ink strength, whose background
    median is 0, and the noise level.
    """
    height, width = gray.shape
    rows = np.linspace(0, height, min(_GRID, height) + 1).astype(int)
    cols = np.linspace(0, width, min(_GRID, width) + 1).astype(int)
    grid = _block_percentiles(gray, rows, cols, 95 if dark_ink else 5)
    padded = np.pad(grid, 1, mode="edge")
    shifts = [padded[dy : dy + grid.shape[0], dx : dx + grid.shape[1]] for dy in range(3) for dx in range(3)]
    grid = np.median(shifts, axis=0).astype(np.float32)
    background = np.asarray(Image.fromarray(grid).resize((width, height), Image.Resampling.BILINEAR))
    signal = background - gray if dark_ink else gray - background
    signal -= np.median(signal)  # the percentile sits above (below) the typical paper pixel
    return np.clip(signal, 0.0, 1.0), _noise(gray)


def _block_percentiles(plane: np.ndarray, rows: np.ndarray, cols: np.ndarray, q: float) -> np.ndarray:
    """The ``q``-th percentile (numpy's linear method) of each block ``rows x cols`` of ``plane``.

    ``rows`` and ``cols`` are block edges (``(gh + 1,)`` and ``(gw + 1,)``);
    returns float32 ``(gh, gw)``. All blocks are gathered into one array, the
    smaller ones padded with +inf (which sorts after every real value, so a
    block's k-th smallest stays at index k), and sorted at once: one numpy
    call instead of one ``np.percentile`` per block (64 calls were about a
    third of a canvas's preprocessing).
    """
    heights, widths = np.diff(rows), np.diff(cols)
    row_idx = rows[:-1, None] + np.arange(heights.max())  # (gh, max height)
    col_idx = cols[:-1, None] + np.arange(widths.max())  # (gw, max width)
    valid = (row_idx < rows[1:, None])[:, :, None, None] & (col_idx < cols[1:, None])[None, None, :, :]
    blocks = plane[
        np.minimum(row_idx, plane.shape[0] - 1)[:, :, None, None],
        np.minimum(col_idx, plane.shape[1] - 1)[None, None, :, :],
    ]  # (gh, max height, gw, max width)
    blocks = np.where(valid, blocks, np.inf).transpose(0, 2, 1, 3).reshape(len(heights) * len(widths), -1)
    sizes = np.outer(heights, widths).ravel()
    position = q / 100 * (sizes - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, sizes - 1)
    blocks.sort(axis=1)
    at = np.arange(len(sizes))
    below, above = blocks[at, low], blocks[at, high]
    values = below + (above - below) * (position - low)
    return values.reshape(len(heights), len(widths)).astype(np.float32)


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold on ``values`` (>= 0): the split that maximises between-class variance."""
    top = float(values.max())
    flat = values.ravel()
    inked = flat[flat > 0]  # the zeros (most of a drawing) all fall in bin 0: counted, not binned
    bins = (inked * (256 / top)).astype(np.intp)  # np.histogram's bins, 4x faster
    hist = np.bincount(np.minimum(bins, 255, out=bins), minlength=256)
    hist[0] += flat.size - inked.size
    centres = (np.arange(256) + 0.5) * (top / 256)
    weight = np.cumsum(hist).astype(np.float64)
    mass = np.cumsum(hist * centres)
    total_w, total_m = weight[-1], mass[-1]
    spread = weight * (total_w - weight)  # 0 where one side is empty: no split there
    gap = (total_m * weight - total_w * mass) ** 2
    between = np.divide(gap, spread, out=np.full(256, -1.0), where=spread > 0)
    return float(centres[int(np.argmax(between))])


def _clean(signal: np.ndarray, noise: float) -> np.ndarray:
    """Ink strength -> ink in [0, 1]: refuse blanks, cut paper noise, stretch contrast.

    The ink must stand :data:`MIN_CONTRAST` and ``NOISE_SIGMAS`` noise levels
    above the background. Pixels below half the Otsu threshold (and below
    4 noise levels) become 0; the median ink pixel and everything stronger
    become 1, so pencil and marker look alike.
    """
    peak = _top_mean(signal)
    if not peak >= max(MIN_CONTRAST, NOISE_SIGMAS * noise):
        raise EmptyImageError(
            "There is no digit to read: the image is blank or has too little contrast. "
            "Draw a digit first (or upload a sharper, evenly lit photo)."
        )
    threshold = min(max(_otsu(signal), 0.2 * peak), 0.8 * peak)
    level = float(np.median(signal[signal > threshold]))
    floor = min(max(threshold / 2, 4 * noise), threshold)
    ink = np.subtract(signal, floor, dtype=np.float32)
    ink /= max(level - floor, 1e-6)
    return np.clip(ink, 0.0, 1.0, out=ink)


_Blob = tuple[float, int, int, int, int]  # share of all ink, top, bottom, left, right (grid cells)


def _digit_box(ink: np.ndarray, scale: int = 1) -> tuple[tuple[int, int, int, int], list[_Blob]]:
    """Remove specks from ``ink`` (in place); the digit's box ``(top, bottom, left, right)`` and its blobs.

    The size limits are in original pixels, ``scale`` of them per pixel of ``ink``.
    """
    share, blobs = _remove_specks(ink)
    if share < MIN_MAIN_BLOB:
        raise EmptyImageError(
            "No single digit found: the image looks like scattered specks or texture. "
            "Draw or photograph one digit on a plain background."
        )
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    # n reduced pixels span between (n - 2) * scale + 2 and n * scale original ones: take the middle.
    side = (max(bottom - top, right - left) - 1) * scale + 1
    strong = np.count_nonzero(ink > 0.5) * scale * scale
    if side < max(2.0, MIN_DIGIT_FRACTION * max(ink.shape) * scale) or strong < MIN_INK_PIXELS:
        raise EmptyImageError(
            "The stroke is too small to be a digit: draw the digit larger, filling most of the canvas."
        )
    return (top, bottom, left, right), blobs


def _grid_mass(ink: np.ndarray) -> tuple[np.ndarray, int]:
    """Ink summed over square cells, at most 64x64 of them: ``(mass (gh, gw), cell side)``."""
    cell = max(1, math.ceil(max(ink.shape) / 64))
    height, width = ink.shape
    gh, gw = math.ceil(height / cell), math.ceil(width / cell)
    padded = np.zeros((gh * cell, gw * cell), np.float32)
    padded[:height, :width] = ink
    rows = sum(padded[dy::cell] for dy in range(cell))  # (gh, gw * cell): strided sums beat reshape-sum
    return np.asarray(sum(rows[:, dx::cell] for dx in range(cell)), np.float32), cell


def _components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a boolean ``(H, W)`` mask: ``(labels int32 (H, W), count)``.

    Label 0 is the background; components are numbered 1.. in the raster
    order of their first pixel. Works on runs of consecutive pixels in a row
    (a digit on the 64x64 grid has a few hundred) joined by union-find with
    the runs of the row above that they touch, instead of a pixel-by-pixel
    flood fill in Python, which cost several milliseconds per call.
    """
    height, width = mask.shape
    framed = np.zeros((height, width + 2), np.int8)  # a 0 column either side: every run starts and ends
    framed[:, 1:-1] = mask
    edges = framed[:, 1:] - framed[:, :-1]
    run_rows, starts = np.nonzero(edges == 1)
    ends = np.nonzero(edges == -1)[1]  # exclusive; same raster order as the starts
    # Keys in raster order over all rows. Run b touches run a of the row above (diagonals included,
    # as ends are exclusive) when a starts by b's end and ends at or after b's start, one row up:
    # the runs above that b touches are the consecutive ones from lo[b] to hi[b].
    span = width + 2
    start_key, end_key = run_rows * span + starts, run_rows * span + ends
    lo = np.searchsorted(end_key, start_key - span)
    hi = np.searchsorted(start_key, end_key - span, side="right")
    touching = np.maximum(hi - lo, 0)
    below = np.repeat(np.arange(len(starts)), touching)
    above = lo[below] + np.arange(len(below)) - np.repeat(np.cumsum(touching) - touching, touching)
    parent = list(range(len(starts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in zip(above.tolist(), below.tolist(), strict=True):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)  # the earliest run names the component
    run_label = [0] * len(starts)
    count = 0
    for i in range(len(starts)):
        r = root(i)
        if r == i:
            count += 1
            run_label[i] = count
        else:
            run_label[i] = run_label[r]
    labels = np.zeros((height, width), np.int32)
    labels[mask] = np.repeat(run_label, ends - starts)  # mask's pixels in raster order = runs in order
    return labels, count


def _remove_specks(ink: np.ndarray) -> tuple[float, list[_Blob]]:
    """Zero blobs far lighter than the largest; the largest blob's share of all ink, and the blobs kept.

    Blobs are 8-connected on a grid of at most 64x64 cells, so a stroke broken
    by a faint patch still counts as one blob. Each kept blob is ``(share of
    the kept ink, top, bottom, left, right)``, its box in grid cells (bottom
    and right exclusive).
    """
    mass, cell = _grid_mass(ink)
    height, width = ink.shape
    labels, count = _components(mass > 0)
    ys, xs = np.nonzero(labels)
    which = labels[ys, xs]
    weights = np.bincount(which, weights=mass[ys, xs], minlength=count + 1)
    weights[0] = 0.0
    keep = weights >= SPECK_FRACTION * weights.max()
    keep[0] = False
    if not keep[1:].all():  # a clean drawing has nothing to drop
        cells = keep[labels]
        ink *= np.repeat(np.repeat(cells, cell, axis=0), cell, axis=1)[:height, :width]
    kept = float(weights[keep].sum())
    blobs = []
    for k in np.flatnonzero(keep):  # at most 1 / SPECK_FRACTION blobs
        rows, cols = ys[which == k], xs[which == k]  # rows ascend (raster order)
        box = int(rows[0]), int(rows[-1]) + 1, int(cols.min()), int(cols.max()) + 1
        blobs.append((float(weights[k]) / kept, *box))
    return float(weights.max() / weights.sum()), blobs


def _refuse_several_digits(blobs: list[_Blob]) -> None:
    """Raise :class:`SeveralDigitsError` when the ink's ``blobs`` are two or more digits side by side.

    A digit may be several blobs (a 5's detached top bar, a 4 drawn in two
    strokes) but those overlap in columns or are much shorter than the body.
    Several digits are separate blobs, each with a good share of the ink
    (:data:`MIN_DIGIT_SHARE`) and nearly the full height
    (:data:`MIN_DIGIT_HEIGHT` of the tallest), one after another from left
    to right with no column in common, at the same height.
    """
    blobs = [b for b in blobs if b[0] >= MIN_DIGIT_SHARE]
    if len(blobs) < 2:
        return
    tallest = max(bottom - top for _, top, bottom, _, _ in blobs)
    tall = sorted(
        ((left, right, top, bottom) for _, top, bottom, left, right in blobs
         if bottom - top >= MIN_DIGIT_HEIGHT * tallest),
    )  # fmt: skip
    for (_, right_a, top_a, bottom_a), (left_b, _, top_b, bottom_b) in pairwise(tall):
        shared_rows = min(bottom_a, bottom_b) - max(top_a, top_b)
        if left_b >= right_a and shared_rows >= 0.5 * min(bottom_a - top_a, bottom_b - top_b):
            raise SeveralDigitsError(
                f"This looks like {len(tall)} digits side by side; the model reads one digit at a time. "
                "Clear the canvas and draw a single digit (or crop the photo to one digit)."
            )


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
    mask = np.zeros((patch.shape[0] + 2, patch.shape[1] + 2), bool)
    mask[1:-1, 1:-1] = patch > 0.5
    inner = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    area = int(mask.sum())
    boundary = area - int(inner.sum())
    return 2.0 * area / boundary if boundary else float(area)


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
