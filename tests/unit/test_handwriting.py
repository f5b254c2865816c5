"""The "my handwriting" set on disk: save, list, read, delete, export, and use as tensors."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from mnist_core import handwriting
from mnist_core.data import normalize
from mnist_core.errors import MnistLabError


def pixels(seed: int = 0) -> np.ndarray:
    """A preprocessed-looking 28x28 image in [0, 1]."""
    image = np.zeros((28, 28), np.float32)
    rng = np.random.default_rng(seed)
    image[4:24, 12:16] = rng.uniform(0.5, 1.0, (20, 4))
    return image


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "handwriting"


def test_a_sample_round_trips(folder: Path) -> None:
    original = pixels()
    sample = handwriting.add(original, 7, folder, run_id="run-1", predicted=1)
    assert (sample.label, sample.run_id, sample.predicted) == (7, "run-1", 1)
    assert handwriting.list_samples(folder) == [sample]
    loaded = handwriting.load_pixels(sample.id, folder)
    assert loaded.shape == (28, 28) and loaded.dtype == np.float32
    np.testing.assert_allclose(loaded, original, atol=0.5 / 255 + 1e-6)  # stored as 8-bit
    assert sorted(p.name for p in folder.iterdir()) == [f"{sample.id}.json", f"{sample.id}.png"]


def test_listing_is_newest_first_and_labels_are_kept(folder: Path) -> None:
    ids = [handwriting.add(pixels(i), label, folder).id for i, label in enumerate([3, 1, 4, 1, 5])]
    listed = handwriting.list_samples(folder)
    assert [s.id for s in listed] == ids[::-1]
    assert [s.label for s in listed] == [5, 1, 4, 1, 3]
    assert handwriting.summary(listed) == {"total": 5, "per_label": [0, 2, 0, 1, 1, 1, 0, 0, 0, 0]}


def test_default_folder_is_beside_the_checkpoints_or_from_the_environment(
    runs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(handwriting.ENV, raising=False)
    assert handwriting.default_dir() == runs_dir.absolute().parent / "handwriting"
    sample = handwriting.add(pixels(), 2)
    assert (runs_dir.parent / "handwriting" / f"{sample.id}.png").is_file()
    monkeypatch.setenv(handwriting.ENV, str(tmp_path / "mine"))
    assert handwriting.default_dir() == tmp_path / "mine"
    assert handwriting.list_samples() == []


def test_half_written_and_foreign_files_are_ignored(folder: Path) -> None:
    good = handwriting.add(pixels(), 1, folder)
    orphan = handwriting.add(pixels(1), 2, folder)
    (folder / f"{orphan.id}.json").unlink()  # a crash between the two writes leaves a lone PNG
    broken = handwriting.add(pixels(2), 3, folder)
    (folder / f"{broken.id}.json").write_text("{not json")
    bad_label = handwriting.add(pixels(3), 4, folder)
    (folder / f"{bad_label.id}.json").write_text(json.dumps({"label": 12}))
    (folder / "notes.json").write_text("{}")
    (folder / ".x.png.123.tmp").write_bytes(b"partial")
    assert handwriting.list_samples(folder) == [good]


def test_delete_removes_the_sample(folder: Path) -> None:
    keep = handwriting.add(pixels(), 1, folder)
    gone = handwriting.add(pixels(1), 2, folder)
    handwriting.delete(gone.id, folder)
    assert handwriting.list_samples(folder) == [keep]
    assert not (folder / f"{gone.id}.png").exists()
    with pytest.raises(handwriting.HandwritingError, match="No handwriting sample"):
        handwriting.delete(gone.id, folder)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "x", "", "20260101-000000-000000-1-zzzzzz"])
def test_ids_cannot_reach_outside_the_folder(folder: Path, bad: str) -> None:
    with pytest.raises(handwriting.HandwritingError, match="not a handwriting sample id"):
        handwriting.load_pixels(bad, folder)
    with pytest.raises(handwriting.HandwritingError):
        handwriting.delete(bad, folder)


def test_tensors_are_normalised_model_inputs(folder: Path) -> None:
    empty_x, empty_y = handwriting.tensors(folder)
    assert empty_x.shape == (0, 1, 28, 28) and empty_y.shape == (0,)
    first = handwriting.add(pixels(), 6, folder)
    handwriting.add(pixels(1), 9, folder)
    x, y = handwriting.tensors(folder)
    assert x.shape == (2, 1, 28, 28) and x.dtype == torch.float32
    assert y.tolist() == [9, 6]
    stored = torch.from_numpy(handwriting.load_pixels(first.id, folder))
    assert torch.allclose(x[1, 0], normalize(stored))


def test_export_is_a_zip_of_pngs_by_label_and_a_csv(folder: Path) -> None:
    samples = [handwriting.add(pixels(i), label, folder, run_id="r") for i, label in enumerate([0, 8])]
    archive = zipfile.ZipFile(io.BytesIO(handwriting.export_zip(folder)))
    names = set(archive.namelist())
    assert {f"{s.label}/{s.id}.png" for s in samples} | {"labels.csv", "README.txt"} == names
    rows = list(csv.DictReader(io.StringIO(archive.read("labels.csv").decode())))
    assert sorted((r["file"], r["label"]) for r in rows) == sorted(
        (f"{s.label}/{s.id}.png", str(s.label)) for s in samples
    )
    assert archive.read(f"0/{samples[0].id}.png") == (folder / f"{samples[0].id}.png").read_bytes()


def test_an_empty_set_exports_an_empty_table(folder: Path) -> None:
    archive = zipfile.ZipFile(io.BytesIO(handwriting.export_zip(folder)))
    assert archive.read("labels.csv").decode().strip() == "id,file,label,created,run_id,predicted"


@pytest.mark.parametrize(
    ("image", "label", "message"),
    [
        (np.zeros((28, 28), np.float32), 1, "some ink"),
        (np.ones((27, 28), np.float32), 1, "28, 28"),
        (np.ones((28, 28), np.uint8), 1, "float"),
        (np.full((28, 28), np.nan, np.float32), 1, "finite"),
        (pixels(), 10, "digit 0-9"),
        (pixels(), True, "digit 0-9"),
        (pixels(), "3", "digit 0-9"),
    ],
)
def test_bad_samples_are_refused(folder: Path, image: np.ndarray, label, message: str) -> None:
    with pytest.raises(handwriting.HandwritingError, match=message) as error:
        handwriting.add(image, label, folder)
    assert isinstance(error.value, MnistLabError)
    assert not folder.exists() or not any(folder.iterdir())


def test_score_says_how_many_drawings_the_memory_remembers_and_the_accuracy_on_the_others(
    folder: Path,
) -> None:
    """Issue 25 audit: a version's memory reads the drawings it was taught as taught, so its accuracy
    on the whole set reads near 100%; the score counts them and gives the accuracy on the rest."""
    from torch import nn

    from mnist_core import memory

    for seed, label in enumerate((7, 7, 1, 1)):
        handwriting.add(pixels(seed), label, folder)
    x, y = handwriting.tensors(folder)

    class Always(nn.Module):  # reads everything as 1
        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.one_hot(torch.ones(inputs.shape[0], dtype=torch.int64), 10).float() * 5

    plain = handwriting.score(Always().eval(), folder)
    assert (plain.total, plain.right, plain.remembered, plain.right_unseen) == (4, 2, 0, 2)
    assert plain.accuracy == plain.accuracy_unseen == 0.5
    sevens = y == 7  # the version was taught the two 7s: its memory holds them, tightly
    mem = memory.Memory(x[sevens].reshape(2, -1), y[sevens], torch.full((2,), 1e-3))
    taught = memory.attach(Always().eval(), mem)
    score = handwriting.score(taught, folder)
    assert (score.total, score.right, score.remembered, score.unseen) == (4, 4, 2, 2)
    assert score.accuracy == 1.0 and score.accuracy_unseen == 1.0  # the two 1s it was not taught
    wrong_ones = memory.attach(
        Always().eval(), memory.Memory(x[~sevens].reshape(2, -1), y[~sevens], torch.full((2,), 1e-3))
    )
    assert handwriting.score(wrong_ones, folder).accuracy_unseen == 0.0  # the 7s it was not taught: wrong
    assert handwriting.score(Always().eval(), folder / "empty").accuracy is None
