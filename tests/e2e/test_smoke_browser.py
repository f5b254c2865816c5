"""The app in a real headless Chromium: it starts, renders, and shows no exception."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# Flags verified on these machines (see STACK.md); never `playwright install`.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "artifacts"
README_SCREENSHOT = ROOT / "docs" / "screenshot.png"
START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"streamlit did not become healthy in {START_TIMEOUT_S} s:\n{log.read_text()}")


@pytest.fixture
def server(tmp_path: Path, runs_dir: Path, synthetic_data_dir: Path) -> Iterator[str]:
    """A Streamlit server on a free port, on the generated data and an empty checkpoints folder."""
    port = _free_port()
    env = {
        **os.environ,
        "MNIST_LAB_CHECKPOINTS": str(runs_dir),
        "MNIST_DATA_DIR": str(synthetic_data_dir),
    }
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless", "true",
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    log = tmp_path / "streamlit.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def page(server: str) -> Iterator[Page]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(server)
            yield page
        finally:
            browser.close()


def _wait_idle(page: Page) -> None:
    """Until the script run is over: the quick-model button is the last thing it draws."""
    page.get_by_role("button", name="Train a quick default model").wait_for()
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')"
    )


def test_landing_page_renders(page: Page) -> None:
    page.get_by_role("heading", name="MNIST Lab").first.wait_for()
    _wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("0 saved runs").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "landing.png"), full_page=True)
    if not README_SCREENSHOT.exists():
        README_SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(README_SCREENSHOT), full_page=True)
    # The sidebar navigation reaches the other pages.
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Draw").click()
    page.get_by_role("heading", name="Draw").first.wait_for()
    page.get_by_text("Not built yet — tracked in issue #4").wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0


@pytest.mark.slow
def test_quick_model_trains_in_the_browser(page: Page) -> None:
    _wait_idle(page)
    page.get_by_role("button", name="Train a quick default model").click()
    page.get_by_text("Finished: test accuracy").wait_for(timeout=120_000)
    page.get_by_role("link", name="Draw a digit and see what it predicts").wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("1 saved run").count() >= 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "quick-model-done.png"), full_page=True)
