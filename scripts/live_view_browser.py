"""The Train page's live view, measured as a user meets it: the app's own server and a real browser.

``scripts/live_view_overhead.py`` times the page's wiring in one process (the
callbacks, the snapshots, the figures). This script starts the app itself
(``streamlit run app.py``, with the repository's ``.streamlit/config.toml``)
and trains the Train page's default run (MLP 784-512-10, batch 64, 2 epochs)
from headless Chromium on the same machine, in turns:

- ``unwatched``: click *Start training*, then leave the page: nothing redraws;
- ``watched``: stay on the Train page while the run trains: its fragment reruns
  twice a second and the browser draws the charts;
- ``watched, postScriptGC``: the same on a second server started with
  ``--runner.postScriptGC true``, Streamlit's default, which runs a full
  ``gc.collect()`` after every script and fragment run. It is the baseline of
  the repository's setting (off).

Per run: the training loop's wall time (``train_time_s`` of the run's summary)
and the CPU seconds the browser's processes and the server used meanwhile.
Medians (min-max) over the repeats, and the ratios to the unwatched run.

    MNIST_DATA_DIR=../shared/data .venv/bin/python scripts/live_view_browser.py --repeats 5

Needs the dev requirements (playwright) and Debian's ``/usr/bin/chromium``, as
the browser tests do. Without ``MNIST_DATA_DIR`` it trains on generated data.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import psutil
from playwright.sync_api import Browser, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))  # the browser tests' server and Chromium

from app_server import CHROMIUM, CHROMIUM_ARGS, running_app  # noqa: E402

RUN_TIMEOUT_S = 600
VARIANTS = ("unwatched", "watched", "watched, postScriptGC")


def browser_cpu_s() -> float:
    """CPU seconds used so far by every Chromium process on the machine (this script's browser)."""
    total = 0.0
    for proc in psutil.process_iter(["name", "cpu_times"]):
        if (proc.info["name"] or "").startswith("chrom") and proc.info["cpu_times"] is not None:
            total += proc.info["cpu_times"].user + proc.info["cpu_times"].system
    return total


def process_cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def train_once(browser: Browser, url: str, pid: int, runs_dir: Path, watch: bool) -> dict[str, float]:
    """Start the Train page's default run from a browser tab; watch it or leave. Times of the run."""
    before = {p.name for p in runs_dir.iterdir()} if runs_dir.exists() else set()
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        page.goto(f"{url}/train")
        start = page.get_by_role("button", name="Start training")
        start.wait_for(timeout=60_000)
        page.wait_for_timeout(1500)  # the cost preview and its probe settle first
        browser_0, server_0 = browser_cpu_s(), process_cpu_s(pid)
        start.click()
        page.get_by_text("Training now").wait_for(timeout=60_000)
        if not watch:
            page.goto("about:blank")
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while True:
            done = [p for p in runs_dir.iterdir() if p.name not in before and (p / "summary.json").exists()]
            if done:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"no run finished in {RUN_TIMEOUT_S} s")
            time.sleep(0.2)
        browser_s, server_s = browser_cpu_s() - browser_0, process_cpu_s(pid) - server_0
    finally:
        page.close()
    summary = json.loads((done[0] / "summary.json").read_text())
    return {"train_s": summary["train_time_s"], "browser_cpu_s": browser_s, "server_cpu_s": server_s}


def _median_range(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def report(rows: dict[str, list[dict[str, float]]]) -> list[str]:
    lines = [f"{'':24}{'training s':>22}{'browser CPU s':>22}{'server CPU s':>22}"]
    for name in VARIANTS:
        cells = [
            _median_range([r[key] for r in rows[name]])
            for key in ("train_s", "browser_cpu_s", "server_cpu_s")
        ]
        lines.append(f"{name:24}" + "".join(f"{c:>22}" for c in cells))
    base = [r["train_s"] for r in rows["unwatched"]]
    for name in VARIANTS[1:]:
        times = [r["train_s"] for r in rows[name]]
        paired = [t / b for t, b in zip(times, base, strict=True)]
        lines.append(
            f"{name} / unwatched: {statistics.median(times) / statistics.median(base):.2f}x "
            f"(median of paired ratios {statistics.median(paired):.2f}x, {min(paired):.2f}-{max(paired):.2f})"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="live-view-browser-") as tmp, ExitStack() as stack:
        data_root = Path(os.environ["MNIST_DATA_DIR"]) if os.environ.get("MNIST_DATA_DIR") else None
        if data_root is None:
            from mnist_core.synthetic import write_dataset

            data_root = write_dataset(Path(tmp) / "data", n_train=10_000, n_test=1_000)
        repo_runs, gc_runs = Path(tmp) / "runs", Path(tmp) / "runs-gc"
        repo_url, repo_proc = stack.enter_context(running_app(repo_runs, data_root, Path(tmp) / "repo.log"))
        gc_url, gc_proc = stack.enter_context(
            running_app(gc_runs, data_root, Path(tmp) / "gc.log", "--runner.postScriptGC", "true")
        )
        repo, gc_on = (repo_url, repo_proc.pid, repo_runs), (gc_url, gc_proc.pid, gc_runs)
        servers = {"unwatched": repo, "watched": repo, "watched, postScriptGC": gc_on}
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        print(
            f"MLP 784-512-10 bs64, 2 epochs (the Train page's default), data {data_root}, "
            f"{args.repeats} repeats"
        )
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
        for url, pid, runs_dir in (repo, gc_on):  # warm-up: data load, codecarbon's probe, first kernels
            train_once(browser, url, pid, runs_dir, watch=False)
        for i in range(args.repeats):
            k = i % len(VARIANTS)
            order = VARIANTS[k:] + VARIANTS[:k]  # a drift in the machine's load hits all alike
            for name in order:
                url, pid, runs_dir = servers[name]
                row = train_once(browser, url, pid, runs_dir, watch=name != "unwatched")
                rows[name].append(row)
                print(
                    f"  {i + 1}/{args.repeats} {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items())
                )
        print("\n".join(report(rows)))
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
