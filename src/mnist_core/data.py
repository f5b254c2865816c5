"""Datasets, splits and normalisation: the one place that knows them.

Each split is read once through ``torchvision.datasets`` into a single uint8
tensor, normalised once into float32 ``(N, 1, 28, 28)`` and kept in memory.
Training takes batches by index from that resident tensor: no per-sample
Python work, no DataLoader.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision

from .errors import DatasetUnavailable

# Mean and standard deviation of the training pixels in [0, 1]: used for
# training, evaluation and the preprocessing of drawings alike.
NORMALIZATION: dict[str, tuple[float, float]] = {
    "mnist": (0.1307, 0.3081),
    "fashion": (0.2860, 0.3530),
}
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(i) for i in range(10)),
    "fashion": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
}
_DATASETS = {
    "mnist": torchvision.datasets.MNIST,
    "fashion": torchvision.datasets.FashionMNIST,
}
# Uncompressed file names torchvision reads from <root>/<Class>/raw/.
RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# Sum of the four .gz downloads, for a download progress bar.
DOWNLOAD_BYTES = {"mnist": 11_594_722, "fashion": 30_878_645}

DOWNLOAD_TIMEOUT_S = 30.0

_cache: dict[tuple[str, bool, str], Split] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Split:
    """Images and labels of one split, optionally a subset given by ``index``.

    ``x`` is float32 ``(N, 1, 28, 28)``, normalised; ``y`` is int64 ``(N,)``.
    Both are shared between runs and must never be modified in place.
    """

    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.y) if self.index is None else len(self.index)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The split's images and labels as contiguous tensors (copies a subset)."""
        if self.index is None:
            return self.x, self.y
        return self.x.index_select(0, self.index), self.y.index_select(0, self.index)

    def rows(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch: the images and labels at ``positions`` (0..len-1) of this split."""
        rows = positions if self.index is None else self.index.index_select(0, positions)
        return self.x.index_select(0, rows), self.y.index_select(0, rows)

    def to(self, device: torch.device) -> Split:
        index = None if self.index is None else self.index.to(device)
        return Split(self.x.to(device), self.y.to(device), index)


@dataclass(frozen=True)
class DataBundle:
    """Train, validation and test splits of one dataset."""

    dataset: str
    train: Split
    val: Split
    test: Split

    def to(self, device: torch.device) -> DataBundle:
        if self.train.x.device == device:
            return self
        x, y = self.train.x.to(device), self.train.y.to(device)
        train = Split(x, y, _index_to(self.train.index, device))
        val = Split(x, y, _index_to(self.val.index, device))
        return DataBundle(self.dataset, train, val, self.test.to(device))


def _index_to(index: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    return None if index is None else index.to(device)


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Where datasets live: ``root`` if given, else ``$MNIST_DATA_DIR``, else ``./data``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get("MNIST_DATA_DIR") or "data")


def raw_folder(dataset: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The folder torchvision reads the raw IDX files from."""
    return data_root(root) / _DATASETS[_check_name(dataset)].__name__ / "raw"


def is_available(dataset: str = "mnist", root: str | os.PathLike[str] | None = None) -> bool:
    """Whether all four files are on disk (uncompressed or as ``.gz``)."""
    folder = raw_folder(dataset, root)
    return all((folder / f).is_file() or (folder / f"{f}.gz").is_file() for f in RAW_FILES)


def download_progress(dataset: str = "mnist", root: str | os.PathLike[str] | None = None) -> float:
    """Fraction in [0, 1] of the compressed download already on disk."""
    folder = raw_folder(dataset, root)
    done = sum(p.stat().st_size for p in folder.glob("*.gz")) if folder.is_dir() else 0
    return min(1.0, done / DOWNLOAD_BYTES[dataset])


def missing_message(dataset: str, root: str | os.PathLike[str] | None, reason: str) -> str:
    """What failed and exactly where to put the files."""
    folder = raw_folder(dataset, root).resolve()
    files = ", ".join(f"{f}.gz" for f in RAW_FILES)
    return (
        f"The {dataset} dataset is not available: {reason}. "
        f"Put the four files ({files}) into {folder} "
        "(or their uncompressed copies), or set MNIST_DATA_DIR to a folder that "
        f"contains {folder.parent.name}/raw/ with them, then try again."
    )


def load_split(
    dataset: str = "mnist",
    train: bool = True,
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> Split:
    """The whole train or test split, normalised, cached per process.

    Raises :class:`DatasetUnavailable` when the files are missing and cannot
    be downloaded.
    """
    _check_name(dataset)
    key = (dataset, train, str(data_root(root).resolve()))
    with _cache_lock:
        if key not in _cache:
            _cache[key] = _read(dataset, train, root, download)
        return _cache[key]


def _read(dataset: str, train: bool, root: str | os.PathLike[str] | None, download: bool) -> Split:
    folder = data_root(root)
    if is_available(dataset, root):
        _extract_archives(raw_folder(dataset, root), dataset, root)
    elif not download:
        raise DatasetUnavailable(missing_message(dataset, root, "the files are missing"))
    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            ds = _DATASETS[dataset](str(folder), train=train, download=download)
    except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError...
        raise DatasetUnavailable(missing_message(dataset, root, _reason(exc))) from exc
    images = ds.data  # uint8 (N, 28, 28)
    labels = ds.targets.to(torch.int64)
    return Split(normalize(images, dataset).unsqueeze(1).contiguous(), labels)


def _extract_archives(raw: Path, dataset: str, root: str | os.PathLike[str] | None) -> None:
    """Decompress ``.gz`` files that lack their uncompressed copy (what torchvision reads).

    torchvision only extracts archives whose MD5 it knows, and then only with
    ``download=True``; doing it here makes any complete set of files work offline.
    """
    for name in RAW_FILES:
        target, archive = raw / name, raw / f"{name}.gz"
        if target.is_file() or not archive.is_file():
            continue
        tmp = target.with_name(f".{name}.{os.getpid()}.tmp")
        try:
            with gzip.open(archive, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(tmp, target)
        except (OSError, EOFError) as exc:
            tmp.unlink(missing_ok=True)
            reason = f"cannot extract {archive}: {exc}"
            raise DatasetUnavailable(missing_message(dataset, root, reason)) from exc


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """Bound each network wait of a download (torchvision's urlopen sets none)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _reason(exc: BaseException) -> str:
    """The first and last lines of an error: what failed and why."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = " ".join(dict.fromkeys([lines[0], lines[-1]])) if lines else ""
    return f"{type(exc).__name__}: {text}"


def normalize(pixels: torch.Tensor, dataset: str = "mnist") -> torch.Tensor:
    """uint8 in [0, 255] or float in [0, 1] -> float32 normalised as in training."""
    mean, std = NORMALIZATION[dataset]
    x = pixels.to(torch.float32)
    if pixels.dtype == torch.uint8:
        x = x / 255.0
    return (x - mean) / std


def split_train_val(full: Split, val_fraction: float, seed: int) -> tuple[Split, Split]:
    """Seeded, deterministic split of the training set into train and validation.

    The same (size, fraction, seed) gives the same split on every machine.
    """
    n = len(full)
    n_val = round(n * val_fraction)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    train, val = perm[n_val:].sort().values, perm[:n_val].sort().values
    return Split(full.x, full.y, train), Split(full.x, full.y, val)


def load_data(
    dataset: str = "mnist",
    val_fraction: float = 0.1,
    seed: int = 0,
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> DataBundle:
    """Train/validation/test splits for a run; the tensors are shared and cached."""
    train_full = load_split(dataset, True, root, download)
    test = load_split(dataset, False, root, download)
    train, val = split_train_val(train_full, val_fraction, seed)
    return DataBundle(dataset, train, val, test)


def augment_batch(
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    max_rotation: float = 12.0,
    max_shift: float = 2.5,
    scale_range: tuple[float, float] = (0.85, 1.15),
) -> torch.Tensor:
    """Random small rotation, shift and scale of a whole batch ``(B, 1, H, W)``.

    One affine grid for the batch, so the cost is a single ``grid_sample``;
    uncovered pixels repeat the border, which is background in MNIST.
    """
    b, _, h, w = x.shape
    opts = {"generator": generator, "device": "cpu"}
    angle = (torch.rand(b, **opts) * 2 - 1) * math.radians(max_rotation)
    scale = torch.empty(b).uniform_(*scale_range, generator=generator)
    shift = (torch.rand(b, 2, **opts) * 2 - 1) * (2 * max_shift / torch.tensor([w, h]))
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    ).to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def clear_cache() -> None:
    """Forget the cached splits (tests, or after the files changed)."""
    with _cache_lock:
        _cache.clear()


def _check_name(dataset: str) -> str:
    if dataset not in _DATASETS:
        raise DatasetUnavailable(f"Unknown dataset {dataset!r}; choose one of {', '.join(_DATASETS)}.")
    return dataset

