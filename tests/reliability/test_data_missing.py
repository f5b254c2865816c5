"""No dataset on disk and no way to download it: the app starts, says what to do, and draws with saved runs.

A run is trained on the generated data first; then ``MNIST_DATA_DIR`` points
at an empty folder and torchvision's downloads fail at once (as they do on a
machine without internet).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from app_helpers import canvas_png, inject, no_exception, open_page, run_until, texts

from mnist_core import data, runs
from mnist_core.config import RunConfig
from mnist_core.pipeline import run_training

INSTRUCTIONS = "Put the four files (train-images-idx3-ubyte.gz"


class MNIST:
    """torchvision.datasets.MNIST on a machine without network: every download fails.

    Named as torchvision's class: ``data.raw_folder`` names the folder after it.
    """

    def __init__(self, *_args: object, **_kwargs: object) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: <urlopen error no network>")


@pytest.fixture
def offline(
    tmp_path: Path, runs_dir: Path, synthetic_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, runs.RunInfo]:
    """A completed run on disk, then an empty data folder and failing downloads."""
    run = run_training(RunConfig(hidden=(32,), epochs=2), runs_dir=runs_dir, data_root=synthetic_data_dir)
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("MNIST_DATA_DIR", str(empty))
    monkeypatch.setattr(data, "_DATASETS", {"mnist": MNIST, "fashion": MNIST})
    data.clear_cache()
    return empty, run


def _folder(empty: Path) -> str:
    return str(empty.resolve() / "MNIST" / "raw")


def test_home_starts_and_says_what_to_do_even_after_a_failed_download(app_path: Path, offline) -> None:
    empty, _run = offline
    at = open_page(app_path)
    no_exception(at)
    warning = "\n".join(w.value for w in at.warning)
    assert INSTRUCTIONS in warning and _folder(empty) in warning and "MNIST_DATA_DIR" in warning
    assert "1 saved run" in texts(at) and "Best run so far" in texts(at)
    next(b for b in at.button if b.label == "Download MNIST now").click()
    at = run_until(at.run(), lambda at: bool(at.error))
    no_exception(at)
    (error,) = [e.value for e in at.error]
    assert "no network" in error and INSTRUCTIONS in error and _folder(empty) in error
    assert not (empty / "MNIST" / "raw").exists() or not any((empty / "MNIST" / "raw").iterdir())


def test_draw_page_predicts_with_the_saved_run_and_teaching_explains_the_missing_data(
    app_path: Path, offline
) -> None:
    empty, run = offline
    at = inject(open_page(app_path, "pages/draw.py"), canvas_png(3))
    no_exception(at)
    assert at.selectbox(key="draw_run").value == run.id
    shown = {m.label: m.value for m in at.metric}
    assert shown["Prediction"] in [str(d) for d in range(10)] and shown["Confidence"].endswith("%")
    at.button_group(key="draw_true_label").set_value((int(shown["Prediction"]) + 1) % 10)
    at = at.run()
    at = next(b for b in at.button if b.label.startswith("Teach it: this is")).click().run()
    no_exception(at)
    errors = [e.value for e in at.error]
    assert any(INSTRUCTIONS in e and _folder(empty) in e for e in errors), errors
    assert [r.id for r in runs.list_runs()] == [run.id]  # no half-made version


@pytest.mark.slow
def test_train_page_explains_and_a_started_run_fails_with_the_instructions(app_path: Path, offline) -> None:
    from ui.shared import job_registry

    at = open_page(app_path, "pages/train.py")
    no_exception(at)
    assert "MNIST is not on disk yet" in texts(at)
    next(b for b in at.button if b.label == "Start training").click()
    registry = job_registry()
    at = run_until(
        at.run(), lambda at: not registry.active() and any(INSTRUCTIONS in e.value for e in at.error)
    )
    no_exception(at)
    assert len(runs.list_runs()) == 1  # nothing but the saved run
