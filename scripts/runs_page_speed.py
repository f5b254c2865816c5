"""How fast the Runs page lists and charts many runs (issue #5: 500 runs in under 2 s).

Generates N fake runs (``tests.support.fakeruns``, the real on-disk layout) once,
then prints the median of several repeats of:

1. the core listing: ``runs.scan_runs`` + ``compare.table`` (what a cold page pays);
2. the whole page script through Streamlit's AppTest with every run selected,
   for each chart view, cold (caches cleared) and warm (a widget click);
3. with ``--browser``: a real server and headless Chromium, from clicking the
   Runs link to the table and chart drawn, and from "Select all shown" to the
   chart of all N runs drawn.

    .venv/bin/python scripts/runs_page_speed.py --runs 500 [--browser]
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for ui.runs_charts, the views the page offers
CHROMIUM = "/usr/bin/chromium"
# The flags verified on these machines (STACK.md); never `playwright install`.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def median_s(fn: Callable[[], object], repeats: int) -> float:
    return median_wall_cpu(fn, repeats)[0]


def median_wall_cpu(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall time and median CPU time of this process (all its threads): on a shared machine the
    CPU time is what the page costs, the wall time what a user waits under that load."""
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def ensure_runs(folder: Path, n: int) -> None:
    from tests.support.fakeruns import make_fake_runs

    have = len([p for p in folder.iterdir() if p.is_dir()]) if folder.is_dir() else 0
    if have < n:
        t0 = time.perf_counter()
        make_fake_runs(folder, n - have, seed=have)
        print(f"generated {n - have} runs in {folder} ({time.perf_counter() - t0:.1f} s)")


def core(folder: Path, repeats: int) -> None:
    from mnist_core import compare, runs

    def listing() -> None:
        good, _ = runs.scan_runs(folder)
        compare.table(good)

    listing()  # OS file cache warm, as on a page that has been open before
    print(f"core listing (scan_runs + table): median {median_s(listing, repeats):.3f} s")
    fingerprint = median_s(lambda: runs.folder_state(folder), repeats)
    print(f"folder fingerprint (cache key):   median {fingerprint:.4f} s")


def quiet_streamlit() -> None:
    """Outside a server every cache clear warns "No runtime found"; AppTest resets the levels."""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)


def apptest(folder: Path, repeats: int) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from mnist_core import runs
    from ui.runs_charts import VIEWS

    ids = [r.id for r in runs.list_runs(folder)]
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/runs.py")
    at.run()  # imports torch, plotly, pandas once
    quiet_streamlit()
    at.multiselect(key="runs_selected").set_value(ids)
    at.run()
    print(f"AppTest, whole page script with all {len(ids)} runs selected (median of {repeats}; wall / CPU):")
    cases = [(view, view, None) for view in VIEWS]
    # The scaling fit is drawn against parameters or training FLOPs only.
    cases.insert(2, ("Accuracy vs cost", "  ... against parameters (fit)", "parameters"))
    for view, name, cost in cases:
        at.session_state["runs_view"] = view
        if cost:
            at.session_state["runs_cost"] = cost

        def cold() -> None:
            st.cache_data.clear()
            at.run()

        def warm() -> None:
            at.run()

        (c, c_cpu), (w, w_cpu) = median_wall_cpu(cold, repeats), median_wall_cpu(warm, repeats)
        assert not at.exception, [e.value for e in at.exception]
        print(f"  {name:30s} cold {c:6.3f} / {c_cpu:6.3f} s   warm {w:6.3f} / {w_cpu:6.3f} s")


def browser(folder: Path, repeats: int) -> None:
    from playwright.sync_api import sync_playwright

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "MNIST_LAB_CHECKPOINTS": str(folder)}
    log = (Path(tempfile.gettempdir()) / "runs_page_speed.log").open("wb")
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.fileWatcherType", "none",
           "--browser.gatherUsageStats", "false"]  # fmt: skip
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    idle = (
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')"
    )
    drawn = (
        "(n) => { const p = document.querySelector('.js-plotly-plot');"
        " return p && p.data && p.data.length >= n; }"
    )
    try:
        time.sleep(4)
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = chromium.new_page(viewport={"width": 1400, "height": 1200})
            page.set_default_timeout(120_000)
            steps: dict[str, list[float]] = {
                k: [] for k in ("table", "chart", "idle", "all chart", "all idle")
            }
            for _ in range(repeats):
                page.goto(f"http://127.0.0.1:{port}/")
                page.get_by_role("heading", name="MNIST Lab").first.wait_for()
                page.wait_for_function(idle)
                t0 = time.perf_counter()
                page.get_by_test_id("stSidebarNav").get_by_role("link", name="Runs", exact=True).click()
                page.locator('[data-testid="stDataFrame"]').first.wait_for()
                steps["table"].append(time.perf_counter() - t0)
                page.wait_for_function(drawn, arg=1)
                steps["chart"].append(time.perf_counter() - t0)
                page.wait_for_function(idle)
                steps["idle"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                page.get_by_role("button", name="Select the").click()
                page.wait_for_function(
                    "() => { const p = document.querySelector('.js-plotly-plot');"
                    " return p && p.data && p.data.some(t => String(t.name).includes(' runs)')); }"
                )
                steps["all chart"].append(time.perf_counter() - t0)
                page.wait_for_function(idle)
                steps["all idle"].append(time.perf_counter() - t0)
                page.get_by_role("button", name="Clear", exact=True).click()
                page.wait_for_function(idle)
            chromium.close()
        med = {k: statistics.median(v) for k, v in steps.items()}
        print(f"browser (median of {repeats}), from the click on the Runs link:")
        print(f"  table shown {med['table']:.2f} s, curves of the newest 3 drawn {med['chart']:.2f} s, "
              f"page idle {med['idle']:.2f} s")  # fmt: skip
        print("  from the click on 'Select the N shown':")
        print(f"  curves of every run drawn {med['all chart']:.2f} s, page idle {med['all idle']:.2f} s")
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "mnist-lab-speed-runs")
    parser.add_argument("--browser", action="store_true", help="also time a real server in headless Chromium")
    args = parser.parse_args()
    os.environ["MNIST_LAB_CHECKPOINTS"] = str(args.folder)
    os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
    ensure_runs(args.folder, args.runs)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    core(args.folder, args.repeats)
    apptest(args.folder, args.repeats)
    if args.browser:
        browser(args.folder, args.repeats)


if __name__ == "__main__":
    main()
