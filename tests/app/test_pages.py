"""Every page renders without an exception; the landing page's states and its quick model."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from mnist_core.errors import DatasetUnavailable
from tests.support import apptest
from tests.support.apptest import open_app, run_until

QUICK_BUTTON = "Train a quick default model"

PAGES = [
    # (page file or None for the default page, title, text the page must show)
    (None, "MNIST Lab", "96.2%"),
    ("pages/train.py", "Train", "Runs train in the background"),
    ("pages/runs.py", "Runs", "No runs in"),
    ("pages/draw.py", "Draw", "No saved model yet"),
    ("pages/sweeps.py", "Sweeps", "Reproduce the study"),
]


def page_text(at: AppTest) -> str:
    """Everything a reader sees as text: markdown, alerts, captions, buttons, progress."""
    return apptest.page_text(at, buttons=True, progress=True)


def click(at: AppTest, label: str) -> AppTest:
    """Click the button with this label and run the script once."""
    next(b for b in at.button if b.label == label).click()
    return at.run()


@pytest.mark.parametrize(("page", "title", "text"), PAGES, ids=[p[1] for p in PAGES])
def test_every_page_renders(app_path: Path, page: str | None, title: str, text: str) -> None:
    at = open_app(app_path, page)
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == [title]
    assert text in page_text(at)


def test_landing_on_empty_checkpoints_offers_the_quick_model(app_path: Path, runs_dir: Path) -> None:
    at = open_app(app_path)
    assert not at.exception
    text = page_text(at)
    assert "0 saved runs" in text
    assert str(runs_dir) in text
    assert "MNIST found" in text
    assert [b.label for b in at.button] == [QUICK_BUTTON]
    study = [(link.proto.label, link.proto.page) for link in at.get("page_link")]
    assert study == [("Reproduce the study in one click", "sweeps")]  # the findings above link to it


def test_landing_without_dataset_shows_the_instructions(
    app_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("MNIST_DATA_DIR", str(empty))
    at = open_app(app_path)
    assert not at.exception
    warning = "\n".join(w.value for w in at.warning)
    assert "Put the four files (train-images-idx3-ubyte.gz" in warning
    assert str(empty.resolve() / "MNIST" / "raw") in warning
    assert "MNIST_DATA_DIR" in warning
    assert "Download MNIST now" in [b.label for b in at.button]


@pytest.mark.slow
def test_quick_model_trains_and_reports_its_accuracy(app_path: Path, runs_dir: Path) -> None:
    at = click(open_app(app_path), QUICK_BUTTON)
    assert not at.exception, [e.value for e in at.exception]
    # The click's own page run shows the job: training, or already done (the tiny data of the tests
    # train in a fraction of a second once the process is warm).
    shown = bool(at.get("progress")) or "Finished: test accuracy" in page_text(at)
    assert shown, f"the click's own run shows neither the running nor the finished job: {page_text(at)}"
    run_until(at, lambda at: bool(at.error) or "Finished: test accuracy" in page_text(at), timeout_s=120)
    assert not at.error, [e.value for e in at.error]
    text = page_text(at)
    assert "Finished: test accuracy **" in text and "%" in text.split("Finished: test accuracy")[1]
    assert "1 saved run" in text and "(1 completed)" in text
    assert QUICK_BUTTON not in [b.label for b in at.button]
    assert [link.proto.page for link in at.get("page_link")] == ["draw", "sweeps"]
    assert len([p for p in runs_dir.iterdir() if p.is_dir()]) == 1


def test_failed_download_shows_the_core_message(
    app_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mnist_core.data

    def offline(dataset: str, train: bool, root: object, download: bool) -> None:
        raise DatasetUnavailable(mnist_core.data.missing_message(dataset, root, "no network"))

    monkeypatch.setattr(mnist_core.data, "load_split", offline)
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path))
    at = click(open_app(app_path), "Download MNIST now")
    run_until(at, lambda at: bool(at.error))
    assert not at.exception
    assert "no network" in at.error[0].value and "Put the four files" in at.error[0].value


def test_failed_quick_model_shows_the_error_and_offers_a_retry(
    app_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mnist_core.pipeline

    def broken(*args: object, **kwargs: object) -> None:
        raise DatasetUnavailable("The mnist dataset is not available: test says so.")

    monkeypatch.setattr(mnist_core.pipeline, "load_data", broken)
    at = click(open_app(app_path), QUICK_BUTTON)
    run_until(at, lambda at: bool(at.error))
    assert not at.exception
    assert [e.value for e in at.error] == ["The mnist dataset is not available: test says so."]
    assert QUICK_BUTTON in [b.label for b in at.button]


def test_landing_with_a_completed_run_shows_the_best_one(
    app_path: Path, runs_dir: Path, synthetic_data_dir: Path
) -> None:
    from mnist_core.config import RunConfig
    from mnist_core.pipeline import run_training

    info = run_training(
        RunConfig(hidden=(16,), epochs=1, batch_size=100), runs_dir=runs_dir, data_root=synthetic_data_dir
    )
    at = open_app(app_path)
    assert not at.exception
    text = page_text(at)
    assert "1 saved run" in text and "(1 completed)" in text
    assert f"Best run so far: `{info.name}`" in text
    assert QUICK_BUTTON not in [b.label for b in at.button]
    assert "Start with the quick model" not in text  # not there: the next steps are drawing and training
    assert [link.proto.page for link in at.get("page_link")] == ["draw", "sweeps"]


def test_an_unknown_page_says_so_and_links_home(app_path: Path) -> None:
    """Issue 21.10: a URL naming no page showed Home, silently."""
    at = AppTest.from_file(str(app_path), default_timeout=30)
    at._page_hash = "0" * 32  # what a stale link asks for: a page no longer in st.navigation
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Page not found"]
    assert "does not exist" in page_text(at)
    assert [(link.proto.label, link.proto.page) for link in at.get("page_link")] == [("Go to Home", "")]
    assert not at.button, "Home itself is not drawn under the message"


def test_the_first_page_run_starts_codecarbons_slow_first_start(
    app_path: Path, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening the app warms codecarbon up (~1.5 s, issue 28): the first run a user trains does not wait."""
    from mnist_core import energy

    started: list[str] = []
    monkeypatch.setattr(energy, "warm_up", lambda: started.append("warm_up"))
    open_app(app_path, check=True)  # Home, no run trained, no button pressed
    assert started == ["warm_up"]


@pytest.mark.parametrize("page", [None, "pages/train.py", "pages/draw.py", "pages/sweeps.py"])
def test_every_page_that_lists_runs_says_how_many_broken_folders_it_left_out(
    app_path: Path, runs_dir: Path, page: str | None
) -> None:
    """Train, Draw and Sweeps left broken folders out without a word (only Home and Runs said so)."""
    for name in ("garbage-config", "garbage-run"):
        (runs_dir / name).mkdir(parents=True)
        (runs_dir / name / "run.json").write_text("{ not json")
    at = open_app(app_path, page, timeout=60, check=True)
    assert "2 broken run folders left out: the Runs page says what is wrong." in page_text(at)
