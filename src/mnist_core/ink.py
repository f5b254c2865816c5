"""Where the ink is: a picture's gray and alpha planes -> the digit's ink in [0, 1] and its box.

The first half of :func:`mnist_core.infer.preprocess_pixels`. What counts as
ink is decided from the image itself, so the canvas (black stroke on a
transparent background, or white on opaque black), scans and photos (dark ink
on light paper, light chalk on a dark board) all work:

* transparency: transparent pixels are background; when most of the image is
  transparent, or its opaque pixels are all one colour, the opacity *is* the
  drawing (this is the canvas default, whose RGB is all zero);
* polarity: the background is the majority of the pixels, so the ink is
  whichever side (darker or lighter) reaches furthest from the median;
* uneven lighting: the background level is estimated per block of an 8x8 grid
  and subtracted, then an Otsu threshold (and the measured pixel noise)
  separates ink from paper grain;
* noise: specks far smaller than the digit are dropped; images whose ink is
  all specks, too faint or too small raise :class:`EmptyImageError`, and
  several digits side by side :class:`SeveralDigitsError`.

Filled objects (Fashion-MNIST's product photos, ``strokes=False``) are
measured against the image border instead.
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
from PIL import Image

from .errors import EmptyImageError, SeveralDigitsError

MIN_CONTRAST = 0.15  # ink must differ from the background by this much (0..1 scale)
NOISE_SIGMAS = 6.0  # ... and by this many times the pixel noise
MIN_DIGIT_FRACTION = 0.02  # a digit's bounding box spans at least this share of the larger side
# ... of a drawing on the Draw page's canvas: the smallest drawn digits measured were 18% of it, a flick
# of a 6 px pen 4-12 px long (a 6x10 blob read as an 8 with 71%) is 4-6%.
MIN_DRAWN_FRACTION = 0.08
TOO_SMALL = "The stroke is too small to be a digit: draw the digit larger, filling most of the canvas"
MIN_INK_PIXELS = 4  # fewer strong ink pixels than this is a dot, not a digit
SPECK_FRACTION = 0.05  # blobs lighter than this share of the largest blob are noise
MIN_MAIN_BLOB = 0.25  # the largest blob holds at least this share of all ink (else: specks, texture)
MIN_DIGIT_SHARE = 0.12  # a blob with this share of the ink may be a digit of its own...
MIN_DIGIT_HEIGHT = 0.5  # ...when it is at least this tall relative to the tallest blob
_GRID = 8  # blocks per side for the background estimate


Blob = tuple[float, int, int, int, int]  # share of all ink, top, bottom, left, right (grid cells)


def ink_map(gray: np.ndarray, alpha: np.ndarray | None, strokes: bool) -> np.ndarray:
    """Gray and alpha ``(H, W)`` in [0, 1] -> ink ``(H, W)`` in [0, 1], 0 the background.

    Raises :class:`EmptyImageError` when nothing stands out of the background.
    """
    return _clean(*_ink_signal(gray, alpha, strokes))


def digit_box(ink: np.ndarray, scale: int = 1) -> tuple[tuple[int, int, int, int], list[Blob]]:
    """Remove specks from ``ink`` (in place); the digit's box ``(top, bottom, left, right)`` and its blobs.

    The size limits are in original pixels, ``scale`` of them per pixel of ``ink``.
    """
    share, blobs = _remove_specks(ink)
    if share < MIN_MAIN_BLOB:
        what = "No single digit found: the image looks like scattered specks or texture. "
        raise EmptyImageError(
            what + "Draw or photograph one digit on a plain background.",
            drawing=what + "Clear the canvas and draw one digit.",
            photo=what + "Photograph one digit on plain paper.",
        )
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    side = _side((top, bottom, left, right), scale)
    strong = np.count_nonzero(ink > 0.5) * scale * scale
    if side < max(2.0, MIN_DIGIT_FRACTION * max(ink.shape) * scale) or strong < MIN_INK_PIXELS:
        raise EmptyImageError(
            TOO_SMALL + " (or crop the photo close around the digit).",
            drawing=TOO_SMALL + ".",
            photo="The digit is too small in this picture: crop the photo close around the digit, so that "
                  "it fills most of the picture.",
        )
    return (top, bottom, left, right), blobs


def _side(box: tuple[int, int, int, int], scale: int) -> int:
    """The larger side of ``box``, in original pixels (``scale`` of them per pixel of the box's image)."""
    top, bottom, left, right = box
    # n reduced pixels span between (n - 2) * scale + 2 and n * scale original ones: take the middle.
    return (max(bottom - top, right - left) - 1) * scale + 1


def refuse_small_drawing(box: tuple[int, int, int, int], scale: int, image_side: int) -> None:
    """A canvas drawing whose digit (``box``, as :func:`digit_box` gives it) is a flick of the pen.

    The whole canvas is the frame the user draws in: a digit spans at least
    :data:`MIN_DRAWN_FRACTION` of its side ``image_side``. A photo's digit may be small in it.
    """
    if _side(box, scale) < MIN_DRAWN_FRACTION * image_side:
        raise EmptyImageError(TOO_SMALL + ".")


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
        what = "There is no digit to read: the image is blank or has too little contrast. "
        raise EmptyImageError(
            what + "Draw a digit first (or upload a sharper, evenly lit photo).",
            drawing=what + "Draw a digit first.",
            photo=what + "Upload a sharper, evenly lit photo of a dark digit on light paper (or a light "
                         "one on dark).",
        )
    threshold = min(max(_otsu(signal), 0.2 * peak), 0.8 * peak)
    level = float(np.median(signal[signal > threshold]))
    floor = min(max(threshold / 2, 4 * noise), threshold)
    ink = np.subtract(signal, floor, dtype=np.float32)
    ink /= max(level - floor, 1e-6)
    return np.clip(ink, 0.0, 1.0, out=ink)


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


def _remove_specks(ink: np.ndarray) -> tuple[float, list[Blob]]:
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


def refuse_several_digits(blobs: list[Blob]) -> None:
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
            what = f"This looks like {len(tall)} digits side by side; the model reads one digit at a time. "
            raise SeveralDigitsError(
                what + "Clear the canvas and draw a single digit (or crop the photo to one digit).",
                drawing=what + "Clear the canvas and draw a single digit.",
                photo=what + "Crop the photo to one digit.",
            )
