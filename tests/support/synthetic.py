"""Small generated datasets in the real IDX format, for tests and benchmarks.

The files are written where torchvision looks for them, so code under test
goes through the same ``torchvision.datasets`` loading path as real MNIST.
Each image is a rendered digit glyph, randomly shifted, scaled, rotated and
noised: learnable, and digit-shaped enough to exercise the preprocessing.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

_FOLDERS = {"mnist": "MNIST", "fashion": "FashionMNIST"}


def render_digit(label: int, rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """One uint8 ``(size, size)`` image of the digit ``label``: white ink on black."""
    canvas = Image.new("L", (56, 56), 0)
    font = ImageFont.load_default(size=int(rng.integers(44, 58)))
    draw = ImageDraw.Draw(canvas)
    box = draw.textbbox((0, 0), str(label), font=font, stroke_width=1)
    x = (56 - (box[2] - box[0])) / 2 - box[0] + rng.normal(0, 2)
    y = (56 - (box[3] - box[1])) / 2 - box[1] + rng.normal(0, 2)
    draw.text((x, y), str(label), fill=255, font=font, stroke_width=int(rng.integers(1, 3)), stroke_fill=255)
    canvas = canvas.rotate(float(rng.normal(0, 8)), resample=Image.Resampling.BILINEAR)
    image = np.asarray(canvas.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)
    image += rng.normal(0, 8, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def make_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rendered digits ``(n, 28, 28)`` uint8 and their labels ``(n,)`` uint8."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 10).astype(np.uint8)
    rng.shuffle(labels)
    if n == 0:
        return np.zeros((0, 28, 28), np.uint8), labels
    return np.stack([render_digit(int(lbl), rng) for lbl in labels]), labels


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    """Write a uint8 array in the IDX format (magic 0x0000080N, big-endian dims)."""
    header = struct.pack(">I", 0x800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)


def write_dataset(
    root: str | os.PathLike[str],
    dataset: str = "mnist",
    n_train: int = 1000,
    n_test: int = 200,
    seed: int = 0,
    compress: bool = False,
) -> Path:
    """Write a generated dataset under ``root/<MNIST|FashionMNIST>/raw/``; returns ``root``."""
    raw = Path(root) / _FOLDERS[dataset] / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, s in (("train", n_train, seed), ("t10k", n_test, seed + 1)):
        images, labels = make_digits(n, s)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, compress)
    return Path(root)
