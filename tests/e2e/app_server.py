"""The app as a real server on a free port, and the Chromium that drives it (not a test module).

Used by the browser tests' fixtures and by ``scripts/live_view_browser.py``.
The browser is Debian's chromium through the ``playwright`` package (never
``playwright install``); the flags are the ones verified on these machines
(see STACK.md).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
START_TIMEOUT_S = 60


class AppDidNotStart(RuntimeError):
    """The server exited or never answered its health check; the message has its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(
    runs_dir: Path, data_dir: Path, log: Path, *options: str, own_group: bool = False, port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``streamlit run app.py`` from the repository root, on ``runs_dir`` and ``data_dir``: URL and process.

    ``options`` are more ``--section.option value`` pairs. With ``own_group``
    the server leads a new process group, which the caller may SIGKILL whole;
    on exit the group is killed, otherwise the server is terminated.
    """
    env = {**os.environ, "MNIST_LAB_CHECKPOINTS": str(runs_dir), "MNIST_DATA_DIR": str(data_dir)}
    port = port or free_port()  # a given port: a server restarted where an open tab will find it again
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false", *options,
    ]  # fmt: skip
    with log.open("ab") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=own_group
        )
    url = f"http://127.0.0.1:{port}"
    base = dict(zip(options[::2], options[1::2], strict=False)).get("--server.baseUrlPath", "").strip("/")
    try:
        _wait_healthy(f"{url}/{base}" if base else url, proc, log)  # its routes live under the base path
        yield url, proc
    finally:
        if proc.poll() is None:
            if own_group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AppDidNotStart(f"streamlit exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AppDidNotStart(f"streamlit did not become healthy in {START_TIMEOUT_S} s:\n{log.read_text()}")
