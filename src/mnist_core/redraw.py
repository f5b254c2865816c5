"""Re-drawings: the same digit as a person would draw it again, a little differently.

Someone who teaches the model their continental 1 expects it to read their
*next* one, which is never the same pixels: a little larger or smaller,
slanted a bit more, shifted, drawn with a thicker or thinner pen, every
stroke wobbling slightly. :func:`redraw` makes such repeats of a drawing
with torchvision's ``v2.RandomAffine`` (rotation, slant as an x shear,
scale, shift), a stroke-width change (a blend towards a 3x3 grey dilation or
erosion) and ``v2.ElasticTransform`` (a small smooth wobble), and then puts
each one through the app's own preprocessing again (crop, fit into the 20x20
box, centre of mass at the centre), as a new drawing on the canvas would be.

Used to measure whether a correction generalises (``scripts/correction_study.py``,
the Draw page's strip of re-drawings) and, with other seeds, as the views a
correction learns from (:mod:`mnist_core.online`).

Pixels are float ``(28, 28)`` ink in [0, 1] (1 is ink), as
:func:`infer.preprocess_pixels` returns them; the ``*_inputs`` functions take
and return normalised model inputs ``(N, 1, 28, 28)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from .data import NORMALIZATION, normalize
from .errors import ImageError
from .infer import preprocess_pixels


@dataclass(frozen=True)
class Habit:
    """How much one repeat of a drawing differs from another (defaults: a person redrawing a digit)."""

    degrees: float = 8.0  # rotation, +- degrees
    slant: float = 12.0  # x shear, +- degrees (italic or upright)
    scale: tuple[float, float] = (0.85, 1.1)  # size on the canvas (the preprocessing refits it)
    shift: float = 0.08  # fraction of the side
    stroke: float = 0.8  # pen width: blend up to this far towards a dilation (+) or an erosion (-)
    wobble: float = 40.0  # ElasticTransform alpha (pixels of displacement before smoothing)
    smooth: float = 5.0  # ElasticTransform sigma: larger is a smoother wobble


HABIT = Habit()


def redraw(
    pixels: np.ndarray | torch.Tensor, n: int, seed: int = 0, dataset: str = "mnist", habit: Habit = HABIT
) -> np.ndarray:
    """``n`` re-drawings of ``pixels`` ``(28, 28)``: float32 ``(n, 28, 28)`` in [0, 1], seeded.

    Each is preprocessed again like a fresh drawing; one the preprocessing
    refuses (a stroke eroded away) is kept as transformed.
    """
    base = torch.as_tensor(np.asarray(pixels, np.float32)).reshape(1, 1, 28, 28)
    affine = v2.RandomAffine(
        degrees=habit.degrees, translate=(habit.shift, habit.shift), scale=habit.scale,
        shear=(-habit.slant, habit.slant, 0.0, 0.0), interpolation=v2.InterpolationMode.BILINEAR,
    )  # fmt: skip
    elastic = v2.ElasticTransform(alpha=habit.wobble, sigma=habit.smooth)
    out = np.empty((n, 28, 28), np.float32)
    with torch.random.fork_rng(devices=[]):  # torchvision draws from the global generator: seed, then restore
        torch.manual_seed(seed)
        for i in range(n):
            strength = float(torch.empty(()).uniform_(-habit.stroke, habit.stroke))
            img = elastic(affine(_pen(base, strength)))[0, 0].clamp(0.0, 1.0).numpy()
            out[i] = _as_drawn(img, dataset)
    return out


def redraw_inputs(
    x: torch.Tensor, n: int, seed: int = 0, dataset: str = "mnist", habit: Habit = HABIT
) -> torch.Tensor:
    """``n`` re-drawings of each normalised input ``x`` ``(N, 1, 28, 28)``: ``(N * n, 1, 28, 28)``."""
    mean, std = NORMALIZATION[dataset]
    pixels = (x.detach().float().cpu() * std + mean).clamp(0.0, 1.0)
    views = [redraw(p[0], n, seed + 7919 * i, dataset, habit) for i, p in enumerate(pixels)]
    return normalize(torch.from_numpy(np.concatenate(views)), dataset).unsqueeze(1)


def _pen(x: torch.Tensor, strength: float) -> torch.Tensor:
    """A thicker (``strength`` > 0) or thinner (< 0) pen: a blend towards a 3x3 grey dilation or erosion."""
    if strength >= 0:
        target = F.max_pool2d(x, 3, stride=1, padding=1)
    else:
        target = -F.max_pool2d(-x, 3, stride=1, padding=1)
    return x + abs(strength) * (target - x)


def _as_drawn(img: np.ndarray, dataset: str) -> np.ndarray:
    """``img`` through the app's preprocessing, as a new drawing on the canvas would go."""
    if float(img.max()) <= 0.05:
        return img
    try:
        return preprocess_pixels(img, dataset, digit_check=False)
    except ImageError:
        return img
