"""SIGKILL of the server in the middle of a training started from the browser loses nothing finished.

A real ``streamlit run app.py`` in its own process group trains a run started
by clicking *Start training*; once the first epoch is saved the whole group
gets SIGKILL (no handler, no cleanup). A fresh server on the same checkpoints
folder must list the run as interrupted, with its history up to the last
finished epoch and a checkpoint that loads with ``weights_only=True``; its
*Resume* button must train it to completion.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import torch
from app_server import CHROMIUM, CHROMIUM_ARGS, free_port, running_app
from playwright.sync_api import Page, sync_playwright
from train_helpers import start_training

from mnist_core import runs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EPOCHS = 4
MIN_EPOCH_S = 0.4  # epochs long enough that the kill lands inside one, not in a checkpoint's writes


@contextmanager
def _browser_page(url: str) -> Iterator[Page]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 1400}).new_page()
            page.set_default_timeout(60_000)
            page.goto(url)
            page.get_by_role("heading", name="MNIST Lab").first.wait_for()
            page.get_by_test_id("stSidebarNav").get_by_role("link", name="Train").click()
            page.get_by_role("button", name="Start training").wait_for()
            yield page
        finally:
            browser.close()


def _per_epoch_s(page: Page) -> float:
    text = page.get_by_test_id("stMetric").filter(has_text="Per epoch (est.)").inner_text()
    match = re.search(r"([\d.]+) (ms|s)\s*$", text)
    if not match:
        return 0.3
    return float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)


def _epochs_in_history(folder: Path) -> list[int]:
    try:
        history = json.loads((folder / "history.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    return [h["epoch"] for h in history if h["kind"] == "epoch"]


def _start_a_run(page: Page) -> int:
    """MLP 784-512-10 at batch 8 (113 steps per epoch), 4 epochs; a wider model if epochs look too short."""
    page.get_by_role("slider", name="Batch size").focus()
    for _ in range(3):  # 64 -> 8
        page.keyboard.press("ArrowLeft")
    page.get_by_text("MLP 784-512-10 bs8").first.wait_for()
    if _per_epoch_s(page) < MIN_EPOCH_S:  # a fast machine: make each step heavier
        page.get_by_role("slider", name="Width (units per layer)").focus()
        page.keyboard.press("End")
        page.get_by_text("MLP 784-4096-10 bs8").first.wait_for()
    start_training(page, EPOCHS)
    return EPOCHS


def test_sigkill_mid_training_then_restart_lists_it_interrupted_and_it_resumes(
    tmp_path: Path, runs_dir: Path, synthetic_data_dir: Path
) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver")
    log = tmp_path / "streamlit.log"
    with (
        running_app(runs_dir, synthetic_data_dir, log, own_group=True) as (url, proc),
        _browser_page(url) as page,
    ):
        epochs = _start_a_run(page)
        deadline = time.monotonic() + 120
        folder = None
        while time.monotonic() < deadline:  # the first epoch is saved: history.json is written last
            folders = [p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
            if folders and _epochs_in_history(folders[0]):
                folder = folders[0]
                break
            time.sleep(0.01)
        assert folder is not None, "no epoch was saved in time"
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL

    # On disk, with no server: the run was cut short, and what it finished is there.
    run_id = folder.name
    info = runs.load_run(run_id, runs_dir)
    assert info.meta["status"] == "running" and info.status == "interrupted"
    state = runs.load_train_state(run_id, runs_dir)  # torch.load(weights_only=True) inside
    saved = _epochs_in_history(folder)
    assert 1 <= state.epoch < epochs, "killed between the first and the last epoch"
    assert saved == list(range(1, state.epoch + 1)), "history goes up to the last finished epoch"
    assert state.step_in_epoch == 0
    assert max(h["step"] for h in state.history) <= state.epoch * state.history[-1]["total_steps"] // epochs
    raw = torch.load(folder / "checkpoint.pt", weights_only=True)
    model, _ = runs.load_model(run_id, runs_dir)  # weights.pt, weights_only=True as well
    assert raw["epoch"] == state.epoch and set(raw["model"]) == set(model.state_dict())
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]

    # A fresh server lists it as interrupted; Resume in the browser trains it to the end.
    with (
        running_app(runs_dir, synthetic_data_dir, log, own_group=True) as (url, _proc),
        _browser_page(url) as page,
    ):
        row = page.get_by_test_id("stHorizontalBlock").filter(has_text=run_id).last
        row.get_by_text("interrupted").wait_for()
        page.locator(f".st-key-train_show_{run_id} button").click()
        page.get_by_text("This run was interrupted").wait_for()
        page.get_by_text(f"{state.epoch}/{epochs} epochs").first.wait_for()
        page.locator(f".st-key-train_resume_{run_id} button").click()
        page.get_by_text("Training now").wait_for()
        page.get_by_text(f"{epochs}/{epochs} epochs").first.wait_for(timeout=180_000)
        page.get_by_role("heading", name=re.compile(r"^Result: ")).wait_for()
        assert page.locator('[data-testid="stException"]').count() == 0
        done = runs.load_run(run_id, runs_dir)
        assert done.status == "completed" and done.summary["epochs_done"] == epochs
        assert _epochs_in_history(folder) == list(range(1, epochs + 1))
        page.get_by_test_id("stHorizontalBlock").filter(has_text=run_id).last.get_by_text(
            "completed"
        ).wait_for()
        assert page.locator(f".st-key-train_resume_{run_id} button").count() == 0


def test_a_tab_left_open_across_a_restart_shows_the_run_interrupted_without_a_click(
    tmp_path: Path, runs_dir: Path, synthetic_data_dir: Path
) -> None:
    """The tab open while the server was killed and restarted said "Training now ... 2.7 s left", with a
    Stop button, for good: its live element stopped polling when the new server did not know the job."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver")
    log = tmp_path / "streamlit.log"
    port = free_port()
    with ExitStack() as stack:
        server = running_app(runs_dir, synthetic_data_dir, log, own_group=True, port=port)
        url, proc = stack.enter_context(server)
        page = stack.enter_context(_browser_page(url))
        _start_a_run(page)
        page.get_by_text("Training now").first.wait_for()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(
            _epochs_in_history(p) for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
        ):
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        stack.enter_context(running_app(runs_dir, synthetic_data_dir, log, own_group=True, port=port))
        # The same tab, untouched: it reconnects, and the page shows the run as it is now.
        (folder,) = [p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
        row = page.get_by_test_id("stHorizontalBlock").filter(has_text=folder.name).last
        row.get_by_text("interrupted").wait_for(timeout=90_000)
        page.get_by_text("Training now").wait_for(state="detached", timeout=30_000)
        assert page.locator('[data-testid="stException"]').count() == 0
