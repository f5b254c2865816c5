"""Tests for mnist_core.data and tests.support.synthetic, on generated IDX files only."""

from __future__ import annotations

import gzip
import hashlib
import struct
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchvision

from mnist_core import data
from mnist_core.data import (
    NORMALIZATION,
    RAW_FILES,
    DataBundle,
    Split,
    augment_batch,
    download_progress,
    is_available,
    load_data,
    load_split,
    normalize,
    raw_folder,
    split_train_val,
)
from mnist_core.errors import DatasetUnavailable, MnistLabError
from tests.support.synthetic import write_dataset

# Small sets written per test: a few hundred ms each.
SMALL_TRAIN, SMALL_TEST = 60, 20


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    data.clear_cache()
    yield
    data.clear_cache()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every URL torchvision opens fails at once (as on a machine without internet); returns the URLs."""
    tried: list[str] = []

    def refuse(request: Any, *args: Any, **kwargs: Any) -> Any:
        tried.append(getattr(request, "full_url", str(request)))
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return tried


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file by hand (optionally gzipped): big-endian magic 0x0000080N, N dims, uint8 data."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    (magic,) = struct.unpack(">I", raw[:4])
    ndim = magic - 0x800
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw[4 + 4 * ndim :], dtype=np.uint8).reshape(dims)


def expected_pixels(path: Path, dataset: str = "mnist") -> torch.Tensor:
    mean, std = NORMALIZATION[dataset]
    pixels = read_idx(path).astype(np.float64) / 255.0
    return torch.from_numpy((pixels - mean) / std).unsqueeze(1)


# ---------------------------------------------------------------- load_split


def test_load_split_shapes_dtypes_and_normalisation(synthetic_data_dir: Path) -> None:
    raw = synthetic_data_dir / "MNIST" / "raw"
    for train, prefix, n in ((True, "train", 1000), (False, "t10k", 200)):
        split = load_split(train=train)
        assert split.x.shape == (n, 1, 28, 28) and split.x.dtype == torch.float32
        assert split.y.shape == (n,) and split.y.dtype == torch.int64
        assert split.x.is_contiguous()
        assert len(split) == n and split.index is None
        expected = expected_pixels(raw / f"{prefix}-images-idx3-ubyte")
        torch.testing.assert_close(split.x.double(), expected, rtol=0, atol=1e-5)
        labels = torch.from_numpy(read_idx(raw / f"{prefix}-labels-idx1-ubyte").astype(np.int64))
        assert torch.equal(split.y, labels)


def test_normalisation_constants_and_background_value(synthetic_data_dir: Path) -> None:
    assert NORMALIZATION["mnist"] == (0.1307, 0.3081)
    background = (0 - 0.1307) / 0.3081
    x = load_split().x
    assert x.min().item() == pytest.approx(background, abs=1e-6)  # black pixels exist in every digit
    assert x.max().item() <= (1 - 0.1307) / 0.3081 + 1e-5


def test_normalize_accepts_uint8_and_unit_floats_alike() -> None:
    pixels = torch.tensor([[0, 255, 128]], dtype=torch.uint8)
    a = normalize(pixels)
    b = normalize(pixels.float() / 255.0)
    assert a.dtype == torch.float32
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a[0, 0], torch.tensor(-0.1307 / 0.3081))


def test_load_split_is_cached(synthetic_data_dir: Path) -> None:
    first = load_split()
    assert load_split() is first
    # The explicit root and the MNIST_DATA_DIR default are the same folder, so the same entry.
    assert load_split(root=synthetic_data_dir) is first
    assert load_split(train=False) is not first
    data.clear_cache()
    assert load_split() is not first


def test_load_split_rejects_an_unknown_dataset() -> None:
    with pytest.raises(DatasetUnavailable, match="cifar"):
        load_split("cifar")


def test_raw_folder_follows_root_then_env(synthetic_data_dir: Path, tmp_path: Path) -> None:
    assert raw_folder("mnist") == synthetic_data_dir / "MNIST" / "raw"
    assert raw_folder("fashion", tmp_path) == tmp_path / "FashionMNIST" / "raw"


# ---------------------------------------------------------------- splits


def test_split_train_val_is_seeded_disjoint_and_covering(synthetic_data_dir: Path) -> None:
    full = load_split()
    train, val = split_train_val(full, 0.1, seed=0)
    again_train, again_val = split_train_val(full, 0.1, seed=0)
    assert torch.equal(train.index, again_train.index) and torch.equal(val.index, again_val.index)
    assert len(val) == 100 and len(train) == 900
    both = torch.cat([train.index, val.index])
    assert torch.equal(both.sort().values, torch.arange(len(full)))  # disjoint and covering
    other_train, other_val = split_train_val(full, 0.1, seed=1)
    assert not torch.equal(val.index, other_val.index)
    assert torch.equal(torch.cat([other_train.index, other_val.index]).sort().values, torch.arange(1000))
    # Subsets share the resident tensors instead of copying them.
    assert train.x is full.x and val.y is full.y


@pytest.mark.parametrize(("fraction", "n_val"), [(0.0, 0), (0.25, 250), (0.5, 500), (0.0555, 56)])
def test_split_sizes(synthetic_data_dir: Path, fraction: float, n_val: int) -> None:
    train, val = split_train_val(load_split(), fraction, seed=3)
    assert (len(train), len(val)) == (1000 - n_val, n_val)


def test_split_rows_and_tensors_agree_with_manual_indexing(synthetic_data_dir: Path) -> None:
    full = load_split()
    train, _ = split_train_val(full, 0.1, seed=0)
    x, y = train.tensors()
    assert torch.equal(x, full.x[train.index]) and torch.equal(y, full.y[train.index])
    positions = torch.tensor([0, 5, 899, 5])
    bx, by = train.rows(positions)
    assert torch.equal(bx, full.x[train.index[positions]]) and torch.equal(by, full.y[train.index[positions]])
    assert torch.equal(bx, x[positions])
    # A split without an index reads rows directly.
    fx, fy = full.rows(positions)
    assert torch.equal(fx, full.x[positions]) and torch.equal(fy, full.y[positions])
    assert full.tensors()[0] is full.x


def test_load_data_returns_a_bundle(synthetic_data_dir: Path) -> None:
    bundle = load_data()
    assert isinstance(bundle, DataBundle) and bundle.dataset == "mnist"
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (900, 100, 200)
    assert bundle.train.x is load_split().x and bundle.test is load_split(train=False)
    expected_train, expected_val = split_train_val(load_split(), 0.1, 0)
    assert torch.equal(bundle.val.index, expected_val.index)
    assert torch.equal(bundle.train.index, expected_train.index)
    assert bundle.to(torch.device("cpu")) is bundle
    other = load_data(val_fraction=0.2, seed=7)
    assert len(other.val) == 200 and not torch.equal(other.val.index[:100], bundle.val.index)


def test_split_to_keeps_its_index() -> None:
    s = Split(torch.zeros(4, 1, 28, 28), torch.arange(4), torch.tensor([1, 3]))
    moved = s.to(torch.device("cpu"))
    assert len(moved) == 2 and torch.equal(moved.rows(torch.tensor([1]))[1], torch.tensor([3]))


# ---------------------------------------------------------------- availability and errors


def test_is_available(synthetic_data_dir: Path, tmp_path: Path) -> None:
    assert is_available()
    assert is_available("mnist", synthetic_data_dir)
    assert not is_available("mnist", tmp_path)
    assert not is_available("fashion", synthetic_data_dir)


def test_is_available_needs_all_four_files(tmp_path: Path) -> None:
    write_dataset(tmp_path, n_train=SMALL_TRAIN, n_test=SMALL_TEST)
    (raw_folder("mnist", tmp_path) / "t10k-labels-idx1-ubyte").unlink()
    assert not is_available("mnist", tmp_path)


def test_missing_files_without_download_raise_a_message_that_says_where(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailable) as err:
        load_split(root=tmp_path, download=False)
    message = str(err.value)
    assert str((tmp_path / "MNIST" / "raw").resolve()) in message
    for name in RAW_FILES:
        assert name in message
    assert "MNIST_DATA_DIR" in message
    assert isinstance(err.value, MnistLabError)


def test_failed_download_raises_dataset_unavailable(tmp_path: Path, no_network: list[str]) -> None:
    with pytest.raises(DatasetUnavailable) as err:
        load_split(root=tmp_path, download=True)
    assert str((tmp_path / "MNIST" / "raw").resolve()) in str(err.value)
    assert no_network, "torchvision should have tried the network"
    assert isinstance(err.value.__cause__, Exception)
    # Nothing half-written that would make the folder look ready, and nothing cached.
    assert not is_available("mnist", tmp_path)
    assert download_progress("mnist", tmp_path) == 0.0
    with pytest.raises(DatasetUnavailable):
        load_split(root=tmp_path, download=True)


@pytest.mark.parametrize("exc", [RuntimeError("no network"), urllib.error.URLError("dns"), OSError("eperm")])
def test_any_download_failure_becomes_dataset_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    def fail(self: Any) -> None:
        raise exc

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", fail)
    with pytest.raises(DatasetUnavailable) as err:
        load_data(root=tmp_path, download=True)
    assert str((tmp_path / "MNIST" / "raw").resolve()) in str(err.value)
    assert type(exc).__name__ in str(err.value)
    assert err.value.__cause__ is exc


def _gz_resources(root: Path) -> list[tuple[str, str]]:
    raw = raw_folder("mnist", root)
    return [(f"{n}.gz", hashlib.md5((raw / f"{n}.gz").read_bytes()).hexdigest()) for n in RAW_FILES]


def test_gz_only_files_load_through_torchvision_extraction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[str]
) -> None:
    write_dataset(tmp_path, n_train=SMALL_TRAIN, n_test=SMALL_TEST, compress=True)
    raw = raw_folder("mnist", tmp_path)
    assert sorted(p.name for p in raw.iterdir()) == sorted(f"{n}.gz" for n in RAW_FILES)
    assert is_available("mnist", tmp_path)
    # torchvision extracts local .gz files when their MD5 matches its list: make the list ours.
    monkeypatch.setattr(torchvision.datasets.MNIST, "resources", _gz_resources(tmp_path))
    split = load_split(root=tmp_path, download=True)
    assert not no_network, "matching .gz files must not touch the network"
    assert split.x.shape == (SMALL_TRAIN, 1, 28, 28)
    torch.testing.assert_close(
        split.x.double(), expected_pixels(raw / "train-images-idx3-ubyte.gz"), rtol=0, atol=1e-5
    )
    labels = read_idx(raw / "train-labels-idx1-ubyte.gz").astype(np.int64)
    assert torch.equal(split.y, torch.from_numpy(labels))
    assert all((raw / n).is_file() for n in RAW_FILES)  # extracted next to the archives
    assert len(load_split(train=False, root=tmp_path, download=False)) == SMALL_TEST


def test_gz_only_files_load_without_download(tmp_path: Path, no_network: list[str]) -> None:
    write_dataset(tmp_path, n_train=SMALL_TRAIN, n_test=SMALL_TEST, compress=True)
    assert is_available("mnist", tmp_path)
    split = load_split(root=tmp_path, download=False)
    assert split.x.shape == (SMALL_TRAIN, 1, 28, 28)


def test_fashion_mnist_path(tmp_path: Path) -> None:
    write_dataset(tmp_path, dataset="fashion", n_train=SMALL_TRAIN, n_test=SMALL_TEST, seed=4)
    assert is_available("fashion", tmp_path) and not is_available("mnist", tmp_path)
    bundle = load_data("fashion", root=tmp_path, download=False)
    assert bundle.dataset == "fashion"
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (54, 6, SMALL_TEST)
    raw = tmp_path / "FashionMNIST" / "raw"
    full = load_split("fashion", root=tmp_path, download=False)
    torch.testing.assert_close(
        full.x.double(), expected_pixels(raw / "train-images-idx3-ubyte", "fashion"), rtol=0, atol=1e-5
    )
    assert NORMALIZATION["fashion"] == (0.2860, 0.3530)
    assert len(data.CLASS_NAMES["fashion"]) == 10


# ---------------------------------------------------------------- download progress


def test_download_progress(tmp_path: Path) -> None:
    assert download_progress("mnist", tmp_path) == 0.0
    raw_folder("mnist", tmp_path).mkdir(parents=True)
    assert download_progress("mnist", tmp_path) == 0.0
    write_dataset(tmp_path, n_train=SMALL_TRAIN, n_test=SMALL_TEST, compress=True)
    assert 0.0 < download_progress("mnist", tmp_path) <= 1.0
    # More bytes than the real download: capped at 1.
    (raw_folder("mnist", tmp_path) / "extra.gz").write_bytes(b"\0" * (data.DOWNLOAD_BYTES["mnist"] + 1))
    assert download_progress("mnist", tmp_path) == 1.0


# ---------------------------------------------------------------- augmentation


def test_augment_batch_keeps_shape_and_dtype_and_changes_images(synthetic_data_dir: Path) -> None:
    x = load_split().x[:32]
    before = x.clone()
    out = augment_batch(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(x, before), "the shared tensor must not be modified in place"
    per_image_change = (out - x).abs().flatten(1).amax(1)
    assert (per_image_change > 0.1).all()
    # Augmentation moves ink around; it does not invent a different range.
    assert out.min() >= x.min() - 1e-5 and out.max() <= x.max() + 1e-5


def test_augment_batch_is_deterministic_for_a_seeded_generator(synthetic_data_dir: Path) -> None:
    x = load_split().x[:16]
    a = augment_batch(x, torch.Generator().manual_seed(42))
    b = augment_batch(x, torch.Generator().manual_seed(42))
    c = augment_batch(x, torch.Generator().manual_seed(43))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_augment_batch_keeps_the_background(synthetic_data_dir: Path) -> None:
    background = (0 - 0.1307) / 0.3081
    blank = torch.full((8, 1, 28, 28), background)
    out = augment_batch(blank, torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, blank)
    # A real digit: corners are background before and stay background after.
    x = load_split().x[:16]
    out = augment_batch(x, torch.Generator().manual_seed(2), max_rotation=12, max_shift=2)
    corners = out[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners < background + 1.0).all()


def test_augment_batch_with_no_change_is_identity(synthetic_data_dir: Path) -> None:
    x = load_split().x[:4]
    out = augment_batch(x, torch.Generator().manual_seed(0), max_rotation=0, max_shift=0, scale_range=(1, 1))
    torch.testing.assert_close(out, x, rtol=0, atol=1e-5)


# ---------------------------------------------------------------- synthetic IDX writer


def test_write_dataset_writes_idx_files_torchvision_reads(tmp_path: Path) -> None:
    root = write_dataset(tmp_path, n_train=50, n_test=30, seed=5)
    raw = root / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(RAW_FILES)
    for prefix, n in (("train", 50), ("t10k", 30)):
        images = (raw / f"{prefix}-images-idx3-ubyte").read_bytes()
        labels = (raw / f"{prefix}-labels-idx1-ubyte").read_bytes()
        assert struct.unpack(">IIII", images[:16]) == (2051, n, 28, 28)
        assert len(images) == 16 + n * 28 * 28
        assert struct.unpack(">II", labels[:8]) == (2049, n)
        assert len(labels) == 8 + n
        counts = np.bincount(np.frombuffer(labels[8:], np.uint8), minlength=10)
        assert counts.tolist() == [n // 10] * 10  # balanced
    ds = torchvision.datasets.MNIST(str(root), train=True, download=False)
    assert ds.data.shape == (50, 28, 28)


def test_write_dataset_is_deterministic_per_seed(tmp_path: Path) -> None:
    def files(root: Path) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in (root / "MNIST" / "raw").iterdir()}

    a = files(write_dataset(tmp_path / "a", n_train=20, n_test=10, seed=3))
    b = files(write_dataset(tmp_path / "b", n_train=20, n_test=10, seed=3))
    c = files(write_dataset(tmp_path / "c", n_train=20, n_test=10, seed=4))
    assert a == b
    assert a["train-images-idx3-ubyte"] != c["train-images-idx3-ubyte"]


def test_write_dataset_compressed_matches_uncompressed(tmp_path: Path) -> None:
    plain = write_dataset(tmp_path / "plain", n_train=20, n_test=10, seed=1) / "MNIST" / "raw"
    packed = write_dataset(tmp_path / "gz", n_train=20, n_test=10, seed=1, compress=True) / "MNIST" / "raw"
    for name in RAW_FILES:
        assert gzip.decompress((packed / f"{name}.gz").read_bytes()) == (plain / name).read_bytes()
    # mtime=0 keeps the archives byte-identical between runs.
    again = write_dataset(tmp_path / "gz2", n_train=20, n_test=10, seed=1, compress=True) / "MNIST" / "raw"
    name = "t10k-images-idx3-ubyte.gz"
    assert (again / name).read_bytes() == (packed / name).read_bytes()
